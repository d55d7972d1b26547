"""Demand classes per series: smooth, erratic, intermittent, lumpy (ADI/CV²), new, inactive."""

from __future__ import annotations

import polars as pl

from forecasting.candidates import freq_of

__all__ = ["DEMAND_CLASSES", "classify", "periods_between"]

DEMAND_CLASSES = ("smooth", "erratic", "intermittent", "lumpy", "new", "inactive")


def classify(
    history: pl.DataFrame,
    *,
    freq: str = "daily",
    adi_cut: float = 1.32,
    cv2_cut: float = 0.49,
    min_periods: int | None = None,
    inactive_periods: int | None = None,
    target: str = "units",
) -> pl.DataFrame:
    """One row per store×SKU: ``n_days, nonzero_days, adi, cv2, demand_class``.

    Every count and threshold is in periods of ``freq`` (days, weeks or months; one row of
    ``history`` per period): ``n_days`` and ``nonzero_days`` count periods (the names are
    kept for tables already in MLflow). ADI is the mean interval between non-zero demands,
    CV² the squared coefficient of variation of the non-zero sizes (Syntetos-Boylan).
    ``new``: fewer than ``min_periods`` periods of history; ``inactive``: no demand in the
    last ``inactive_periods`` periods. Both default to the frequency's own
    (:data:`forecasting.candidates.FREQS`).
    """
    f = freq_of(freq)
    min_periods = f.min_history if min_periods is None else min_periods
    inactive_periods = f.inactive if inactive_periods is None else inactive_periods
    end = history["date"].max()
    y = pl.col(target)
    nz = y.filter(y > 0)
    stats = history.group_by("store_id", "sku_id").agg(
        pl.len().alias("n_days"),
        (y > 0).sum().alias("nonzero_days"),
        (pl.col("date").filter(y > 0).max()).alias("last_sale"),
        (nz.std() / nz.mean()).pow(2).fill_null(0.0).fill_nan(0.0).alias("cv2"),
    )
    stats = stats.with_columns(
        pl.when(pl.col("nonzero_days") > 0)
        .then(pl.col("n_days") / pl.col("nonzero_days"))
        .otherwise(None)
        .alias("adi"),
    )
    idle = periods_between(pl.col("last_sale"), pl.lit(end), freq)
    inactive = pl.col("last_sale").is_null() | (idle >= inactive_periods)
    cls = (
        pl.when(pl.col("n_days") < min_periods)
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
    return (
        stats.with_columns(cls.alias("demand_class")).drop("last_sale").sort("store_id", "sku_id")
    )


def periods_between(start: pl.Expr, end: pl.Expr, freq: str = "daily") -> pl.Expr:
    """Whole periods of ``freq`` from ``start`` to ``end`` (dates): days, weeks or months."""
    freq_of(freq)  # refuse an unknown frequency
    if freq == "monthly":
        return (end.dt.year() * 12 + end.dt.month()) - (start.dt.year() * 12 + start.dt.month())
    days = (end - start).dt.total_days()
    return days // 7 if freq == "weekly" else days
