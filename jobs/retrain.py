"""Weekly retrain: backtest and select per-series models, log and register them in MLflow."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import polars as pl

from forecasting.plots import plot_backtest
from forecasting.train import train
from jobs.runtime import Runtime

__all__ = ["RetrainSummary", "retrain"]


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

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def retrain(
    rt: Runtime, history: pl.DataFrame | None = None, *, costly: bool = False
) -> RetrainSummary:
    """Train on ``history`` (default: the lake) and register the result as a new version."""
    s = rt.settings
    history = history if history is not None else rt.history()
    if history.is_empty():
        raise ValueError("no sales history: ingest POS data first (`replen ingest pos FILE`)")
    result = train(history, horizon=s.backtest_horizon_days, n_windows=s.backtest_windows,
                   costly=costly)
    plot = plot_backtest(result.cv, result.champions, s.out_dir / "backtest.png")
    reg = rt.registry.log_training(result, margin=s.champion_margin, plot=plot)
    return RetrainSummary(
        run_id=reg.run_id,
        model_version=reg.version,
        alias=reg.alias,
        series=result.champions.height,
        seconds=round(result.seconds, 3),
        metrics={k: round(v, 6) for k, v in result.metrics.items() if "." not in k},
        champion_loss=reg.champion_loss,
        challenger_loss=reg.challenger_loss,
    )
