"""Per-series champion choice from backtest errors, and the scores that compare two runs."""

from __future__ import annotations

import polars as pl

from forecasting.candidates import CANDIDATES, COSTLY

__all__ = ["pick_champions", "summarise"]


def pick_champions(errors: pl.DataFrame) -> pl.DataFrame:
    """The model with the least ``loss`` per series (ties: the cheaper, earlier candidate).

    Returns ``unique_id, demand_class, model, loss, rmse, cum_rmse, h``.
    """
    order = {
        name: i
        for names in (*CANDIDATES.values(), *COSTLY.values())
        for i, name in enumerate(names)
    }
    ranked = errors.with_columns(
        pl.col("model").replace_strict(order, default=99, return_dtype=pl.Int64).alias("_rank")
    )
    return (
        ranked.sort("unique_id", "loss", "_rank")
        .group_by("unique_id", maintain_order=True)
        .first()
        .select("unique_id", "demand_class", "model", "loss", "rmse", "cum_rmse", "h")
    )


def summarise(errors: pl.DataFrame, chosen: pl.DataFrame) -> dict[str, float]:
    """Overall and per-class metrics of the chosen model per series (a flat dict for MLflow)."""
    picked = errors.join(chosen.select("unique_id", "model"), on=["unique_id", "model"])
    metrics: dict[str, float] = {}

    def add(prefix: str, frame: pl.DataFrame) -> None:
        if frame.is_empty():
            return
        row = frame.select(
            pl.col("loss").mean().alias("loss"),
            pl.col("mae").mean().alias("mae"),
            pl.col("rmse").mean().alias("rmse"),
            (pl.col("_err_sum").sum() / pl.col("_y_sum").sum()).alias("bias"),
            (pl.col("_abs_sum").sum() / pl.col("_y_sum").sum()).alias("wape"),
            *([pl.col("rmsse").mean().alias("rmsse")] if "rmsse" in frame.columns else []),
            pl.len().alias("series"),
        ).row(0, named=True)
        for key, value in row.items():
            if value is not None:
                metrics[f"{prefix}{key}"] = float(value)

    add("", picked)
    for (cls,), frame in picked.partition_by("demand_class", as_dict=True).items():
        add(f"{cls}.", frame)
    return metrics
