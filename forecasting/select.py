"""Per-series champion choice from backtest errors, and the scores that compare two runs."""

from __future__ import annotations

import polars as pl

from forecasting.candidates import CANDIDATES, COSTLY

__all__ = ["pick_champions", "summarise"]


def pick_champions(errors: pl.DataFrame, switch: float = 0.3) -> pl.DataFrame:
    """Each series' model: its class's champion, unless its own best beats it clearly.

    The class champion is the candidate with the least mean ``score`` over the class's
    series (``rmsse`` when known: scale-free, so series of any volume count alike; else
    ``loss``). A series keeps its own best candidate only when that scores at least
    ``switch`` (a fraction) better than the class champion on its own backtest: a short
    backtest of one noisy series is weak evidence, and pooling it with its class was
    clearly more accurate on the M5 hold-out (benchmarks/README.md). ``switch=0`` is pure
    per-series selection; ``switch=1`` pure per-class. Ties go to the cheaper candidate.
    Returns ``unique_id, demand_class, model, loss, rmse, cum_rmse, h, score``.
    """
    order = {
        name: i
        for names in (*CANDIDATES.values(), *COSTLY.values())
        for i, name in enumerate(names)
    }
    metric = "rmsse" if "rmsse" in errors.columns else "loss"
    scored = errors.with_columns(
        pl.col(metric).alias("score"),
        pl.col("model").replace_strict(order, default=99, return_dtype=pl.Int64).alias("_rank"),
    )
    per_class = (
        scored.group_by("demand_class", "model")
        .agg(pl.col("score").mean().alias("_class_score"), pl.col("_rank").first())
        .sort("demand_class", "_class_score", "_rank", nulls_last=True)
        .group_by("demand_class", maintain_order=True)
        .first()
        .select("demand_class", pl.col("model").alias("_class_model"))
    )
    own = (
        scored.sort("unique_id", "score", "loss", "_rank", nulls_last=True)
        .group_by("unique_id", maintain_order=True)
        .first()
        .select(
            "unique_id",
            "demand_class",
            pl.col("model").alias("_own"),
            pl.col("score").alias("_own_score"),
        )
    )
    class_pick = (
        scored.join(per_class, on="demand_class")
        .filter(pl.col("model") == pl.col("_class_model"))
        .select("unique_id", "_class_model", pl.col("score").alias("_class_series_score"))
    )
    choice = own.join(class_pick, on="unique_id", how="left").select(
        "unique_id",
        pl.when(
            pl.col("_class_model").is_null()
            | (pl.col("_own_score") < pl.col("_class_series_score") * (1 - switch))
        )
        .then(pl.col("_own"))
        .otherwise(pl.col("_class_model"))
        .alias("model"),
    )
    return (
        scored.join(choice, on=["unique_id", "model"])
        .select("unique_id", "demand_class", "model", "loss", "rmse", "cum_rmse", "h", "score")
        .sort("unique_id")
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
            *([pl.col("mase").mean().alias("mase")] if "mase" in frame.columns else []),
            pl.len().alias("series"),
        ).row(0, named=True)
        for key, value in row.items():
            if value is not None:
                metrics[f"{prefix}{key}"] = float(value)

    add("", picked)
    for (cls,), frame in picked.partition_by("demand_class", as_dict=True).items():
        add(f"{cls}.", frame)
    return metrics
