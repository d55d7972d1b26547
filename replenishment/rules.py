"""Replenishment rules: suppliers and items, validated with errors that name field and row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

__all__ = ["WEEKDAYS", "Rules", "RulesError", "next_order_date"]

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

_SUPPLIER_SCHEMA: dict[str, pl.DataType] = {
    "supplier_id": pl.String(),
    "lead_time_mean": pl.Float64(),
    "lead_time_std": pl.Float64(),
    "order_days": pl.String(),
    "review_period_days": pl.Float64(),
    "min_order_value": pl.Float64(),
    "currency": pl.String(),
}
_ITEM_SCHEMA: dict[str, pl.DataType] = {
    "sku_id": pl.String(),
    "supplier_id": pl.String(),
    "unit_cost": pl.Float64(),
    "pack_size": pl.Int64(),
    "moq_units": pl.Int64(),
}


class RulesError(ValueError):
    """A rule breaks its contract; the message names the table, row, field, value and rule."""


@dataclass(frozen=True)
class Rules:
    """Validated suppliers and items (one supplier per item)."""

    suppliers: pl.DataFrame
    items: pl.DataFrame

    @classmethod
    def from_frames(cls, suppliers: pl.DataFrame, items: pl.DataFrame) -> Rules:
        """Validate and normalise; raises :class:`RulesError` on the first broken rule."""
        sup = _typed(
            suppliers,
            _SUPPLIER_SCHEMA,
            "suppliers",
            optional={
                "min_order_value": 0.0,
                "lead_time_std": 0.0,
                "currency": "EUR",
                "review_period_days": None,
            },
        )
        itm = _typed(items, _ITEM_SCHEMA, "items", optional={"moq_units": 0, "pack_size": 1})
        _check(sup, "suppliers", "supplier_id", pl.col("supplier_id").is_null(), "is required")
        _check(
            sup,
            "suppliers",
            "lead_time_mean",
            ~(pl.col("lead_time_mean") >= 0),
            "must be a number >= 0 (days)",
        )
        _check(
            sup,
            "suppliers",
            "lead_time_std",
            ~(pl.col("lead_time_std") >= 0),
            "must be a number >= 0 (days)",
        )
        _check(
            sup,
            "suppliers",
            "order_days",
            ~_valid_days(pl.col("order_days")),
            f"must list weekdays from {','.join(WEEKDAYS)}, comma-separated",
        )
        _check(
            sup, "suppliers", "min_order_value", ~(pl.col("min_order_value") >= 0), "must be >= 0"
        )
        _unique(sup, "suppliers", "supplier_id")
        _check(itm, "items", "sku_id", pl.col("sku_id").is_null(), "is required")
        _check(itm, "items", "unit_cost", ~(pl.col("unit_cost") >= 0), "must be a number >= 0")
        _check(itm, "items", "pack_size", ~(pl.col("pack_size") >= 1), "must be an integer >= 1")
        _check(itm, "items", "moq_units", ~(pl.col("moq_units") >= 0), "must be an integer >= 0")
        _unique(itm, "items", "sku_id")
        known = set(sup["supplier_id"].to_list())
        _check(
            itm,
            "items",
            "supplier_id",
            ~pl.col("supplier_id").is_in(list(known)),
            "must name a supplier in the suppliers table",
        )
        sup = sup.with_columns(
            pl.coalesce(
                pl.col("review_period_days"), _review_from_days(pl.col("order_days"))
            ).alias("review_period_days")
        )
        return cls(suppliers=sup, items=itm)


def next_order_date(order_days: str, on_or_after: date) -> date:
    """The first of the supplier's order days on or after ``on_or_after``."""
    allowed = {WEEKDAYS.index(d.strip()) for d in order_days.split(",") if d.strip()}
    for offset in range(7):
        day = on_or_after + timedelta(days=offset)
        if day.weekday() in allowed:
            return day
    raise RulesError(f"order_days {order_days!r} names no weekday")


def _typed(
    frame: pl.DataFrame, schema: dict[str, pl.DataType], table: str, optional: dict[str, object]
) -> pl.DataFrame:
    missing = [c for c in schema if c not in frame.columns and c not in optional]
    if missing:
        raise RulesError(f"{table}: missing column(s) {missing}; have {frame.columns}")
    frame = frame.with_columns(
        [pl.lit(v).alias(c) for c, v in optional.items() if c not in frame.columns]
    ).with_row_index("_row", offset=1)
    for name, dtype in schema.items():
        cast = frame[name].cast(dtype, strict=False)
        bad = frame.filter(cast.is_null() & frame[name].is_not_null())
        if bad.height:
            row = bad.row(0, named=True)
            raise RulesError(
                f"{table} row {row['_row']}: {name}={row[name]!r} is not a valid {dtype}"
            )
        frame = frame.with_columns(cast.alias(name))
    return frame.select(
        "_row", *schema, *[c for c in frame.columns if c not in schema and c != "_row"]
    )


def _check(frame: pl.DataFrame, table: str, field: str, failed: pl.Expr, rule: str) -> None:
    bad = frame.filter(failed.fill_null(True))
    if bad.height:
        row = bad.row(0, named=True)
        more = f" (and {bad.height - 1} more rows)" if bad.height > 1 else ""
        raise RulesError(f"{table} row {row['_row']}: {field}={row[field]!r} {rule}{more}")


def _unique(frame: pl.DataFrame, table: str, field: str) -> None:
    dup = frame.filter(pl.col(field).is_duplicated())
    if dup.height:
        row = dup.row(0, named=True)
        raise RulesError(f"{table} row {row['_row']}: {field}={row[field]!r} appears twice")


def _valid_days(col: pl.Expr) -> pl.Expr:
    pattern = "^(" + "|".join(WEEKDAYS) + r")(\s*,\s*(" + "|".join(WEEKDAYS) + "))*$"
    return col.str.contains(pattern)


def _review_from_days(col: pl.Expr) -> pl.Expr:
    """Longest gap in days between consecutive order days (7 for one order day a week)."""

    def gap(days: str) -> float:
        idx = sorted({WEEKDAYS.index(d.strip()) for d in days.split(",")})
        return float(max(((idx[(k + 1) % len(idx)] - idx[k]) % 7) or 7 for k in range(len(idx))))

    return col.map_elements(gap, return_dtype=pl.Float64)
