"""Champion gate: does a new retrain beat the current champion on the same backtest windows?"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from forecasting.backtest import backtest, series_errors
from forecasting.history import keys_frame, to_training_frame
from forecasting.train import TrainResult

__all__ = ["GateDecision", "gate"]


@dataclass(frozen=True)
class GateDecision:
    """``promote``: the challenger becomes champion. Losses are means over ``series``."""

    promote: bool
    champion_loss: float | None
    challenger_loss: float | None
    series: int
    reason: str


def gate(
    history: pl.DataFrame,
    result: TrainResult,
    incumbent: pl.DataFrame | None,
    *,
    margin: float = 0.0,
) -> GateDecision:
    """Compare the incumbent's per-series model choices with the new ones.

    Both are scored with the same loss on the same backtest windows of ``history`` and on
    the series both cover; incumbent models this run did not try are backtested here. The
    challenger wins when its loss is at most ``(1 - margin)`` × the champion's.
    """
    if incumbent is None or incumbent.is_empty():
        return GateDecision(True, None, None, 0, "no champion yet")
    errors = result.errors
    if errors.is_empty():
        return GateDecision(False, None, None, 0, "no backtest: keeping the champion")
    tested = errors.select("unique_id").unique()
    old = keys_frame(incumbent).select("unique_id", "model").join(tested, on="unique_id")
    have = errors.join(old, on=["unique_id", "model"]).select("unique_id", "loss")
    missing = old.join(have, on="unique_id", how="anti")
    if missing.height:
        have = pl.concat([have, _score(history, missing, result)])
    new = errors.join(
        keys_frame(result.champions).select("unique_id", "model"), on=["unique_id", "model"]
    ).select("unique_id", pl.col("loss").alias("new"))
    both = have.rename({"loss": "old"}).join(new, on="unique_id")
    if both.is_empty():
        return GateDecision(True, None, None, 0, "no common series: the new model takes over")
    old_loss, new_loss = float(both["old"].mean()), float(both["new"].mean())  # type: ignore[arg-type]
    promote = new_loss <= old_loss * (1 - margin)
    verdict = "beats" if promote else "does not beat"
    reason = (
        f"challenger loss {new_loss:.4f} {verdict} champion loss {old_loss:.4f} "
        f"(margin {margin:.1%}) on {both.height} series"
    )
    return GateDecision(promote, old_loss, new_loss, both.height, reason)


def _score(history: pl.DataFrame, picks: pl.DataFrame, result: TrainResult) -> pl.DataFrame:
    """Backtest (series, model) pairs on the run's windows; returns ``unique_id, loss``."""
    params = result.params
    freq = str(params.get("freq", "daily"))
    train_df = to_training_frame(history, freq=freq).join(picks.select("unique_id"), on="unique_id")
    models = picks["model"].unique().to_list()
    cv = backtest(
        train_df,
        picks.select("unique_id", pl.col("model").alias("demand_class")),
        horizon=int(params["horizon"]),  # type: ignore[call-overload]
        n_windows=int(params["n_windows"]),  # type: ignore[call-overload]
        candidates={m: (m,) for m in models},
        freq=freq,
    )
    return series_errors(cv).select("unique_id", "loss")
