"""Demand over each item's protection period (order day + lead time + review period).

The forecasting stage hands over the daily forecast contract: per day a mean and a
standard deviation, and per series the level variance ``level_var`` (c) and the chain's
calibration map of levels ``level_map``, both measured on the backtest totals
(:mod:`forecasting.quantiles`). Here the days of the protection period P
are summed and the variance of the total is ``Σ sd_t² − c·Σ μ_t² + c·(Σ μ_t)² + μ̄²·σ_L²``
(:func:`kernel.distribution.total_sd`): the days' own errors, the error of the level they
share (it grows with P², the days' own errors with P: one law for any P), and a random
lead time L (Silver, Pyke & Peterson); the
quantile at the service level comes from the shared demand law in
:mod:`kernel.distribution`, asked at the level the map gives for the period (the law's
misses differ by level and period: :func:`kernel.distribution.recalibrated_level`).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from kernel.distribution import quantile, recalibrated_level, total_sd
from kernel.errors import InvalidInput

__all__ = ["LEAD_TIME_DEMAND_COLUMNS", "lead_time_demand"]

LEAD_TIME_DEMAND_COLUMNS = (
    "store_id",
    "sku_id",
    "protection_days",
    "service_level",
    "demand_mean",
    "demand_sd",
    "demand_quantile",
    "daily_mean",
    "model",
    "model_version",
)


def lead_time_demand(forecast: pl.DataFrame, spans: pl.DataFrame) -> pl.DataFrame:
    """Demand over each store×SKU's protection period at its service level.

    ``forecast``: the forecast contract (``store_id, sku_id, date, mean, sd`` and
    optionally ``level_var`` (none: independent days), ``model``, ``model_version``).
    ``spans``: ``store_id, sku_id, protection_days`` (may be fractional),
    ``lead_time_std`` and ``service_level``. Returns :data:`LEAD_TIME_DEMAND_COLUMNS`.
    """
    need = {"store_id", "sku_id", "protection_days", "lead_time_std", "service_level"}
    missing = need - set(spans.columns)
    if missing:
        raise InvalidInput(
            f"spans lacks column(s) {sorted(missing)}",
            field=sorted(missing)[0],
            rule="spans.columns",
        )
    first_day = forecast.group_by("store_id", "sku_id").agg(pl.col("date").min().alias("_d0"))
    joined = (
        forecast.join(first_day, on=["store_id", "sku_id"])
        .join(spans, on=["store_id", "sku_id"], how="inner")
        .with_columns(((pl.col("date") - pl.col("_d0")).dt.total_days() + 1).alias("_day"))
    )
    # Day t counts fully while t <= P, partly (P - floor P) on day ceil(P).
    weight = pl.min_horizontal(
        pl.lit(1.0), pl.max_horizontal(pl.lit(0.0), pl.col("protection_days") - pl.col("_day") + 1)
    )
    optional = {
        "level_var": pl.lit(0.0),
        "level_map": pl.lit(None, dtype=pl.String),
        "model": pl.lit(None, dtype=pl.String),
        "model_version": pl.lit(None, dtype=pl.String),
    }
    agg = joined.group_by("store_id", "sku_id").agg(
        pl.col("protection_days").first(),
        pl.col("service_level").first(),
        pl.col("lead_time_std").first(),
        (pl.col("mean") * weight).sum().alias("demand_mean"),
        (pl.col("sd").pow(2) * weight).sum().alias("_var"),
        (pl.col("mean").pow(2) * weight).sum().alias("_mean_sq"),
        pl.col("_day").max().alias("_horizon"),
        *[
            (pl.col(c).first() if c in forecast.columns else default).alias(
                "_c" if c == "level_var" else c
            )
            for c, default in optional.items()
        ],
    )
    short = agg.filter(pl.col("_horizon") < pl.col("protection_days"))
    if short.height:
        row = short.row(0, named=True)
        raise InvalidInput(
            f"forecast horizon {row['_horizon']} days is shorter than the protection period "
            f"{row['protection_days']} days for {row['store_id']}/{row['sku_id']}",
            field="horizon",
            value=row["_horizon"],
            rule="horizon.covers_protection",
            hint="forecast further ahead (--horizon)",
        )
    agg = agg.with_columns(
        (pl.col("demand_mean") / pl.col("protection_days")).alias("daily_mean"),
    ).with_columns(
        (pl.col("_var") + pl.col("daily_mean").pow(2) * pl.col("lead_time_std").pow(2)).alias(
            "_var"
        )
    )
    sd = total_sd(
        agg["demand_mean"].to_numpy(),
        agg["_var"].to_numpy(),
        agg["_c"].fill_null(0.0).to_numpy(),
        agg["_mean_sq"].to_numpy(),
    )
    agg = agg.with_columns(pl.Series("demand_sd", sd))
    q = quantile(
        agg["demand_mean"].to_numpy(),
        agg["demand_sd"].to_numpy(),
        _levels(agg),
    )
    return (
        agg.with_columns(pl.Series("demand_quantile", q))
        .select(LEAD_TIME_DEMAND_COLUMNS)
        .sort("store_id", "sku_id")
    )


def _levels(agg: pl.DataFrame) -> np.ndarray:
    """Each row's service level as the law is asked for it: through the chain's
    calibration map (``level_map``) at the row's protection period, when there is one."""
    levels = agg["service_level"].to_numpy().astype(float)
    maps = agg["level_map"]
    if maps.null_count() == len(maps):
        return levels
    days = agg["protection_days"].to_numpy().astype(float)
    out = levels.copy()
    for text in maps.drop_nulls().unique().to_list():
        if not text:
            continue
        rows = (maps == text).fill_null(False).to_numpy()
        out[rows] = recalibrated_level(levels[rows], days[rows], text)
    return out
