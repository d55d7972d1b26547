"""Demand classes per series: smooth, erratic, intermittent, lumpy (ADI/CV²), new, inactive."""

from __future__ import annotations

import polars as pl

__all__ = ["DEMAND_CLASSES", "classify"]

DEMAND_CLASSES = ("smooth", "erratic", "intermittent", "lumpy", "new", "inactive")


def classify(
    history: pl.DataFrame,
    *,
    adi_cut: float = 1.32,
    cv2_cut: float = 0.49,
    min_days: int = 56,
    inactive_days: int = 56,
    target: str = "units",
) -> pl.DataFrame:
    """One row per store×SKU: ``n_days, nonzero_days, adi, cv2, demand_class``.

    ADI is the mean interval between non-zero demands, CV² the squared coefficient of
    variation of the non-zero sizes (Syntetos-Boylan). ``new``: fewer than ``min_days``
    periods of history; ``inactive``: no demand in the last ``inactive_days`` periods (rows
    of the zero-filled history: days, weeks or months alike).
    """
    y = pl.col(target)
    nz = y.filter(y > 0)
    # Periods after the last sale; a series that never sold: all of them.
    after_last = pl.int_range(pl.len(), 0, -1) - 1
    stats = (
        history.sort("store_id", "sku_id", "date")
        .group_by("store_id", "sku_id")
        .agg(
            pl.len().alias("n_days"),
            (y > 0).sum().alias("nonzero_days"),
            after_last.filter(y > 0).min().fill_null(pl.len()).alias("_idle"),
            (nz.std() / nz.mean()).pow(2).fill_null(0.0).fill_nan(0.0).alias("cv2"),
        )
    )
    stats = stats.with_columns(
        pl.when(pl.col("nonzero_days") > 0)
        .then(pl.col("n_days") / pl.col("nonzero_days"))
        .otherwise(None)
        .alias("adi"),
    )
    inactive = pl.col("_idle") >= inactive_days
    cls = (
        pl.when(pl.col("n_days") < min_days)
        .then(pl.lit("new"))
        .when(inactive)
        .then(pl.lit("inactive"))
        .when((pl.col("adi") < adi_cut) & (pl.col("cv2") < cv2_cut))
        .then(pl.lit("smooth"))
        .when(pl.col("adi") < adi_cut)
        .then(pl.lit("erratic"))
        .when(pl.col("cv2") < cv2_cut)
        .then(pl.lit("intermittent"))
        .otherwise(pl.lit("lumpy"))
    )
    return stats.with_columns(cls.alias("demand_class")).drop("_idle").sort("store_id", "sku_id")
