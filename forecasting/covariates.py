"""The inputs of the global models beside sales: calendar, price, promotion, item attributes.

Column names are the contract between the feature store and the forecasting stage; every
one is optional (a missing column, or a null value, is "unknown", which the boosted trees
handle natively).
"""

from __future__ import annotations

import polars as pl

from forecasting.history import keys_frame, to_training_frame

__all__ = ["CATEGORICAL", "COVARIATES", "NUMERIC", "model_frame", "with_price_rel"]

NUMERIC: dict[str, str] = {
    "price_rel": "price over its mean of the 364 days before (1 = usual price)",
    "promo": "share of the day's units sold on promotion, or 1 on a planned promotion day",
    "event": "1 on a holiday or event day of the store's calendar",
    "payday": "1 on a payday or SNAP-like day of the store's calendar",
}
CATEGORICAL: dict[str, str] = {
    "event_type": "kind of the day's event (e.g. Religious, National, Sporting)",
    "department": "the item's department",
    "category": "the item's category",
}
COVARIATES = (*NUMERIC, *CATEGORICAL)


def with_price_rel(history: pl.DataFrame, days: int = 364) -> pl.DataFrame:
    """Add ``price_rel`` from ``price`` when it is not given: the price carried forward over
    days without a price, divided by its mean over the previous ``days`` days."""
    if "price_rel" in history.columns or "price" not in history.columns:
        return history
    keys = ("store_id", "sku_id")
    carried = pl.col("price").forward_fill().over(keys)
    return (
        history.sort(*keys, "date")
        .with_columns(carried.alias("_p"))
        .with_columns(
            (pl.col("_p") / pl.col("_p").rolling_mean(days, min_samples=1).over(keys)).alias(
                "price_rel"
            )
        )
        .drop("_p")
    )


def model_frame(
    history: pl.DataFrame, extra: tuple[str, ...] = (), *, freq: str = "daily"
) -> pl.DataFrame:
    """``unique_id, ds, y, censored, store_id`` and every covariate (null when unknown),
    plus the numeric ``extra`` columns of ``history`` (features added by hand).

    ``y`` is the training target with censored days (stockout, suspect) imputed, as the
    statistical models see it; ``censored`` marks those days so that they are never a
    target of the global models nor scored.
    """
    frame = with_price_rel(history)
    train = to_training_frame(frame, freq=freq, censored=True)
    have = [c for c in COVARIATES if c in frame.columns]
    added = [c for c in extra if c in frame.columns and c not in have]
    covs = keys_frame(frame).select(
        "unique_id",
        pl.col("date").alias("ds"),
        "store_id",
        *[pl.col(c).cast(pl.Float64) for c in have if c in NUMERIC],
        *[pl.col(c).cast(pl.String) for c in have if c in CATEGORICAL],
        *[pl.col(c).cast(pl.Float64) for c in added],
    )
    out = train.join(covs, on=["unique_id", "ds"], how="left")
    missing = [
        pl.lit(None, dtype=pl.Float64 if c in NUMERIC else pl.String).alias(c)
        for c in COVARIATES
        if c not in out.columns
    ]
    return out.with_columns(missing) if missing else out
