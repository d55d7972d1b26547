"""Sales history → statsforecast's long format, with stockout periods treated as censored."""

from __future__ import annotations

import polars as pl

from forecasting.candidates import freq_of
from kernel.errors import InvalidInput

__all__ = ["SERIES_KEYS", "keys_frame", "split_uid", "to_training_frame"]

SERIES_KEYS = ("store_id", "sku_id")
_SEP = "\x1f"


def to_training_frame(
    history: pl.DataFrame,
    target: str = "units",
    freq: str = "daily",
    *,
    censored: bool = False,
) -> pl.DataFrame:
    """Return ``unique_id, ds, y`` sorted, one row per store×SKU×period.

    A stockout period's sales are censored demand, not zero demand, and a ``suspect``
    period (:mod:`forecasting.checks`) is no demand record at all: ``y`` then is the mean
    of the series' last uncensored periods — the frequency's moving-average window (28
    days, 8 weeks, 6 months) — or 0 when there is none yet. With ``censored``, a boolean
    ``censored`` column says which periods were imputed.
    """
    missing = [c for c in (*SERIES_KEYS, "date", target) if c not in history.columns]
    if missing:
        raise InvalidInput(
            f"history lacks column(s) {missing}; expected store_id, sku_id, date, {target} "
            "and optionally stockout, suspect",
            field=missing[0],
            rule="column.required",
        )
    stockout = pl.lit(False)
    for flag in ("stockout", "suspect"):
        if flag in history.columns:
            stockout = stockout | pl.col(flag).fill_null(False)
    observed = pl.when(stockout).then(None).otherwise(pl.col(target).cast(pl.Float64))
    frame = (
        history.sort(*SERIES_KEYS, "date")
        .with_columns(observed.alias("_obs"))
        .with_columns(
            pl.col("_obs")
            .rolling_mean(freq_of(freq).window, min_samples=1)
            .over(SERIES_KEYS)
            .alias("_level")
        )
        .with_columns(
            pl.col("_level").forward_fill().over(SERIES_KEYS).fill_null(0.0).alias("_level")
        )
        .select(
            _uid().alias("unique_id"),
            pl.col("date").alias("ds"),
            pl.coalesce("_obs", "_level").alias("y"),
            *([pl.col("_obs").is_null().alias("censored")] if censored else []),
        )
    )
    return frame


def _uid() -> pl.Expr:
    return pl.concat_str([pl.col("store_id"), pl.col("sku_id")], separator=_SEP)


def keys_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Add ``unique_id`` to a frame keyed by ``store_id, sku_id``."""
    return frame.with_columns(_uid().alias("unique_id"))


def split_uid(frame: pl.DataFrame) -> pl.DataFrame:
    """Replace ``unique_id`` by ``store_id, sku_id``."""
    parts = pl.col("unique_id").str.split_exact(_SEP, 1)
    return frame.with_columns(
        parts.struct.field("field_0").alias("store_id"),
        parts.struct.field("field_1").alias("sku_id"),
    ).drop("unique_id")
