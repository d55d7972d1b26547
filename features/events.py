"""POS event contract: parse and validate raw lines into typed events or quarantined rejects."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

__all__ = [
    "EVENT_COLUMNS",
    "EVENT_SCHEMA",
    "REJECT_SCHEMA",
    "ValidationResult",
    "body_hash",
    "validate_events",
]

EVENT_SCHEMA: dict[str, pl.DataType] = {
    "event_id": pl.String(),
    "store_id": pl.String(),
    "sku_id": pl.String(),
    "sold_at": pl.Datetime("us", "UTC"),
    "quantity": pl.Float64(),
    "unit_price": pl.Float64(),
    "promo_id": pl.String(),
    "register_id": pl.String(),
    "currency": pl.String(),
}
EVENT_COLUMNS = tuple(EVENT_SCHEMA)
_REQUIRED = ("event_id", "store_id", "sku_id", "sold_at", "quantity", "unit_price")
_OPTIONAL = ("promo_id", "register_id", "currency")

REJECT_SCHEMA: dict[str, pl.DataType] = {
    "event_id": pl.String(),
    "rule": pl.String(),
    "field": pl.String(),
    "value": pl.String(),
    "message": pl.String(),
    "payload": pl.String(),
}


@dataclass(frozen=True)
class ValidationResult:
    """Typed, valid events (with ``body_hash``) and rejected lines with the failed rule."""

    accepted: pl.DataFrame
    rejected: pl.DataFrame


def validate_events(
    raw: pl.DataFrame,
    *,
    now: datetime | None = None,
    max_future_skew: timedelta = timedelta(minutes=5),
    max_abs_quantity: float = 10_000.0,
) -> ValidationResult:
    """Check every line against the POS contract; each line ends up accepted or rejected.

    The first failing rule of a line names it: ``<field>.<rule>`` (e.g. ``quantity.nonzero``).
    """
    missing = [c for c in _REQUIRED if c not in raw.columns]
    if missing:
        raise ValueError(
            f"POS input lacks required column(s) {missing}; got columns {raw.columns}. "
            "Map your columns to the contract (see `replen ingest pos --help`)."
        )
    now = now or datetime.now(UTC)
    frame = raw.with_columns(
        pl.struct(pl.all()).struct.json_encode().alias("_payload"),
        *[pl.lit(None, dtype=pl.String).alias(c) for c in _OPTIONAL if c not in raw.columns],
    )
    parsed = frame.with_columns(
        _as_text("event_id"),
        _as_text("store_id"),
        _as_text("sku_id"),
        _as_text("promo_id"),
        _as_text("register_id"),
        _as_text("currency"),
        _as_float("quantity"),
        _as_float("unit_price"),
        *_parse_time(frame.schema["sold_at"]),
    )
    limit = pl.lit(now + max_future_skew).cast(pl.Datetime("us", "UTC"))
    checks: list[tuple[str, str, pl.Expr, str]] = [
        ("event_id", "required", pl.col("event_id").is_null(), "event_id is required"),
        ("store_id", "required", pl.col("store_id").is_null(), "store_id is required"),
        ("sku_id", "required", pl.col("sku_id").is_null(), "sku_id is required"),
        (
            "sold_at",
            "timestamp",
            pl.col("sold_at").is_null() & ~pl.col("_naive"),
            "sold_at must be an ISO-8601 timestamp with a UTC offset",
        ),
        (
            "sold_at",
            "timezone",
            pl.col("_naive"),
            "sold_at has no time zone; send it with an offset (e.g. 2024-05-01T10:00:00+02:00)",
        ),
        (
            "sold_at",
            "future",
            pl.col("sold_at") > limit,
            f"sold_at is later than now + {max_future_skew} (clock skew?)",
        ),
        ("quantity", "number", pl.col("quantity").is_null(), "quantity must be a number"),
        (
            "quantity",
            "finite",
            ~pl.col("quantity").is_finite(),
            "quantity must be finite",
        ),
        ("quantity", "nonzero", pl.col("quantity") == 0, "quantity must not be 0"),
        (
            "quantity",
            "bound",
            pl.col("quantity").abs() > max_abs_quantity,
            f"|quantity| must be at most {max_abs_quantity:g}",
        ),
        ("unit_price", "number", pl.col("unit_price").is_null(), "unit_price must be a number"),
        (
            "unit_price",
            "finite",
            ~pl.col("unit_price").is_finite(),
            "unit_price must be finite",
        ),
        ("unit_price", "nonnegative", pl.col("unit_price") < 0, "unit_price must be >= 0"),
        (
            "currency",
            "iso4217",
            pl.col("currency").is_not_null() & ~pl.col("currency").str.contains(r"^[A-Z]{3}$"),
            "currency must be a 3-letter ISO-4217 code (e.g. EUR)",
        ),
    ]
    rule = pl.lit(None, dtype=pl.String)
    field = pl.lit(None, dtype=pl.String)
    message = pl.lit(None, dtype=pl.String)
    for name, check, failed, text in reversed(checks):
        cond = failed.fill_null(False)
        rule = pl.when(cond).then(pl.lit(f"{name}.{check}")).otherwise(rule)
        field = pl.when(cond).then(pl.lit(name)).otherwise(field)
        message = pl.when(cond).then(pl.lit(text)).otherwise(message)
    judged = parsed.with_columns(rule.alias("_rule"), field.alias("_field"), message.alias("_msg"))

    bad = judged.filter(pl.col("_rule").is_not_null())
    rejected = bad.select(
        pl.col("event_id"),
        pl.col("_rule").alias("rule"),
        pl.col("_field").alias("field"),
        _raw_value(bad, raw).alias("value"),
        pl.col("_msg").alias("message"),
        pl.col("_payload").alias("payload"),
    )
    good = judged.filter(pl.col("_rule").is_null()).select(
        [pl.col(c).cast(t) for c, t in EVENT_SCHEMA.items()]
    )
    return ValidationResult(accepted=good.with_columns(body_hash(good)), rejected=rejected)


def body_hash(events: pl.DataFrame) -> pl.Series:
    """A stable digest of an event's body (all contract fields but the id).

    Used to tell a resent identical event (a duplicate) from a reused id (a conflict).
    """
    canon = events.select(
        pl.concat_str(
            [
                pl.col("store_id"),
                pl.col("sku_id"),
                pl.col("sold_at").dt.epoch("us").cast(pl.String),
                pl.col("quantity").round(6).cast(pl.String),
                pl.col("unit_price").round(6).cast(pl.String),
                pl.col("promo_id").fill_null(""),
                pl.col("register_id").fill_null(""),
                pl.col("currency").fill_null(""),
            ],
            separator="\x1f",
        )
    ).to_series()
    digests = [hashlib.blake2b(s.encode(), digest_size=12).hexdigest() for s in canon.to_list()]
    return pl.Series("body_hash", digests, dtype=pl.String)


def _as_text(name: str) -> pl.Expr:
    text = pl.col(name).cast(pl.String).str.strip_chars()
    return pl.when(text == "").then(None).otherwise(text).alias(name)


def _as_float(name: str) -> pl.Expr:
    return pl.col(name).cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False).alias(name)


def _parse_time(dtype: pl.DataType) -> list[pl.Expr]:
    """Parse ``sold_at`` to UTC; flag naive values (no offset) so they are rejected by name."""
    col = pl.col("sold_at")
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return [
                pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("sold_at"),
                col.is_not_null().alias("_naive"),
            ]
        return [
            col.dt.convert_time_zone("UTC").cast(pl.Datetime("us", "UTC")),
            pl.lit(False).alias("_naive"),
        ]
    text = col.cast(pl.String).str.strip_chars().str.replace(" ", "T").str.replace(r"Z$", "+00:00")
    aware = pl.coalesce(
        text.str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%S%.f%:z", strict=False),
        text.str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%S%.f%z", strict=False),
        text.str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M%:z", strict=False),
    )
    naive = pl.coalesce(
        text.str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%S%.f", strict=False),
        text.str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M", strict=False),
    )
    return [aware.alias("sold_at"), (aware.is_null() & naive.is_not_null()).alias("_naive")]


def _raw_value(bad: pl.DataFrame, raw: pl.DataFrame) -> pl.Expr:
    """The offending field's original value, as text, for the quarantine record."""
    out = pl.lit(None, dtype=pl.String)
    for name in raw.columns:
        if name in EVENT_SCHEMA:
            out = (
                pl.when(pl.col("_field") == name)
                .then(pl.col("_payload").str.json_path_match(f"$.{name}"))
                .otherwise(out)
            )
    return out
