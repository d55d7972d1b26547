"""Weekly retrain: backtest and select per-series models, log and register them in MLflow."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import polars as pl

from forecasting.candidates import freq_of
from forecasting.gate import gate
from forecasting.plots import plot_backtest
from forecasting.train import TrainResult, train
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

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def backtest_only(
    rt: Runtime,
    history: pl.DataFrame,
    *,
    horizon: int | None = None,
    windows: int | None = None,
    costly: bool = False,
    freq: str = "daily",
) -> TrainResult:
    """Backtest and select on ``history`` without registering anything; the window is
    ``horizon`` periods (default: the settings' for daily data, the frequency's otherwise)."""
    s = rt.settings
    h = horizon or (s.backtest_horizon_days if freq == "daily" else freq_of(freq).backtest)
    return train(
        history, horizon=h, n_windows=windows or s.backtest_windows, costly=costly, freq=freq
    )


def retrain(
    rt: Runtime,
    history: pl.DataFrame | None = None,
    *,
    costly: bool = False,
    candidates: Mapping[str, tuple[str, ...]] | None = None,
    freq: str = "daily",
) -> RetrainSummary:
    """Train on ``history`` (default: the lake) and register the result as a new version.

    The version becomes ``champion`` only if it beats the current one on the same backtest
    windows (see :func:`forecasting.gate.gate`); otherwise ``challenger``.
    """
    s = rt.settings
    history = history if history is not None else rt.history()
    if history.is_empty():
        raise NoSales("no sales history to train on")
    result = train(
        history,
        horizon=s.backtest_horizon_days if freq == "daily" else freq_of(freq).backtest,
        n_windows=s.backtest_windows,
        costly=costly,
        candidates=candidates,
        freq=freq,
    )
    current = rt.registry_for(freq).champions_table("champion")
    decision = gate(history, result, current[0] if current else None, margin=s.champion_margin)
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
    )
