"""Stock snapshots: ``store_id, sku_id, as_of`` (timezone-aware) and ``on_hand``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from features.events import ID_RULE, _bad_id
from kernel.errors import InvalidInput
from kernel.inputs import check_names, data_line, read_table

__all__ = ["INVENTORY_COLUMNS", "read_inventory", "validate_inventory"]

INVENTORY_COLUMNS = ("store_id", "sku_id", "as_of", "on_hand")


def read_inventory(path: Path) -> pl.DataFrame:
    """Read and check a snapshot file (CSV, Parquet or NDJSON); an unknown or missing column
    or a bad value is an error naming the file, the 1-based line and the field."""
    frame = read_table(path, strings=True)
    check_names(
        frame.columns,
        INVENTORY_COLUMNS,
        required=INVENTORY_COLUMNS,
        source=str(path),
        line=1 if data_line(path, 0) else None,  # the header (CSV) or first object (NDJSON)
    )
    return validate_inventory(frame, source=str(path), first_line=data_line(path, 0))


def validate_inventory(
    frame: pl.DataFrame,
    *,
    source: str | None = None,
    first_line: int | None = None,
    now: datetime | None = None,
    max_age: timedelta = timedelta(days=10_958),
    max_future_skew: timedelta = timedelta(minutes=5),
    max_on_hand: float = 10_000_000.0,
    allowed_stores: set[str] | None = None,
) -> pl.DataFrame:
    """Type and check snapshots, all or nothing; raises :class:`InvalidInput` naming the
    first bad row (its file line when ``first_line``, the line of row 0, is given), its
    field, value and rule. ``allowed_stores`` (None: any) are the stores the sender may
    write (rule ``store_id.scope``)."""
    missing = [c for c in INVENTORY_COLUMNS if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"inventory lacks column(s) {missing}; expected {list(INVENTORY_COLUMNS)}",
            field=missing[0],
            rule="column.required",
            source=source,
        )
    now = now or datetime.now(UTC)
    indexed = frame.with_row_index("_row").with_columns(
        pl.col("store_id").cast(pl.String).str.strip_chars(),
        pl.col("sku_id").cast(pl.String).str.strip_chars(),
    )
    as_of = indexed["as_of"]
    if isinstance(as_of.dtype, pl.Datetime):
        if as_of.dtype.time_zone is None:
            raise InvalidInput(
                "as_of has no time zone; send timestamps with an offset",
                field="as_of",
                rule="as_of.timezone",
                source=source,
            )
        parsed = as_of.dt.convert_time_zone("UTC")
    else:
        text = as_of.cast(pl.String).str.replace(" ", "T").str.replace(r"Z$", "+00:00")
        parsed = text.str.strptime(
            pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%S%.f%:z", strict=False
        )
    on_hand = indexed["on_hand"].cast(pl.Float64, strict=False)
    typed = indexed.with_columns(parsed.alias("as_of"), on_hand.alias("on_hand"))
    utc = pl.Datetime("us", "UTC")
    checks = [
        ("store_id", "required", pl.col("store_id").is_null(), "is required"),
        ("store_id", "format", _bad_id("store_id"), f"must be {ID_RULE}"),
        (
            "store_id",
            "scope",
            pl.lit(False)
            if allowed_stores is None
            else ~pl.col("store_id").is_in(sorted(allowed_stores)),
            "is outside the stores this client may send for",
        ),
        ("sku_id", "required", pl.col("sku_id").is_null(), "is required"),
        ("sku_id", "format", _bad_id("sku_id"), f"must be {ID_RULE}"),
        ("as_of", "timestamp", pl.col("as_of").is_null(), "must be ISO-8601 with a UTC offset"),
        (
            "as_of",
            "future",
            pl.col("as_of") > pl.lit(now + max_future_skew).cast(utc),
            f"is later than now + {max_future_skew}",
        ),
        (
            "as_of",
            "past",
            pl.col("as_of") < pl.lit(now - max_age).cast(utc),
            f"is more than {max_age.days} days before now",
        ),
        ("on_hand", "finite", ~pl.col("on_hand").is_finite(), "must be a finite number"),
        ("on_hand", "nonnegative", pl.col("on_hand") < 0, "must be >= 0"),
        ("on_hand", "bound", pl.col("on_hand") > max_on_hand, f"must be at most {max_on_hand:g}"),
    ]
    for field, rule, failed, message in checks:
        bad = typed.filter(failed.fill_null(field == "on_hand"))
        if bad.height:
            i = int(bad["_row"][0])
            value = frame[field][i]
            prefix = f"row {i}: " if first_line is None else ""  # no file: the item's index
            raise InvalidInput(
                f"{prefix}{field}={value!r} {message}",
                field=field,
                value=value,
                rule=f"{field}.{rule}",
                source=source,
                line=None if first_line is None else first_line + i,
            )
    return typed.drop("_row").select(INVENTORY_COLUMNS)
