"""Quantiles of daily demand and of cumulative demand over lead time + review period.

Demand over a span is modelled as a gamma distribution matched to its mean and variance:
non-negative, right-skewed for slow movers, and closed-form. The variance of demand over a
protection period P = L + R with random lead time L is ``P·σ_d²·k² + μ²·σ_L²`` (Silver,
Pyke & Peterson), where σ_d is the backtest daily error of the series' model and k the
measured ratio of cumulative to √h-scaled daily error (autocorrelated errors make k > 1).
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import stats

from kernel.errors import InvalidInput

__all__ = ["add_daily_quantiles", "gamma_quantile", "lead_time_demand", "quantile_column"]


def quantile_column(q: float) -> str:
    """Column name of quantile ``q`` in the forecast contract: 0.95 → ``q95``, 0.975 → ``q97_5``."""
    text = f"{q * 100:.4f}".rstrip("0").rstrip(".")
    return "q" + text.replace(".", "_")


def gamma_quantile(mean: np.ndarray, sd: np.ndarray, q: float | np.ndarray) -> np.ndarray:
    """Quantile ``q`` of a gamma law with the given mean and sd (elementwise).

    A zero mean gives 0; a zero sd gives the mean.
    """
    mean = np.asarray(mean, dtype=float)
    sd = np.asarray(sd, dtype=float)
    q = np.broadcast_to(np.asarray(q, dtype=float), mean.shape)
    out = np.array(mean, copy=True)
    ok = (mean > 0) & (sd > 0)
    shape = mean[ok] ** 2 / sd[ok] ** 2
    scale = sd[ok] ** 2 / mean[ok]
    out[ok] = stats.gamma.ppf(q[ok], a=shape, scale=scale)
    out[mean <= 0] = 0.0
    return out


def add_daily_quantiles(
    forecast: pl.DataFrame, quantiles: list[float], mean: str = "mean", sd: str = "sd"
) -> pl.DataFrame:
    """Add one ``qNN`` column per quantile of each day's demand."""
    m = forecast[mean].to_numpy()
    s = forecast[sd].to_numpy()
    return forecast.with_columns(
        [pl.Series(quantile_column(q), gamma_quantile(m, s, q)) for q in quantiles]
    )


def lead_time_demand(forecast: pl.DataFrame, spans: pl.DataFrame) -> pl.DataFrame:
    """Demand over each store×SKU's protection period at its service level.

    ``forecast``: the forecast contract with ``sd`` (daily) and ``cum_sd_factor``.
    ``spans``: ``store_id, sku_id, protection_days`` (lead time mean + review period, may be
    fractional), ``lead_time_std`` and ``service_level``.
    Returns ``store_id, sku_id, protection_days, service_level, demand_mean, demand_sd,
    demand_quantile, daily_mean, model, model_version``.
    """
    need = {"store_id", "sku_id", "protection_days", "lead_time_std", "service_level"}
    missing = need - set(spans.columns)
    if missing:
        raise ValueError(f"spans lacks column(s) {sorted(missing)}")
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
    agg = joined.group_by("store_id", "sku_id").agg(
        pl.col("protection_days").first(),
        pl.col("service_level").first(),
        pl.col("lead_time_std").first(),
        (pl.col("mean") * weight).sum().alias("demand_mean"),
        pl.col("_day").max().alias("_horizon"),
        pl.col("sd").first().alias("_sd"),
        pl.col("cum_sd_factor").first().alias("_k"),
        (
            pl.col("cum_sd_horizon").first()
            if "cum_sd_horizon" in forecast.columns
            else pl.lit(None, dtype=pl.Int64)
        ).alias("_kh"),
        pl.col("model").first(),
        pl.col("model_version").first(),
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
    # k was measured over windows of _kh days; the autocorrelated part of the error grows
    # with the span, so scale k² - 1 linearly to the protection period (k = 1 at one day).
    span_k = (
        pl.when(pl.col("_kh") > 1)
        .then(
            (1 + (pl.col("_k").pow(2) - 1) * (pl.col("protection_days") - 1) / (pl.col("_kh") - 1))
            .clip(0.25, 16.0)
            .sqrt()
        )
        .otherwise(pl.col("_k"))
    )
    agg = agg.with_columns(
        (pl.col("demand_mean") / pl.col("protection_days")).alias("daily_mean"),
        span_k.alias("_k"),
    ).with_columns(
        (
            pl.col("protection_days") * (pl.col("_sd") * pl.col("_k")).pow(2)
            + pl.col("daily_mean").pow(2) * pl.col("lead_time_std").pow(2)
        )
        .sqrt()
        .alias("demand_sd")
    )
    q = gamma_quantile(
        agg["demand_mean"].to_numpy(),
        agg["demand_sd"].to_numpy(),
        agg["service_level"].to_numpy(),
    )
    return (
        agg.with_columns(pl.Series("demand_quantile", q))
        .select(
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
        .sort("store_id", "sku_id")
    )
