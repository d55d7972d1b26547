"""Model inputs per store×SKU×day from sales and reference data: what Feast serves.

Pure polars. ``daily_inputs`` joins daily sales with the shelf price (price list, else the
realised POS price carried forward), its change against the usual price, promotions (POS
``promo_id`` share, or a planned promotion), the store's calendar and the item's
attributes; ``calendar_days`` and ``promo_plan`` describe the days ahead.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from features.reference import ALL_STORES

__all__ = [
    "DAILY_INPUT_COLUMNS",
    "calendar_days",
    "daily_inputs",
    "promo_days",
    "promo_plan",
    "shelf_prices",
]

DAILY_INPUT_COLUMNS = (
    "store_id",
    "sku_id",
    "date",
    "units",
    "stockout",
    "price",
    "price_rel",
    "promo",
    "event",
    "event_type",
    "payday",
    "department",
    "category",
)
_PRICE_DAYS = 364  # the "usual" price is the mean over the year before


def calendar_days(calendar: pl.DataFrame | None, stores: list[str]) -> pl.DataFrame:
    """``store_id, date, event, event_type, payday`` for every store: rows for every store
    (``*``) apply to each, a store's own row for a date replaces the chain's."""
    schema = {
        "store_id": pl.String,
        "date": pl.Date,
        "event": pl.Float64,
        "event_type": pl.String,
        "payday": pl.Float64,
    }
    if calendar is None or calendar.is_empty() or not stores:
        return pl.DataFrame(schema=schema)
    own = calendar.filter(pl.col("store_id") != ALL_STORES)
    chain = (
        calendar.filter(pl.col("store_id") == ALL_STORES)
        .drop("store_id")
        .join(pl.DataFrame({"store_id": stores}), how="cross")
        .join(own.select("store_id", "date"), on=["store_id", "date"], how="anti")
    )
    both = pl.concat([own, chain.select(own.columns)])
    return both.select(
        "store_id",
        "date",
        pl.col("event").is_not_null().cast(pl.Float64).alias("event"),
        pl.coalesce("event_type", "event").alias("event_type"),
        pl.col("payday").fill_null(0.0),
    ).sort("store_id", "date")


def shelf_prices(prices: pl.DataFrame | None, days: pl.DataFrame) -> pl.DataFrame:
    """The list price in force on each ``store_id, sku_id, date`` of ``days`` (``price``,
    null before the first entry); a store's own entry wins over a chain-wide one."""
    if prices is None or prices.is_empty():
        return days.with_columns(pl.lit(None, dtype=pl.Float64).alias("price"))
    ordered = days.sort("date")
    out = ordered
    for scope in ("chain", "store"):
        rows = prices.filter(
            (pl.col("store_id") == ALL_STORES)
            if scope == "chain"
            else (pl.col("store_id") != ALL_STORES)
        ).rename({"valid_from": "date", "price": f"_{scope}"})
        by = ["sku_id"] if scope == "chain" else ["store_id", "sku_id"]
        out = out.join_asof(
            rows.select(*by, "date", f"_{scope}").sort("date"),
            on="date",
            by=by,
            strategy="backward",
            check_sortedness=False,
        )
    return out.with_columns(pl.coalesce("_store", "_chain").alias("price")).drop("_store", "_chain")


def promo_days(promotions: pl.DataFrame | None, keys: pl.DataFrame) -> pl.DataFrame:
    """``store_id, sku_id, date, discount``: one row per planned promotion day of a known
    store×SKU (chain-wide promotions apply to every store carrying the SKU)."""
    schema = {"store_id": pl.String, "sku_id": pl.String, "date": pl.Date, "discount": pl.Float64}
    if promotions is None or promotions.is_empty() or keys.is_empty():
        return pl.DataFrame(schema=schema)
    own = promotions.filter(pl.col("store_id") != ALL_STORES)
    chain = (
        promotions.filter(pl.col("store_id") == ALL_STORES)
        .drop("store_id")
        .join(keys.select("store_id", "sku_id"), on="sku_id")
    )
    rows = pl.concat([own, chain.select(own.columns)]).join(
        keys.select("store_id", "sku_id"), on=["store_id", "sku_id"], how="semi"
    )
    return (
        rows.select(
            "store_id",
            "sku_id",
            pl.date_ranges("start_date", "end_date").alias("date"),
            pl.col("discount").fill_null(0.0),
        )
        .explode("date")
        .group_by("store_id", "sku_id", "date")
        .agg(pl.col("discount").max())
        .select(list(schema))
        .sort("store_id", "sku_id", "date")
    )


def daily_inputs(
    daily: pl.DataFrame,
    *,
    calendar: pl.DataFrame | None = None,
    prices: pl.DataFrame | None = None,
    promotions: pl.DataFrame | None = None,
    attributes: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """:data:`DAILY_INPUT_COLUMNS` for every row of ``daily`` (from
    :func:`features.sales.daily_sales`).

    ``price``: the list price if one is in force, else the realised price carried forward
    from the last day with sales; ``price_rel``: that over its mean of the previous 364
    days; ``promo``: the share of the day's units sold with a ``promo_id``, or 1 on a
    planned promotion day.
    """
    keys = ("store_id", "sku_id")
    frame = daily.sort(*keys, "date")
    listed = shelf_prices(prices, frame.select(*keys, "date")).rename({"price": "_list"})
    frame = frame.join(listed, on=[*keys, "date"], how="left")
    price = pl.coalesce("_list", pl.col("price").forward_fill().over(keys))
    pos_promo = (
        (pl.col("promo_units") / pl.col("units")).fill_nan(0.0)
        if "promo_units" in frame.columns
        else pl.lit(0.0)
    )
    planned = promo_days(promotions, frame.select(*keys).unique()).select(
        *keys, "date", pl.lit(1.0).alias("_planned")
    )
    stores = frame["store_id"].unique().sort().to_list()
    cal = calendar_days(calendar, stores)
    frame = (
        frame.with_columns(price.alias("price"))
        .drop("_list")
        .join(planned, on=[*keys, "date"], how="left")
        .join(cal, on=["store_id", "date"], how="left")
        .with_columns(
            (
                pl.col("price")
                / pl.col("price").rolling_mean(_PRICE_DAYS, min_samples=1).over(keys)
            ).alias("price_rel"),
            pl.max_horizontal(pos_promo.fill_null(0.0), pl.col("_planned").fill_null(0.0)).alias(
                "promo"
            ),
            pl.col("event").fill_null(0.0),
            pl.col("payday").fill_null(0.0),
            pl.col("stockout").fill_null(False),
        )
    )
    frame = _with_attributes(frame, attributes)
    return frame.select(DAILY_INPUT_COLUMNS)


def _with_attributes(frame: pl.DataFrame, attributes: pl.DataFrame | None) -> pl.DataFrame:
    if attributes is None or attributes.is_empty():
        return frame.with_columns(
            pl.lit(None, dtype=pl.String).alias("department"),
            pl.lit(None, dtype=pl.String).alias("category"),
        )
    return frame.join(
        attributes.select("sku_id", "department", "category"), on="sku_id", how="left"
    )


def promo_plan(
    promotions: pl.DataFrame | None, keys: pl.DataFrame, today: date, days: int = 366
) -> pl.DataFrame:
    """Per store×SKU the planned promotion days from ``today`` on (ISO strings), as the
    online store keeps them: ``store_id, sku_id, promo_dates``."""
    ahead = promo_days(promotions, keys).filter(
        (pl.col("date") >= today) & (pl.col("date") < today + timedelta(days=days))
    )
    return (
        keys.select("store_id", "sku_id")
        .join(
            ahead.group_by("store_id", "sku_id").agg(
                pl.col("date").sort().cast(pl.String).alias("promo_dates")
            ),
            on=["store_id", "sku_id"],
            how="left",
        )
        .with_columns(pl.col("promo_dates").fill_null(pl.lit([], dtype=pl.List(pl.String))))
    )
