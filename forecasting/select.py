"""Champion choice from backtest windows, and the scores that compare two runs.

Selection has to generalise to the weeks after the retrain, so it is cautious: each demand
class has a default model (its first candidate); a challenger replaces it only when its
sales-value-weighted loss is lower on most backtest windows and on average — a model that
wins big on one window and loses the others stays out. A series keeps a model of its own
only under the same rule on its own windows and when it is clearly (``switch``) better.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from forecasting.candidates import CANDIDATES, COSTLY

__all__ = ["Selection", "pick_champions", "sales_weights", "summarise"]


@dataclass(frozen=True)
class Selection:
    """``chosen``: ``unique_id, demand_class, model``; ``scores``: weighted loss per class,
    model and window; ``decisions``: per class the default, the champion and its wins."""

    chosen: pl.DataFrame
    scores: pl.DataFrame
    decisions: pl.DataFrame


def sales_weights(
    history: pl.DataFrame, cutoffs: list, days: int = 28, uid: pl.Expr | None = None
) -> pl.DataFrame:
    """M5-style weights: each series' sales value (units × price, or units without prices)
    over the ``days`` before each cutoff. Returns ``unique_id, cutoff, weight``."""
    from forecasting.history import keys_frame

    price = (
        pl.col("price").forward_fill().over("store_id", "sku_id").fill_null(1.0)
        if "price" in history.columns
        else pl.lit(1.0)
    )
    frame = keys_frame(history.sort("store_id", "sku_id", "date")).select(
        "unique_id", "date", (pl.col("units").fill_null(0.0) * price).alias("_value")
    )
    parts = [
        frame.filter(
            (pl.col("date") <= cutoff) & (pl.col("date") > pl.lit(cutoff) - pl.duration(days=days))
        )
        .group_by("unique_id")
        .agg(pl.col("_value").sum().alias("weight"))
        .with_columns(pl.lit(cutoff).cast(pl.Date).alias("cutoff"))
        for cutoff in cutoffs
    ]
    return pl.concat(parts).select("unique_id", "cutoff", "weight")


def pick_champions(
    windows: pl.DataFrame,
    weights: pl.DataFrame | None = None,
    *,
    switch: float = 0.3,
    metric: str = "loss",
    candidates: Mapping[str, tuple[str, ...]] | None = None,
) -> Selection:
    """Each series' model from per-window errors (:func:`forecasting.backtest.window_errors`).

    Per class and window, candidates are scored by the ``weights``-weighted mean of
    ``metric`` over the class's series (equal weights without ``weights``). The class
    default (its first candidate) yields only to a challenger with a lower score on most
    windows and a lower mean; among those, the lowest mean wins. A series keeps its own
    best candidate when that wins on most of its windows and its mean is at least
    ``switch`` better than the class champion's (``switch=1``: pure per class).
    ``candidates``: each class's names in order (default first); by default
    :data:`forecasting.candidates.CANDIDATES` then the costly ones. Ties go to the
    earlier candidate.
    """
    lists = {
        c: (*CANDIDATES.get(c, ()), *COSTLY.get(c, ())) for c in {*CANDIDATES, *COSTLY}
    } | dict(candidates or {})
    order = pl.DataFrame(
        [(c, name, i) for c, names in lists.items() for i, name in enumerate(names)],
        schema={"demand_class": pl.String, "model": pl.String, "_rank": pl.Int64},
        orient="row",
    ).unique(["demand_class", "model"], keep="first")
    w = (
        windows.join(weights, on=["unique_id", "cutoff"], how="left").with_columns(
            pl.col("weight").fill_null(0.0)
        )
        if weights is not None
        else windows.with_columns(pl.lit(1.0).alias("weight"))
    )
    # A class whose series all weigh 0 in a window (no sales) counts them equally.
    w = w.with_columns(
        pl.when(pl.col("weight").sum().over("demand_class", "model", "cutoff") > 0)
        .then(pl.col("weight"))
        .otherwise(1.0)
        .alias("weight"),
        pl.col(metric).fill_nan(None).alias("_m"),
    ).drop_nulls("_m")
    scores = w.group_by("demand_class", "model", "cutoff").agg(
        ((pl.col("_m") * pl.col("weight")).sum() / pl.col("weight").sum()).alias("score")
    )
    decisions = _class_decisions(scores, order)
    champions = decisions.select("demand_class", pl.col("champion").alias("_champ"))
    chosen = _series_choice(w, champions, switch, order)
    return Selection(
        chosen=chosen, scores=scores.sort("demand_class", "model", "cutoff"), decisions=decisions
    )


def _ranked(frame: pl.DataFrame, order: pl.DataFrame) -> pl.DataFrame:
    return frame.join(order, on=["demand_class", "model"], how="left").with_columns(
        pl.col("_rank").fill_null(99)
    )


def _class_decisions(scores: pl.DataFrame, order: pl.DataFrame) -> pl.DataFrame:
    ranked = _ranked(scores, order)
    default = (
        ranked.sort("demand_class", "_rank", "model")
        .group_by("demand_class", maintain_order=True)
        .first()
        .select("demand_class", pl.col("model").alias("default"))
    )
    versus = (
        ranked.join(default, on="demand_class")
        .join(
            scores.rename({"model": "default", "score": "_d"}),
            on=["demand_class", "default", "cutoff"],
        )
        .group_by("demand_class", "model", "default")
        .agg(
            (pl.col("score") < pl.col("_d")).sum().alias("wins"),
            pl.len().alias("windows"),
            pl.col("score").mean().alias("mean_score"),
            pl.col("_d").mean().alias("default_score"),
            pl.col("_rank").first(),
        )
    )
    eligible = (pl.col("model") == pl.col("default")) | (
        (pl.col("wins") * 2 > pl.col("windows")) & (pl.col("mean_score") < pl.col("default_score"))
    )
    return (
        versus.filter(eligible)
        .sort("demand_class", "mean_score", "_rank")
        .group_by("demand_class", maintain_order=True)
        .first()
        .select(
            "demand_class",
            "default",
            pl.col("model").alias("champion"),
            "wins",
            "windows",
            pl.col("mean_score").alias("champion_score"),
            "default_score",
        )
        .sort("demand_class")
    )


def _series_choice(
    w: pl.DataFrame, champions: pl.DataFrame, switch: float, order: pl.DataFrame
) -> pl.DataFrame:
    per = _ranked(
        w.group_by("unique_id", "demand_class", "model").agg(pl.col("_m").mean().alias("_mean")),
        order,
    )
    own = (
        per.sort("unique_id", "_mean", "_rank", nulls_last=True)
        .group_by("unique_id", maintain_order=True)
        .first()
        .select(
            "unique_id",
            "demand_class",
            pl.col("model").alias("_own"),
            pl.col("_mean").alias("_own_mean"),
        )
        .join(champions, on="demand_class", how="left")
    )
    champ = w.join(own.select("unique_id", "_champ"), on="unique_id").filter(
        pl.col("model") == pl.col("_champ")
    )
    mine = w.join(own.select("unique_id", "_own"), on="unique_id").filter(
        pl.col("model") == pl.col("_own")
    )
    duel = (
        mine.select("unique_id", "cutoff", pl.col("_m").alias("_o"))
        .join(
            champ.select("unique_id", "cutoff", pl.col("_m").alias("_c")),
            on=["unique_id", "cutoff"],
        )
        .group_by("unique_id")
        .agg(
            ((pl.col("_o") < pl.col("_c")).sum() * 2 > pl.len()).alias("_most"),
            pl.col("_c").mean().alias("_champ_mean"),
        )
    )
    keep_own = pl.col("_champ").is_null() | (
        pl.col("_most").fill_null(False)
        & (pl.col("_own_mean") < pl.col("_champ_mean") * (1 - switch))
    )
    return (
        own.join(duel, on="unique_id", how="left")
        .select(
            "unique_id",
            "demand_class",
            pl.when(keep_own).then(pl.col("_own")).otherwise(pl.col("_champ")).alias("model"),
        )
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
