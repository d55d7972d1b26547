"""Stock snapshots: ``store_id, sku_id, as_of`` (timezone-aware) and ``on_hand``."""

from __future__ import annotations

from pathlib import Path

import polars as pl

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
    frame: pl.DataFrame, *, source: str | None = None, first_line: int | None = None
) -> pl.DataFrame:
    """Type and check snapshots; raises :class:`InvalidInput` naming the first bad row (its
    file line when ``first_line``, the line of row 0, is given), the field and the rule."""
    missing = [c for c in INVENTORY_COLUMNS if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"inventory lacks column(s) {missing}; expected {list(INVENTORY_COLUMNS)}",
            field=missing[0],
            rule="column.required",
            source=source,
        )
    indexed = frame.with_row_index("_row")
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
    checks = [
        ("store_id", pl.col("store_id").is_null(), "required", "is required"),
        ("sku_id", pl.col("sku_id").is_null(), "required", "is required"),
        ("as_of", pl.col("as_of").is_null(), "timestamp", "must be ISO-8601 with a UTC offset"),
        (
            "on_hand",
            ~pl.col("on_hand").is_finite().fill_null(False),
            "number",
            "must be a finite number",
        ),
    ]
    for field, failed, rule, says in checks:
        bad = typed.filter(failed)
        if bad.height:
            i = int(bad["_row"][0])
            value = frame[field][i]
            prefix = f"row {i}: " if first_line is None else ""  # no file: the item's index
            raise InvalidInput(
                f"{prefix}{field}={value!r} {says}",
                field=field,
                value=value,
                rule=f"{field}.{rule}",
                source=source,
                line=None if first_line is None else first_line + i,
            )
    return typed.drop("_row").select(INVENTORY_COLUMNS)
