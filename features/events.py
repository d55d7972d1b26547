"""POS event contract: parse and validate raw lines into typed events or quarantined rejects."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from kernel.errors import InvalidInput

__all__ = [
    "BODY_COLUMNS",
    "EVENT_COLUMNS",
    "EVENT_SCHEMA",
    "ID_PATTERN",
    "ID_RULE",
    "REJECT_SCHEMA",
    "ValidationResult",
    "parse_timestamps",
    "same_body",
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
BODY_COLUMNS = tuple(c for c in EVENT_SCHEMA if c != "event_id")
# Ids (event, store, SKU, promotion, register): 1–64 printable ASCII characters, no
# control or invisible characters that would make two ids look alike.
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.:/#@+\-]{0,63}")
ID_RULE = "1–64 characters: letters, digits, space and _ . : / # @ + - (starting alphanumeric)"
_ID_REGEX = "^" + ID_PATTERN.pattern + "$"
# A valid id that strip would leave unchanged (it cannot end in a space).
_CLEAN_ID_REGEX = r"^[A-Za-z0-9](?:[A-Za-z0-9 _.:/#@+\-]{0,62}[A-Za-z0-9_.:/#@+\-])?$"
_ID_COLUMNS = ("event_id", "store_id", "sku_id", "promo_id", "register_id")
_NUMBER_COLUMNS = ("quantity", "unit_price")
_REQUIRED = ("event_id", "store_id", "sku_id", "sold_at", "quantity", "unit_price")
_OPTIONAL = ("promo_id", "register_id", "currency")

REJECT_SCHEMA: dict[str, pl.DataType] = {
    "line": pl.Int64(),
    "event_id": pl.String(),
    "rule": pl.String(),
    "field": pl.String(),
    "value": pl.String(),
    "message": pl.String(),
    "payload": pl.String(),
}


# Active ISO-4217 currency codes (2025 list, funds and precious metals excluded).
ISO_4217 = frozenset(
    {
        "AED",
        "AFN",
        "ALL",
        "AMD",
        "ANG",
        "AOA",
        "ARS",
        "AUD",
        "AWG",
        "AZN",
        "BAM",
        "BBD",
        "BDT",
        "BGN",
        "BHD",
        "BIF",
        "BMD",
        "BND",
        "BOB",
        "BRL",
        "BSD",
        "BTN",
        "BWP",
        "BYN",
        "BZD",
        "CAD",
        "CDF",
        "CHF",
        "CLP",
        "CNY",
        "COP",
        "CRC",
        "CUP",
        "CVE",
        "CZK",
        "DJF",
        "DKK",
        "DOP",
        "DZD",
        "EGP",
        "ERN",
        "ETB",
        "EUR",
        "FJD",
        "FKP",
        "GBP",
        "GEL",
        "GHS",
        "GIP",
        "GMD",
        "GNF",
        "GTQ",
        "GYD",
        "HKD",
        "HNL",
        "HTG",
        "HUF",
        "IDR",
        "ILS",
        "INR",
        "IQD",
        "IRR",
        "ISK",
        "JMD",
        "JOD",
        "JPY",
        "KES",
        "KGS",
        "KHR",
        "KMF",
        "KPW",
        "KRW",
        "KWD",
        "KYD",
        "KZT",
        "LAK",
        "LBP",
        "LKR",
        "LRD",
        "LSL",
        "LYD",
        "MAD",
        "MDL",
        "MGA",
        "MKD",
        "MMK",
        "MNT",
        "MOP",
        "MRU",
        "MUR",
        "MVR",
        "MWK",
        "MXN",
        "MYR",
        "MZN",
        "NAD",
        "NGN",
        "NIO",
        "NOK",
        "NPR",
        "NZD",
        "OMR",
        "PAB",
        "PEN",
        "PGK",
        "PHP",
        "PKR",
        "PLN",
        "PYG",
        "QAR",
        "RON",
        "RSD",
        "RUB",
        "RWF",
        "SAR",
        "SBD",
        "SCR",
        "SDG",
        "SEK",
        "SGD",
        "SHP",
        "SLE",
        "SOS",
        "SRD",
        "SSP",
        "STN",
        "SVC",
        "SYP",
        "SZL",
        "THB",
        "TJS",
        "TMT",
        "TND",
        "TOP",
        "TRY",
        "TTD",
        "TWD",
        "TZS",
        "UAH",
        "UGX",
        "USD",
        "UYU",
        "UZS",
        "VED",
        "VES",
        "VND",
        "VUV",
        "WST",
        "XAF",
        "XCD",
        "XCG",
        "XOF",
        "XPF",
        "YER",
        "ZAR",
        "ZMW",
        "ZWG",
    }
)


@dataclass(frozen=True)
class ValidationResult:
    """Typed, valid events and rejected lines with the rule each broke."""

    accepted: pl.DataFrame
    rejected: pl.DataFrame


def validate_events(
    raw: pl.DataFrame,
    *,
    now: datetime | None = None,
    max_future_skew: timedelta = timedelta(minutes=5),
    max_abs_quantity: float = 10_000.0,
    max_age: timedelta = timedelta(days=10_958),
    max_unit_price: float = 1_000_000.0,
    allowed_stores: set[str] | None = None,
) -> ValidationResult:
    """Check every line against the POS contract; each line ends up accepted or rejected.

    The first failing rule of a line names it: ``<field>.<rule>`` (e.g. ``quantity.nonzero``).
    ``sold_at`` must lie within ``max_age`` before ``now`` and ``max_future_skew`` after;
    ``allowed_stores`` (None: any) are the stores the sender may write (``store_id.scope``).
    """
    missing = [c for c in _REQUIRED if c not in raw.columns]
    if missing:
        raise InvalidInput(
            f"POS input lacks required column(s) {missing}; got columns {raw.columns}",
            field=missing[0],
            rule="column.required",
            hint="map your columns to the contract (see `replen ingest pos --help`)",
        )
    now = now or datetime.now(UTC)
    # ``_line``, when given, is each line's place in what the sender sent (HTTP bodies
    # whose unparsable lines were set aside); otherwise the row number.
    raw = (
        raw.with_columns(pl.col("_line").cast(pl.UInt32))
        if "_line" in raw.columns
        else raw.with_row_index("_line")
    ).with_row_index("_row")  # the row's position: rejected lines are gathered by it
    frame = raw.with_columns(
        *[pl.lit(None, dtype=pl.String).alias(c) for c in _OPTIONAL if c not in raw.columns],
    )
    # Each column is cleaned by its cheap path (a value that needs nothing done to it), all
    # in one parallel pass; the slower one runs only for the lines it did not fit. Ids come
    # with their format flags.
    first = frame.select(
        *[pl.col(n).cast(pl.String) for n in _ID_COLUMNS],
        *[
            pl.col(n)
            .cast(pl.String)
            .str.contains(_CLEAN_ID_REGEX)
            .fill_null(True)
            .alias(f"_fits_{n}")
            for n in _ID_COLUMNS
        ],
        _as_text("currency"),
        *[_as_number(n, frame.schema[n]) for n in _NUMBER_COLUMNS],
    )
    columns = [first["currency"]]
    for name in _ID_COLUMNS:
        text, misfit = _id_text(first[name], first[f"_fits_{name}"])
        columns += [text, misfit.alias(f"_bad_{name}")]
    columns += [_number_misses(first[n], frame[n]) for n in _NUMBER_COLUMNS]
    parsed = frame.select("_line", "_row").with_columns(*columns, *_parse_time(frame["sold_at"]))
    checks = _checks(
        now,
        max_future_skew=max_future_skew,
        max_abs_quantity=max_abs_quantity,
        max_age=max_age,
        max_unit_price=max_unit_price,
        allowed_stores=allowed_stores,
    )
    # One pass decides good or bad; which rule a bad line broke is worked out for the
    # (few) bad lines only.
    judged = parsed.with_columns(
        pl.any_horizontal([failed.fill_null(False) for _, _, failed, _ in checks]).alias("_bad")
    )
    good = judged.filter(~pl.col("_bad")).select(
        [pl.col(c).cast(t) for c, t in EVENT_SCHEMA.items()]
    )
    rule = pl.lit(None, dtype=pl.String)
    for name, check, failed, _ in reversed(checks):
        rule = pl.when(failed.fill_null(False)).then(pl.lit(f"{name}.{check}")).otherwise(rule)
    fields = {f"{name}.{check}": name for name, check, _, _ in checks}
    texts = {f"{name}.{check}": text for name, check, _, text in checks}
    bad = (
        judged.filter(pl.col("_bad"))
        .with_columns(rule.alias("_rule"))
        .with_columns(
            pl.col("_rule").replace_strict(fields, return_dtype=pl.String).alias("_field"),
            pl.col("_rule").replace_strict(texts, return_dtype=pl.String).alias("_msg"),
        )
    )
    # Only rejected lines need their original text: encode just those.
    bad = bad.with_columns(_payloads(raw, bad["_row"]).alias("_payload"))
    rejected = bad.select(
        pl.col("_line").cast(pl.Int64).alias("line"),
        pl.col("event_id"),
        pl.col("_rule").alias("rule"),
        pl.col("_field").alias("field"),
        _raw_values(raw, bad).alias("value"),
        pl.col("_msg").alias("message"),
        pl.col("_payload").alias("payload"),
    )
    return ValidationResult(accepted=good, rejected=rejected)


def _checks(
    now: datetime,
    *,
    max_future_skew: timedelta,
    max_abs_quantity: float,
    max_age: timedelta,
    max_unit_price: float,
    allowed_stores: set[str] | None,
) -> list[tuple[str, str, pl.Expr, str]]:
    """The contract's rules in order: (field, rule, failed-when expression, message)."""
    limit = pl.lit(now + max_future_skew).cast(pl.Datetime("us", "UTC"))
    oldest = pl.lit(now - max_age).cast(pl.Datetime("us", "UTC"))
    scope = (
        pl.lit(False)
        if allowed_stores is None
        else ~pl.col("store_id").is_in(sorted(allowed_stores))
    )
    return [
        ("event_id", "required", pl.col("event_id").is_null(), "event_id is required"),
        ("event_id", "format", pl.col("_bad_event_id"), f"event_id must be {ID_RULE}"),
        ("store_id", "required", pl.col("store_id").is_null(), "store_id is required"),
        ("store_id", "format", pl.col("_bad_store_id"), f"store_id must be {ID_RULE}"),
        (
            "store_id",
            "scope",
            scope,
            "store_id is outside the stores this client may send for",
        ),
        ("sku_id", "required", pl.col("sku_id").is_null(), "sku_id is required"),
        ("sku_id", "format", pl.col("_bad_sku_id"), f"sku_id must be {ID_RULE}"),
        ("promo_id", "format", pl.col("_bad_promo_id"), f"promo_id must be {ID_RULE}"),
        ("register_id", "format", pl.col("_bad_register_id"), f"register_id must be {ID_RULE}"),
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
        (
            "sold_at",
            "past",
            pl.col("sold_at") < oldest,
            f"sold_at is more than {max_age.days} days before now",
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
            "unit_price",
            "bound",
            pl.col("unit_price") > max_unit_price,
            f"unit_price must be at most {max_unit_price:g}",
        ),
        (
            "currency",
            "iso4217",
            pl.col("currency").is_not_null() & ~pl.col("currency").is_in(sorted(ISO_4217)),
            "currency must be an active ISO-4217 code (e.g. EUR, USD, GBP)",
        ),
    ]


def same_body(left_suffix: str = "", right_suffix: str = "_other") -> pl.Expr:
    """True where two joined events carry the same body (every contract field but the id).

    Tells a resent identical event (a duplicate) from a reused id (a conflict).
    """
    return pl.all_horizontal(
        [pl.col(f"{c}{left_suffix}").eq_missing(pl.col(f"{c}{right_suffix}")) for c in BODY_COLUMNS]
    )


def _bad_id(name: str) -> pl.Expr:
    return pl.col(name).is_not_null() & ~pl.col(name).str.contains(_ID_REGEX)


def _id_text(text: pl.Series, fits: pl.Series) -> tuple[pl.Series, pl.Series]:
    """An id column as text (stripped, blank → null) and where it breaks the id format.

    A value that ``fits`` (a valid id with nothing to strip: almost every one) passes as
    is; only the others are stripped and judged."""
    if fits.all():
        return text, pl.repeat(False, len(text), dtype=pl.Boolean, eager=True)
    rows = (~fits).arg_true()
    cleaned = pl.DataFrame({"v": text.gather(rows)}).select(_as_text("v")).to_series()
    bad = cleaned.is_not_null() & ~cleaned.str.contains(_ID_REGEX)
    return (
        text.scatter(rows, cleaned),
        pl.repeat(False, len(text), dtype=pl.Boolean, eager=True).scatter(rows, bad),
    )


def _as_number(name: str, dtype: pl.DataType) -> pl.Expr:
    """Numbers as floats: text is cast as is (see :func:`_number_misses`)."""
    if dtype.is_numeric():
        return pl.col(name).cast(pl.Float64)
    return pl.col(name).cast(pl.String).cast(pl.Float64, strict=False)


def _number_misses(number: pl.Series, column: pl.Series) -> pl.Series:
    """``number`` with the values of ``column`` that did not parse as they were stripped
    and cast again (null where still not a number)."""
    if column.dtype.is_numeric():
        return number
    missed = number.is_null() & column.is_not_null()
    if not missed.any():
        return number
    rows = missed.arg_true()
    again = column.gather(rows).cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
    return number.scatter(rows, again)


def _as_text(name: str) -> pl.Expr:
    text = pl.col(name).cast(pl.String).str.strip_chars()
    return pl.when(text == "").then(None).otherwise(text).alias(name)


def _as_float(name: str) -> pl.Expr:
    return pl.col(name).cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False).alias(name)


def parse_timestamps(column: pl.Series, name: str) -> tuple[pl.Series, pl.Series]:
    """Timestamps with an offset → UTC (``name``), and a flag of values that had none
    (``_naive``): the parser every feed shares (POS ``sold_at``, stock ``as_of`` …)."""
    aware, naive = _parse_time(column)
    return aware.alias(name), naive


def _parse_time(column: pl.Series) -> list[pl.Series]:
    """Parse ``sold_at`` to UTC; flag naive values (no offset) so they are rejected by name.

    The canonical ISO-8601 form is parsed for every line; the slower fallbacks only for the
    lines it did not fit.
    """
    utc = pl.Datetime("us", "UTC")
    dtype = column.dtype
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return [
                pl.Series("sold_at", [None] * len(column), dtype=utc),
                column.is_not_null().alias("_naive"),
            ]
        return [
            column.dt.convert_time_zone("UTC").cast(utc).alias("sold_at"),
            pl.Series("_naive", [False] * len(column), dtype=pl.Boolean),
        ]
    text = (
        column.cast(pl.String).str.strip_chars().str.replace(" ", "T").str.replace(r"Z$", "+00:00")
    )
    aware = text.str.strptime(utc, "%Y-%m-%dT%H:%M:%S%.f%:z", strict=False)
    naive = pl.Series("_naive", [False] * len(column), dtype=pl.Boolean)
    missed = aware.is_null() & text.is_not_null()
    if missed.any():
        rest = text.filter(missed)
        fallback = pl.select(
            pl.coalesce(
                rest.str.strptime(utc, "%Y-%m-%dT%H:%M:%S%.f%z", strict=False),
                rest.str.strptime(utc, "%Y-%m-%dT%H:%M%:z", strict=False),
            )
        ).to_series()
        no_zone = pl.select(
            pl.coalesce(
                rest.str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%S%.f", strict=False),
                rest.str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M", strict=False),
            ).is_not_null()
            & fallback.is_null()
        ).to_series()
        idx = missed.arg_true()
        aware = aware.scatter(idx, fallback)
        naive = naive.scatter(idx, no_zone)
    return [aware.alias("sold_at"), naive.alias("_naive")]


def _payloads(raw: pl.DataFrame, rows: pl.Series) -> pl.Series:
    """The original lines (JSON) at positions ``rows``; mapped inputs keep them as
    ``src.*``."""
    picked = raw[rows]  # ``_row`` is the row position: a gather, not a join
    if "_json" in raw.columns:  # the line exactly as received (HTTP)
        return picked["_json"]
    source = [c for c in raw.columns if c.startswith("src.")]
    if source:
        cols = [pl.col(c).alias(c[4:]) for c in source]
    else:
        cols = [pl.col(c) for c in raw.columns if c not in ("_line", "_row")]
    return picked.select(pl.struct(cols).struct.json_encode()).to_series()


def _raw_values(raw: pl.DataFrame, bad: pl.DataFrame) -> pl.Series:
    """The offending field's value as received (text), for the quarantine record."""
    fields = [c for c in EVENT_SCHEMA if c in raw.columns]
    received = raw[bad["_row"]].select(
        "_row", *[pl.col(c).cast(pl.String).alias(f"_v_{c}") for c in fields]
    )
    joined = bad.select("_row", "_field").join(
        received, on="_row", how="left", maintain_order="left"
    )
    value = pl.lit(None, dtype=pl.String)
    for name in fields:
        value = pl.when(pl.col("_field") == name).then(pl.col(f"_v_{name}")).otherwise(value)
    return joined.select(value).to_series()
