"""Reading a user's sales history file into the daily (or weekly, monthly) sales frame."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from kernel.errors import InvalidInput
from kernel.inputs import closest, data_line, read_table

__all__ = ["read_history", "read_table"]


def read_history(path: Path, freq: str = "daily") -> pl.DataFrame:
    """A daily-sales file: ``store_id, sku_id, date, units`` and optional ``stockout``,
    ``on_hand``, ``price``. Rows are checked: a bad value names its row and column."""
    frame = read_table(path)
    need = ["store_id", "sku_id", "date", "units"]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        near = closest(missing[0], frame.columns)
        raise InvalidInput(
            f"missing column {missing[0]!r}"
            + (f" (the file has {near!r}: a typo?)" if near else ""),
            source=str(path),
            line=1 if data_line(path, 0) else None,
            field=missing[0],
            rule="column.required",
            hint=f"a history file has columns {', '.join(need)} (optional: stockout, on_hand, "
            f"price); found {', '.join(frame.columns)}",
        )
    frame = frame.with_row_index("_row")
    typed = frame.with_columns(
        pl.col("store_id").cast(pl.String),
        pl.col("sku_id").cast(pl.String),
        pl.col("date").cast(pl.String).str.to_date(strict=False)
        if frame.schema["date"] != pl.Date
        else pl.col("date"),
        pl.col("units").cast(pl.Float64, strict=False),
    )

    def bad(row: int, column: str, value: object, rule: str, message: str) -> InvalidInput:
        line = data_line(path, row)  # None for Parquet: then the 1-based row
        return InvalidInput(
            message if line else f"row {row + 1}: {message}",
            source=str(path),
            line=line,
            field=column,
            value=value,
            rule=rule,
        )

    for col, rule, text in (
        ("date", "date.format", "a date YYYY-MM-DD"),
        ("units", "units.number", "a number"),
    ):
        wrong = typed.filter(pl.col(col).is_null())
        if wrong.height:
            row = wrong["_row"][0]
            raw = frame.filter(pl.col("_row") == row)[col][0]
            raise bad(row, col, raw, rule, f"{col}={raw!r} must be {text}")
    neg = typed.filter(pl.col("units") < 0)
    if neg.height:
        raise bad(
            neg["_row"][0],
            "units",
            neg["units"][0],
            "units.nonnegative",
            f"units={neg['units'][0]} must be >= 0 (returns belong in a separate column)",
        )
    dup = typed.filter(pl.struct("store_id", "sku_id", "date").is_duplicated())
    if dup.height:
        r = dup.row(0, named=True)
        raise bad(
            r["_row"],
            "date",
            r["date"],
            "row.unique",
            f"store_id={r['store_id']!r}, sku_id={r['sku_id']!r}, date={r['date']} appears "
            "more than once; one row per store×SKU and period",
        )
    if "stockout" not in typed.columns:
        typed = typed.with_columns(
            (pl.col("on_hand") <= 0).fill_null(False).alias("stockout")
            if "on_hand" in typed.columns
            else pl.lit(False).alias("stockout")
        )
    typed = typed.with_columns(pl.col("stockout").cast(pl.Boolean, strict=False).fill_null(False))
    return _zero_fill(typed.drop("_row"), freq)


_INTERVALS = {"daily": "1d", "weekly": "1w", "monthly": "1mo"}


def _zero_fill(history: pl.DataFrame, freq: str = "daily") -> pl.DataFrame:
    """Add missing periods (no row = no sales) from each series' first period to the end.

    Periods step from each series' first date (weeks may start on any weekday; months
    keep the day of the month, so date months by their first day)."""
    if freq not in _INTERVALS:
        raise InvalidInput(
            f"--freq {freq!r} unknown",
            field="freq",
            value=freq,
            rule="freq.known",
            hint="choose daily, weekly or monthly",
        )
    end = history["date"].max()
    spans = history.group_by("store_id", "sku_id").agg(pl.col("date").min().alias("first"))
    calendar = spans.select(
        "store_id",
        "sku_id",
        pl.date_ranges("first", pl.lit(end), interval=_INTERVALS[freq]).alias("date"),
    ).explode("date")
    return (
        calendar.join(history, on=["store_id", "sku_id", "date"], how="left")
        .with_columns(pl.col("units").fill_null(0.0), pl.col("stockout").fill_null(False))
        .sort("store_id", "sku_id", "date")
    )
