"""Weekly retrain: backtest and select per-series models, log and register them in MLflow.

The series are trained in chunks (``train_chunk_series``, bounded memory; unset, sized from
the memory available when the retrain starts) on the engine the settings name: this
process, or a Dask cluster (``train_engine = "dask"``, ``dask_address``). History comes
from the Feast training frame (default), a frame, or a Parquet file read chunk by chunk.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl

from forecasting.candidates import freq_of
from forecasting.chunks import auto_chunk_series, available_memory, train_chunked
from forecasting.engine import DaskEngine, Engine, LocalEngine
from forecasting.plots import plot_backtest
from forecasting.train import TrainResult, train
from jobs.model_inputs import save_checks, training_history
from jobs.runtime import NoSales, Runtime

__all__ = [
    "HistorySource",
    "RetrainSummary",
    "backtest_only",
    "chunk_size",
    "engine_for",
    "retrain",
]

_KEYS = ["store_id", "sku_id"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrainSummary:
    run_id: str
    model_version: str
    alias: str
    series: int
    seconds: float
    metrics: dict[str, float]
    champion_loss: float | None
    challenger_loss: float | None
    gate: str
    feature_service: str | None = None
    suspect_blocks: int = 0
    engine: str = "local"
    chunks: int = 1
    chunk_series: int | None = None  # series per chunk, as chosen
    chunk_source: str | None = None  # option, setting, or memory (sized from what is free)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def backtest_only(
    rt: Runtime,
    history: pl.DataFrame | None = None,
    *,
    horizon: int | None = None,
    windows: int | None = None,
    costly: bool = False,
    freq: str = "daily",
) -> TrainResult:
    """Backtest and select on ``history`` (default: the Feast training frame) without
    registering anything; the window is ``horizon`` periods (default: the settings' for
    daily data, the frequency's otherwise)."""
    s = rt.settings
    daily = freq == "daily"
    if history is None:
        history = training_history(rt)
    if history.is_empty():
        raise NoSales("no sales history to backtest")
    h = horizon or (s.backtest_horizon_days if daily else freq_of(freq).backtest)
    return train(
        history,
        horizon=h,
        n_windows=windows or s.backtest_windows,
        costly=costly,
        freq=freq,
        gap=s.backtest_gap_days if daily else 0,
    )


@dataclass(frozen=True)
class HistorySource:
    """The series to train (``keys``) and how to load the history of some of them."""

    keys: pl.DataFrame
    load: Callable[[pl.DataFrame], pl.DataFrame]

    @classmethod
    def of_frame(cls, history: pl.DataFrame) -> HistorySource:
        keys = history.select(_KEYS).unique()
        return cls(keys, lambda part: history.join(part, on=_KEYS, how="semi"))

    @classmethod
    def of_file(cls, path: Path, freq: str = "daily") -> HistorySource:
        """A history file: Parquet is read chunk by chunk, other formats whole."""
        from replen.io import read_history, scan_history

        if path.suffix.lower() in (".parquet", ".pq"):
            keys, load = scan_history(path, freq)
            return cls(keys, load)
        return cls.of_frame(read_history(path, freq))


def engine_for(rt: Runtime) -> Engine:
    """The training engine the settings name (a Dask client connects here)."""
    s = rt.settings
    if s.train_engine == "dask":
        assert s.dask_address  # the settings validator requires it
        return DaskEngine(s.dask_address)
    return LocalEngine()


def retrain(
    rt: Runtime,
    history: pl.DataFrame | HistorySource | None = None,
    *,
    costly: bool = False,
    candidates: Mapping[str, tuple[str, ...]] | None = None,
    freq: str = "daily",
    engine: Engine | None = None,
    chunk_series: int | None = None,
    on_chunk: Callable[[int, int, int], None] | None = None,
) -> RetrainSummary:
    """Train on ``history`` (default: the training frame from Feast, built from the lake
    and the reference files) and register the result as a new version.

    The version becomes ``champion`` only if it beats the current one on the same backtest
    windows (see :func:`forecasting.gate.gate`, combined over chunks); otherwise
    ``challenger``. The feature service the frame came from is recorded with the run.
    ``engine`` and ``chunk_series`` default to the settings; with no chunk size set anywhere,
    it is sized from the memory available now (:func:`chunk_size`).
    """
    s = rt.settings
    features: dict[str, str] = {}
    if history is None:
        from features.repo.definitions import FORECASTING_SERVICE, FORECASTING_SERVICE_VERSION

        history = training_history(rt)
        features = {
            "service": FORECASTING_SERVICE,
            "version": FORECASTING_SERVICE_VERSION,
            "source": "feast.get_historical_features",
        }
    source = history if isinstance(history, HistorySource) else HistorySource.of_frame(history)
    if source.keys.is_empty():
        raise NoSales("no sales history to train on")
    daily = freq == "daily"
    own_engine = engine is None
    engine = engine or engine_for(rt)
    current = rt.registry_for(freq).champions_table("champion")
    chunk, chunk_source = chunk_size(chunk_series, s.train_chunk_series)
    log.info(
        "retrain: %d series in chunks of %d (%s), engine %s",
        source.keys.height,
        chunk,
        chunk_source,
        engine.name,
    )
    try:
        trained = train_chunked(
            source.keys,
            source.load,
            chunk_series=chunk,
            engine=engine,
            incumbent=current[0] if current else None,
            margin=s.champion_margin,
            on_chunk=on_chunk,
            horizon=s.backtest_horizon_days if daily else freq_of(freq).backtest,
            n_windows=s.backtest_windows,
            costly=costly,
            candidates=candidates,
            freq=freq,
            gap=s.backtest_gap_days if daily else 0,
            protection_days=_planned_protection(rt) if daily else None,
        )
    finally:
        if own_engine and isinstance(engine, DaskEngine):
            engine.close()
    result, decision = trained.result, trained.decision
    assert decision is not None
    plot = plot_backtest(result.cv, result.champions, s.out_dir / "backtest.png")
    reg = rt.registry_for(freq).log_training(result, decision, plot=plot, features=features)
    if daily:  # the planner's data exceptions show what this retrain masked
        save_checks(rt, result.checks)
    return RetrainSummary(
        run_id=reg.run_id,
        model_version=reg.version,
        alias=reg.alias,
        series=result.champions.height,
        seconds=round(result.seconds, 3),
        metrics={k: round(v, 6) for k, v in result.metrics.items() if "." not in k},
        champion_loss=reg.champion_loss,
        challenger_loss=reg.challenger_loss,
        gate=decision.reason,
        feature_service=features.get("service"),
        suspect_blocks=result.checks.height,
        engine=trained.engine,
        chunks=trained.chunks,
        chunk_series=chunk,
        chunk_source=chunk_source,
    )


def chunk_size(option: int | None, setting: int | None) -> tuple[int, str]:
    """Series per chunk and where the figure came from: the explicit option, else the setting
    (``REPLEN_TRAIN_CHUNK_SERIES``), else sized from the memory available now."""
    if option:
        return option, "option"
    if setting:
        return setting, "setting"
    free = available_memory()
    where = f"memory: {free / 1e9:.1f} GB available" if free is not None else "memory unknown"
    return auto_chunk_series(free), where


def _planned_protection(rt: Runtime) -> int | None:
    """The typical protection period the planner will use (median over items, whole days):
    the span over which the totals' quantiles are calibrated. None without rules."""
    import math

    try:
        rules = rt.rules()
    except Exception:  # no rules loaded yet: calibrate over the backtest horizon
        return None
    spans = rules.suppliers.select(
        (pl.col("lead_time_mean") + pl.col("review_period_days")).median()
    ).item()
    return max(1, math.ceil(float(spans))) if spans is not None else None
