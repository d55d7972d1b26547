"""Daily sales and sales velocity per store×SKU from POS events, with polars."""

from __future__ import annotations

from datetime import date

import polars as pl

from kernel.errors import NotReady

__all__ = [
    "DAILY_SALES_COLUMNS",
    "VELOCITY_SCHEMA",
    "daily_sales",
    "last_date",
    "velocity",
    "velocity_history",
]

DAILY_SALES_COLUMNS = (
    "store_id",
    "sku_id",
    "date",
    "units",
    "revenue",
    "returns",
    "price",
    "on_hand",
    "stockout",
    "promo_units",
)


def daily_sales(
    events: pl.LazyFrame | pl.DataFrame,
    inventory: pl.LazyFrame | pl.DataFrame | None = None,
    *,
    end: date | None = None,
    tz: str = "UTC",
) -> pl.DataFrame:
    """Aggregate POS events to one row per store×SKU×day, calendar days zero-filled.

    ``units`` counts units sold (positive lines), ``returns`` units returned (negative lines,
    as a positive number), ``revenue`` the net amount, ``price`` the realised unit price of
    sales (null on days without sales), ``promo_units`` the units sold on lines carrying a
    ``promo_id``. A series runs from its first event to ``end``
    (default: the last event day). ``on_hand`` is the latest stock snapshot at or before the
    day, carried forward; ``stockout`` is true when that on-hand is zero, so forecasting can
    treat the day's sales as censored demand. Days are cut in time zone ``tz``.
    """
    lazy = events.lazy() if isinstance(events, pl.DataFrame) else events
    day = pl.col("sold_at").dt.convert_time_zone(tz).dt.date().alias("date")
    q = pl.col("quantity")
    on_promo = (
        pl.col("promo_id").is_not_null()
        if "promo_id" in lazy.collect_schema().names()
        else pl.lit(False)
    )
    agg = (
        lazy.group_by("store_id", "sku_id", day)
        .agg(
            q.filter(q > 0).sum().alias("units"),
            (-q.filter(q < 0)).sum().alias("returns"),
            (q * pl.col("unit_price")).sum().alias("revenue"),
            (q * pl.col("unit_price")).filter(q > 0).sum().alias("_sales_value"),
            q.filter((q > 0) & on_promo).sum().alias("promo_units"),
        )
        .collect()
    )
    if agg.is_empty():
        return pl.DataFrame(schema=_DAILY_SCHEMA)
    last = end or agg["date"].max()
    spans = agg.group_by("store_id", "sku_id").agg(pl.col("date").min().alias("first"))
    calendar = spans.select(
        "store_id",
        "sku_id",
        pl.date_ranges("first", pl.lit(last), interval="1d").alias("date"),
    ).explode("date")
    daily = (
        calendar.join(agg, on=["store_id", "sku_id", "date"], how="left")
        .with_columns(
            pl.col("units", "returns", "revenue", "_sales_value", "promo_units").fill_null(0.0),
        )
        .with_columns(
            pl.when(pl.col("units") > 0)
            .then(pl.col("_sales_value") / pl.col("units"))
            .otherwise(None)
            .alias("price")
        )
        .drop("_sales_value")
        .sort("store_id", "sku_id", "date")
    )
    daily = _attach_stock(daily, inventory, tz)
    return daily.select([pl.col(c).cast(t) for c, t in _DAILY_SCHEMA.items()])


VELOCITY_SCHEMA: dict[str, pl.DataType] = {
    "store_id": pl.String(),
    "sku_id": pl.String(),
    "as_of": pl.Date(),
    "units_1d": pl.Float64(),
    "units_7d": pl.Float64(),
    "units_28d": pl.Float64(),
    "days_since_last_sale": pl.Int64(),
}
"""The columns of :func:`velocity` (and of the online ``sku_velocity`` view)."""

_DAILY_SCHEMA: dict[str, pl.DataType] = {
    "store_id": pl.String(),
    "sku_id": pl.String(),
    "date": pl.Date(),
    "units": pl.Float64(),
    "revenue": pl.Float64(),
    "returns": pl.Float64(),
    "price": pl.Float64(),
    "on_hand": pl.Float64(),
    "stockout": pl.Boolean(),
    "promo_units": pl.Float64(),
}


def _attach_stock(
    daily: pl.DataFrame, inventory: pl.LazyFrame | pl.DataFrame | None, tz: str
) -> pl.DataFrame:
    if inventory is None:
        return daily.with_columns(
            pl.lit(None, dtype=pl.Float64).alias("on_hand"), pl.lit(False).alias("stockout")
        )
    snaps = (
        inventory.lazy()
        .select(
            "store_id",
            "sku_id",
            pl.col("as_of").dt.convert_time_zone(tz).dt.date().alias("date"),
            pl.col("as_of").alias("_ts"),
            pl.col("on_hand").cast(pl.Float64),
        )
        .sort("_ts")
        .group_by("store_id", "sku_id", "date")
        .agg(pl.col("on_hand").last())
        .collect()
        .sort("date")
    )
    joined = daily.sort("date").join_asof(
        snaps, on="date", by=["store_id", "sku_id"], strategy="backward", check_sortedness=False
    )
    return joined.with_columns((pl.col("on_hand") <= 0).fill_null(False).alias("stockout")).sort(
        "store_id", "sku_id", "date"
    )


def velocity_history(daily: pl.DataFrame) -> pl.DataFrame:
    """Velocity for every store×SKU and every day of ``daily`` (``as_of`` = that day)."""
    ordered = daily.sort("store_id", "sku_id", "date")
    keys = ("store_id", "sku_id")
    last_sale = (
        pl.when(pl.col("units") > 0).then(pl.col("date")).otherwise(None).forward_fill().over(keys)
    )
    return ordered.select(
        "store_id",
        "sku_id",
        pl.col("date").alias("as_of"),
        pl.col("units").alias("units_1d"),
        pl.col("units").rolling_sum(7, min_samples=1).over(keys).alias("units_7d"),
        pl.col("units").rolling_sum(28, min_samples=1).over(keys).alias("units_28d"),
        (pl.col("date") - last_sale).dt.total_days().alias("days_since_last_sale"),
    )


def velocity(daily: pl.DataFrame, as_of: date | None = None) -> pl.DataFrame:
    """Velocity per store×SKU as of one day (default: the last day in ``daily``).

    Requires zero-filled daily rows (as :func:`daily_sales` returns).
    """
    as_of = as_of or last_date(daily)
    window = daily.filter(pl.col("date") <= as_of)
    return (
        velocity_history(window.filter(pl.col("date") > as_of - pl.duration(days=28)))
        .filter(pl.col("as_of") == as_of)
        .drop("days_since_last_sale")
        .join(_days_since_last_sale(window, as_of), on=["store_id", "sku_id"], how="left")
    )


def last_date(frame: pl.DataFrame, column: str = "date") -> date:
    """The latest date in ``frame[column]`` (raises on an empty frame)."""
    value = frame[column].max()
    if not isinstance(value, date):
        raise NotReady(
            f"no dates in column {column!r}: there are no sales yet",
            hint="ingest POS lines first (`replen ingest pos FILE`)",
        )
    return value


def _days_since_last_sale(daily: pl.DataFrame, as_of: date) -> pl.DataFrame:
    return daily.group_by("store_id", "sku_id").agg(
        (pl.lit(as_of) - pl.col("date").filter(pl.col("units") > 0).max())
        .dt.total_days()
        .alias("days_since_last_sale")
    )
