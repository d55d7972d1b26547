"""Stock snapshots: ``store_id, sku_id, as_of`` (timezone-aware) and ``on_hand``."""

from __future__ import annotations

import polars as pl

__all__ = ["validate_inventory"]


def validate_inventory(frame: pl.DataFrame) -> pl.DataFrame:
    """Type and check snapshots; raises ValueError naming the first bad row, field and rule."""
    need = ["store_id", "sku_id", "as_of", "on_hand"]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise ValueError(f"inventory lacks column(s) {missing}; expected {need}")
    indexed = frame.with_row_index("_row")
    as_of = indexed["as_of"]
    if isinstance(as_of.dtype, pl.Datetime):
        if as_of.dtype.time_zone is None:
            raise ValueError("as_of has no time zone; send timestamps with an offset")
        parsed = as_of.dt.convert_time_zone("UTC")
    else:
        text = as_of.cast(pl.String).str.replace(" ", "T").str.replace(r"Z$", "+00:00")
        parsed = text.str.strptime(
            pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%S%.f%:z", strict=False
        )
    on_hand = indexed["on_hand"].cast(pl.Float64, strict=False)
    typed = indexed.with_columns(parsed.alias("as_of"), on_hand.alias("on_hand"))
    checks = [
        ("store_id", pl.col("store_id").is_null(), "is required"),
        ("sku_id", pl.col("sku_id").is_null(), "is required"),
        ("as_of", pl.col("as_of").is_null(), "must be ISO-8601 with a UTC offset"),
        ("on_hand", ~pl.col("on_hand").is_finite().fill_null(False), "must be a finite number"),
    ]
    for field, failed, rule in checks:
        bad = typed.filter(failed)
        if bad.height:
            i = bad["_row"][0]
            raise ValueError(f"row {i}: {field}={frame[field][i]!r} {rule}")
    return typed.drop("_row").select(need)
