"""Quantiles of daily demand in the forecast contract, from the shared demand law."""

from __future__ import annotations

import polars as pl

from kernel.distribution import quantile, quantile_column

__all__ = ["add_daily_quantiles", "quantile_column"]


def add_daily_quantiles(
    forecast: pl.DataFrame, quantiles: list[float], mean: str = "mean", sd: str = "sd"
) -> pl.DataFrame:
    """Add one ``qNN`` column per quantile of each day's demand (law: mean and ``sd``)."""
    m = forecast[mean].to_numpy()
    s = forecast[sd].to_numpy()
    return forecast.with_columns(
        [pl.Series(quantile_column(q), quantile(m, s, q)) for q in quantiles]
    )
