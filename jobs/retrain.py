"""Weekly retrain: backtest and select per-series models, log and register them in MLflow."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import polars as pl

from forecasting.candidates import freq_of
from forecasting.gate import gate
from forecasting.plots import plot_backtest
from forecasting.train import TrainResult, train
from jobs.model_inputs import training_history
from jobs.runtime import NoSales, Runtime

__all__ = ["RetrainSummary", "backtest_only", "retrain"]


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


def retrain(
    rt: Runtime,
    history: pl.DataFrame | None = None,
    *,
    costly: bool = False,
    candidates: Mapping[str, tuple[str, ...]] | None = None,
    freq: str = "daily",
) -> RetrainSummary:
    """Train on ``history`` (default: the training frame from Feast, built from the lake
    and the reference files) and register the result as a new version.

    The version becomes ``champion`` only if it beats the current one on the same backtest
    windows (see :func:`forecasting.gate.gate`); otherwise ``challenger``. The feature
    service the frame came from is recorded with the run.
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
    if history.is_empty():
        raise NoSales("no sales history to train on")
    daily = freq == "daily"
    result = train(
        history,
        horizon=s.backtest_horizon_days if daily else freq_of(freq).backtest,
        n_windows=s.backtest_windows,
        costly=costly,
        candidates=candidates,
        freq=freq,
        gap=s.backtest_gap_days if daily else 0,
        protection_days=_planned_protection(rt) if daily else None,
    )
    current = rt.registry_for(freq).champions_table("champion")
    decision = gate(history, result, current[0] if current else None, margin=s.champion_margin)
    plot = plot_backtest(result.cv, result.champions, s.out_dir / "backtest.png")
    reg = rt.registry_for(freq).log_training(result, decision, plot=plot, features=features)
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
    )


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
