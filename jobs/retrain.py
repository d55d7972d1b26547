"""Weekly retrain: backtest and select per-series models, log and register them in MLflow.

The series are trained in chunks (``train_chunk_series``, bounded memory) on the engine the
settings name: this process, or a Dask cluster (``train_engine = "dask"``,
``dask_address``). History comes from the lake, a frame, or a Parquet file read chunk by
chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl

from features.sales import daily_sales
from forecasting.candidates import freq_of
from forecasting.chunks import train_chunked
from forecasting.engine import DaskEngine, Engine, LocalEngine
from forecasting.plots import plot_backtest
from jobs.runtime import Runtime

__all__ = ["HistorySource", "RetrainSummary", "engine_for", "retrain"]

_KEYS = ["store_id", "sku_id"]


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
    engine: str = "local"
    chunks: int = 1

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


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
    def of_lake(cls, rt: Runtime) -> HistorySource:
        """Daily sales from the lake, one chunk of series at a time (zero-filled to the
        lake's newest day, as :meth:`Runtime.history` does for all series at once)."""
        from replen.io import in_keys

        lake = rt.lake
        keys = lake.scan_events().select(_KEYS).unique().collect(engine="streaming")
        newest = lake.newest_sold_at()
        end = newest.date() if newest is not None else None

        def load(part: pl.DataFrame) -> pl.DataFrame:
            events = lake.scan_events().filter(in_keys(part))
            stock = lake.scan_inventory().filter(in_keys(part))
            return daily_sales(events, stock, end=end)

        return cls(keys, load)

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
    """Train on ``history`` (default: the lake) and register the result as a new version.

    The version becomes ``champion`` only if it beats the current one on the same backtest
    windows (see :func:`forecasting.gate.gate`, combined over chunks); otherwise
    ``challenger``. ``engine`` and ``chunk_series`` default to the settings.
    """
    s = rt.settings
    if history is None:
        source = HistorySource.of_lake(rt)
    elif isinstance(history, pl.DataFrame):
        source = HistorySource.of_frame(history)
    else:
        source = history
    if source.keys.is_empty():
        raise ValueError("no sales history: ingest POS data first (`replen ingest pos FILE`)")
    own_engine = engine is None
    engine = engine or engine_for(rt)
    current = rt.registry_for(freq).champions_table("champion")
    try:
        trained = train_chunked(
            source.keys,
            source.load,
            chunk_series=chunk_series or s.train_chunk_series,
            engine=engine,
            incumbent=current[0] if current else None,
            margin=s.champion_margin,
            on_chunk=on_chunk,
            horizon=s.backtest_horizon_days if freq == "daily" else freq_of(freq).backtest,
            n_windows=s.backtest_windows,
            costly=costly,
            candidates=candidates,
            freq=freq,
        )
    finally:
        if own_engine and isinstance(engine, DaskEngine):
            engine.close()
    result, decision = trained.result, trained.decision
    assert decision is not None
    plot = plot_backtest(result.cv, result.champions, s.out_dir / "backtest.png")
    reg = rt.registry_for(freq).log_training(result, decision, plot=plot)
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
        engine=trained.engine,
        chunks=trained.chunks,
    )
