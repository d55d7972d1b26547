"""Reading a user's sales history file into the daily (or weekly, monthly) sales frame."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import polars as pl

from kernel.errors import InvalidInput, NotFound
from kernel.inputs import closest, data_line, read_table

__all__ = ["in_keys", "read_history", "read_table", "scan_history"]

_NEED = ["store_id", "sku_id", "date", "units"]


def read_history(path: Path, freq: str = "daily") -> pl.DataFrame:
    """A daily-sales file: ``store_id, sku_id, date, units`` and optional ``stockout``,
    ``on_hand``, ``price``. Rows are checked: a bad value names its row and column."""
    frame = read_table(path)
    _need_columns(frame.columns, path)
    return _checked(frame.with_row_index("_row"), path, freq)


def scan_history(
    path: Path, freq: str = "daily"
) -> tuple[pl.DataFrame, Callable[[pl.DataFrame], pl.DataFrame]]:
    """A Parquet history read a chunk of series at a time: its ``store_id, sku_id`` keys,
    and a loader of the checked, zero-filled history of some keys (as :func:`read_history`
    returns for the whole file)."""
    if not path.exists():
        raise NotFound(f"{path} does not exist", hint="check the path of --history")
    lazy = pl.scan_parquet(path, row_index_name="_row")
    _need_columns(lazy.collect_schema().names(), path)
    ids = [pl.col("store_id").cast(pl.String), pl.col("sku_id").cast(pl.String)]
    # Streaming: the whole file is never in memory, only its distinct keys.
    keys = lazy.select(ids).unique().collect(engine="streaming")
    last = lazy.select(pl.col("date").cast(pl.String).str.to_date(strict=False).max())
    end = last.collect(engine="streaming").item()

    def load(part: pl.DataFrame) -> pl.DataFrame:
        rows = lazy.with_columns(ids).filter(in_keys(part)).collect()  # pushed into the scan
        return _checked(rows, path, freq, end)

    return keys, load


def in_keys(keys: pl.DataFrame) -> pl.Expr:
    """True on rows whose ``store_id, sku_id`` is one of ``keys``'s: a filter that scans
    push down into the file reader (a join would read every row first)."""
    pair = pl.concat_str([pl.col("store_id"), pl.col("sku_id")], separator="\x1f")
    wanted = keys.select(pl.concat_str(["store_id", "sku_id"], separator="\x1f")).to_series()
    return pair.is_in(wanted.implode())


def _need_columns(columns: list[str], path: Path) -> None:
    missing = [c for c in _NEED if c not in columns]
    if missing:
        near = closest(missing[0], columns)
        raise InvalidInput(
            f"missing column {missing[0]!r}"
            + (f" (the file has {near!r}: a typo?)" if near else ""),
            source=str(path),
            line=1 if data_line(path, 0) else None,
            field=missing[0],
            rule="column.required",
            hint=f"a history file has columns {', '.join(_NEED)} (optional: stockout, on_hand, "
            f"price); found {', '.join(columns)}",
        )


def _checked(frame: pl.DataFrame, path: Path, freq: str, end: date | None = None) -> pl.DataFrame:
    """Type and check history rows (``_row``: 0-based data row of the file), zero-filled."""
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
        wrong = typed.filter(pl.col(col).is_null()).sort("_row")
        if wrong.height:
            row = wrong["_row"][0]
            raw = frame.filter(pl.col("_row") == row)[col][0]
            raise bad(row, col, raw, rule, f"{col}={raw!r} must be {text}")
    neg = typed.filter(pl.col("units") < 0).sort("_row")
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
        r = dup.sort("_row").row(0, named=True)
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
    return _zero_fill(typed.drop("_row"), freq, end)


_INTERVALS = {"daily": "1d", "weekly": "1w", "monthly": "1mo"}


def _zero_fill(history: pl.DataFrame, freq: str = "daily", end: date | None = None) -> pl.DataFrame:
    """Add missing periods (no row = no sales) from each series' first period to ``end``
    (default: the newest date of ``history``).

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
    last = end or history["date"].max()
    spans = history.group_by("store_id", "sku_id").agg(pl.col("date").min().alias("first"))
    calendar = spans.select(
        "store_id",
        "sku_id",
        pl.date_ranges("first", pl.lit(last), interval=_INTERVALS[freq]).alias("date"),
    ).explode("date")
    return (
        calendar.join(history, on=["store_id", "sku_id", "date"], how="left")
        .with_columns(pl.col("units").fill_null(0.0), pl.col("stockout").fill_null(False))
        .sort("store_id", "sku_id", "date")
    )
