"""Reading user files (CSV, Parquet, NDJSON) into polars with errors that say how to fix them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import polars as pl

__all__ = ["in_keys", "read_history", "read_table", "scan_history"]


def read_table(path: Path, *, strings: bool = False) -> pl.DataFrame:
    """Read a CSV (optionally gzipped), Parquet or NDJSON file by its extension.

    ``strings`` reads every CSV column as text so that validation, not the CSV parser,
    judges each value.
    """
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return pl.read_parquet(path)
    if name.endswith((".ndjson", ".jsonl", ".json")):
        return pl.read_ndjson(path, infer_schema_length=None)
    if name.endswith((".csv", ".csv.gz", ".txt", ".tsv")):
        sep = "\t" if name.endswith(".tsv") else ","
        return pl.read_csv(
            path,
            separator=sep,
            infer_schema=not strings,
            infer_schema_length=10_000,
            encoding="utf8-lossy",
        )
    raise ValueError(
        f"{path}: unknown file type; use .csv, .csv.gz, .tsv, .parquet or .ndjson/.jsonl"
    )


def read_history(path: Path, freq: str = "daily") -> pl.DataFrame:
    """A daily-sales file: ``store_id, sku_id, date, units`` and optional ``stockout``,
    ``on_hand``, ``price``. Rows are checked: a bad value names its row and column."""
    frame = read_table(path)
    _need_columns(frame.columns, path)
    return _checked(
        frame.with_row_index("_row", offset=2 if path.suffix == ".csv" else 0), path, freq
    )


def scan_history(
    path: Path, freq: str = "daily"
) -> tuple[pl.DataFrame, Callable[[pl.DataFrame], pl.DataFrame]]:
    """A Parquet history read a chunk of series at a time: its ``store_id, sku_id`` keys,
    and a loader of the checked, zero-filled history of some keys (as :func:`read_history`
    returns for the whole file)."""
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
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
    need = ["store_id", "sku_id", "date", "units"]
    missing = [c for c in need if c not in columns]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {missing}; a history file needs {need} "
            f"(optional: stockout, on_hand, price); found {columns}"
        )


def _checked(frame: pl.DataFrame, path: Path, freq: str, end: date | None = None) -> pl.DataFrame:
    """Type and check history rows (``_row`` numbers them as the file does), zero-filled."""
    typed = frame.with_columns(
        pl.col("store_id").cast(pl.String),
        pl.col("sku_id").cast(pl.String),
        pl.col("date").cast(pl.String).str.to_date(strict=False)
        if frame.schema["date"] != pl.Date
        else pl.col("date"),
        pl.col("units").cast(pl.Float64, strict=False),
    )
    for col, rule in (("date", "a date YYYY-MM-DD"), ("units", "a number")):
        bad = typed.filter(pl.col(col).is_null())
        if bad.height:
            row = bad["_row"][0]
            raw = frame.filter(pl.col("_row") == row)[col][0]
            raise ValueError(f"{path}: row {row}: {col}={raw!r} must be {rule}")
    neg = typed.filter(pl.col("units") < 0)
    if neg.height:
        raise ValueError(
            f"{path}: row {neg['_row'][0]}: units={neg['units'][0]} must be >= 0 "
            "(returns belong in a separate column)"
        )
    dup = typed.filter(pl.struct("store_id", "sku_id", "date").is_duplicated())
    if dup.height:
        r = dup.sort("_row").row(0, named=True)
        raise ValueError(
            f"{path}: row {r['_row']}: store_id={r['store_id']!r}, sku_id={r['sku_id']!r}, "
            f"date={r['date']} appears more than once; one row per store×SKU×day"
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
    """Add missing periods (no row = no sales) from each series' first period to the end.

    Periods step from each series' first date (weeks may start on any weekday; months
    keep the day of the month, so date months by their first day)."""
    if freq not in _INTERVALS:
        raise ValueError(f"--freq {freq!r} unknown; choose daily, weekly or monthly")
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
