"""Stock snapshots: ``store_id, sku_id, as_of`` (timezone-aware) and ``on_hand``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from features.events import ID_RULE, _bad_id
from kernel.errors import InvalidInput

__all__ = ["validate_inventory"]


def validate_inventory(
    frame: pl.DataFrame,
    *,
    now: datetime | None = None,
    max_age: timedelta = timedelta(days=10_958),
    max_future_skew: timedelta = timedelta(minutes=5),
    max_on_hand: float = 10_000_000.0,
    allowed_stores: set[str] | None = None,
) -> pl.DataFrame:
    """Type and check snapshots, all or nothing; raises :class:`InvalidInput` naming the
    first bad row, its field, value and rule. ``allowed_stores`` (None: any) are the stores
    the sender may write (rule ``store_id.scope``)."""
    need = ["store_id", "sku_id", "as_of", "on_hand"]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"inventory lacks column(s) {missing}; expected {need}",
            field=missing[0],
            rule=f"{missing[0]}.required",
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
            raise InvalidInput(
                f"row {i}: {field}={value!r} {message}",
                field=field,
                value=value,
                rule=f"{field}.{rule}",
                line=i + 1,
            )
    return typed.drop("_row").select(need)
