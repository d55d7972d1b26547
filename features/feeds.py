"""Contracts of the feeds besides POS: stock positions, item and store master data, goods
receipts and PO acknowledgements; each row checked like a POS line (rule ``<field>.<rule>``,
1-based line, the raw row kept for the quarantine)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import available_timezones

import polars as pl

from features.events import parse_timestamps
from kernel.inputs import check_names

__all__ = [
    "ACKS",
    "FEEDS",
    "ITEMS",
    "RECEIPTS",
    "REJECT_COLUMNS",
    "STOCK",
    "STORES",
    "Column",
    "FeedResult",
    "FeedSpec",
    "reject_rows",
    "validate_feed",
]

MAX_UNITS = 10_000_000.0
REJECT_COLUMNS = {
    "line": pl.Int64,
    "key": pl.String,
    "rule": pl.String,
    "field": pl.String,
    "value": pl.String,
    "message": pl.String,
    "payload": pl.String,
}


@dataclass(frozen=True)
class Column:
    """One column of a feed: ``kind`` is text, number, integer, timestamp (ISO-8601 with an
    offset) or date; ``required`` columns must be present and filled; ``default`` fills an
    absent or empty optional one."""

    name: str
    kind: str = "text"
    required: bool = True
    default: object = None
    max_length: int | None = None


@dataclass(frozen=True)
class FeedSpec:
    name: str  # stock, items, stores, receipts, acks
    what: str  # for messages: "stock position file"
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    nonnegative: tuple[str, ...] = ()
    positive: tuple[str, ...] = ()
    not_future: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


STOCK = FeedSpec(
    "stock",
    "stock position file",
    (
        Column("store_id"),
        Column("sku_id"),
        Column("as_of", "timestamp"),
        Column("on_hand", "number"),
        Column("on_order", "number", required=False, default=0.0),
        Column("in_transit", "number", required=False, default=0.0),
        Column("backorders", "number", required=False, default=0.0),
    ),
    key=("store_id", "sku_id", "as_of"),
    nonnegative=("on_hand", "on_order", "in_transit", "backorders"),
    not_future=("as_of",),
)
ITEMS = FeedSpec(
    "items",
    "item master file",
    (
        Column("sku_id"),
        Column("name", max_length=256),
        Column("description", required=False),
        Column("unit", required=False, default="unit", max_length=32),
        Column("department", required=False, max_length=128),
        Column("category", required=False, max_length=128),
    ),
    key=("sku_id",),
)
STORES = FeedSpec(
    "stores",
    "store master file",
    (
        Column("store_id"),
        Column("name", max_length=256),
        Column("region", required=False, max_length=128),
        Column("timezone", required=False, max_length=64),
    ),
    key=("store_id",),
)
RECEIPTS = FeedSpec(
    "receipts",
    "goods receipt file",
    (
        Column("receipt_id", max_length=64),
        Column("po_id", "integer", required=False),
        Column("erp_po_number", required=False, max_length=64),
        Column("store_id", required=False),
        Column("sku_id"),
        Column("quantity", "number"),
        Column("received_at", "timestamp"),
    ),
    key=("receipt_id", "po_id", "erp_po_number", "sku_id"),
    positive=("quantity",),
    not_future=("received_at",),
)
ACKS = FeedSpec(
    "acks",
    "acknowledgement file",
    (
        Column("po_id", "integer", required=False),
        Column("erp_po_number", required=False, max_length=64),
        Column("sku_id", required=False),
        Column("confirmed_quantity", "number", required=False),
        Column("confirmed_delivery", "date", required=False),
        Column("acknowledged_at", "timestamp", required=False),
    ),
    key=("po_id", "erp_po_number", "sku_id"),
    nonnegative=("confirmed_quantity",),
    not_future=("acknowledged_at",),
)
FEEDS = {f.name: f for f in (STOCK, ITEMS, STORES, RECEIPTS, ACKS)}
_PO_REF = {"receipts", "acks"}  # feeds that name a PO by po_id or erp_po_number


@dataclass(frozen=True)
class FeedResult:
    """Typed valid rows (with ``_line``) and rejected rows with the rule each broke;
    ``received = accepted rows + duplicates + rejected``."""

    accepted: pl.DataFrame
    rejected: pl.DataFrame
    duplicates: int = 0
    received: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)


def validate_feed(
    raw: pl.DataFrame,
    spec: FeedSpec,
    *,
    first_line: int = 1,
    source: str | None = None,
    now: datetime | None = None,
    max_future_skew: timedelta = timedelta(minutes=5),
) -> FeedResult:
    """Check every row of ``raw`` against ``spec``. Unknown or missing columns refuse the
    whole input (naming the closest known column); a bad row is rejected alone, by the
    first rule it breaks; a row repeated in the input counts once."""
    check_names(
        [c for c in raw.columns if not c.startswith("_")],
        [c.name for c in spec.columns],
        required=[c.name for c in spec.columns if c.required and c.default is None],
        source=source or spec.what,
        line=1 if source else None,
    )
    frame = raw if "_line" in raw.columns else raw.with_row_index("_line", offset=first_line)
    originals = [c for c in raw.columns if not c.startswith("_")]
    frame = frame.with_columns(
        pl.col("_line").cast(pl.Int64),
        # The row as received, for the quarantine (HTTP keeps the exact JSON line).
        pl.col("_json").alias("_payload")
        if "_json" in frame.columns
        else pl.struct([pl.col(c).cast(pl.String) for c in originals])
        .struct.json_encode()
        .alias("_payload"),
    )
    present = [c for c in spec.columns if c.name in frame.columns]
    parsed = frame.with_columns(
        *[pl.lit(None, dtype=pl.String).alias(c.name) for c in spec.columns if c not in present]
    )
    typed, checks = _typed(parsed, spec, now or datetime.now(UTC), max_future_skew)
    rule = pl.lit(None, dtype=pl.String)
    fld = pl.lit(None, dtype=pl.String)
    msg = pl.lit(None, dtype=pl.String)
    for name, check, failed, text in reversed(checks):
        cond = failed.fill_null(False)
        rule = pl.when(cond).then(pl.lit(f"{name}.{check}")).otherwise(rule)
        fld = pl.when(cond).then(pl.lit(name)).otherwise(fld)
        msg = pl.when(cond).then(pl.lit(text)).otherwise(msg)
    judged = typed.with_columns(rule.alias("_rule"), fld.alias("_field"), msg.alias("_msg"))
    good = judged.filter(pl.col("_rule").is_null()).select("_line", *spec.names, "_payload")
    bad = judged.filter(pl.col("_rule").is_not_null())
    good, repeats, conflicts = _split_repeats(good, spec)
    rejected = pl.concat(
        [_rejects(frame, bad, spec), _rejects(frame, conflicts, spec)],
        how="vertical_relaxed",
    ).sort("line")
    by_rule = (
        dict(rejected.group_by("rule").len().sort("rule").iter_rows()) if rejected.height else {}
    )
    return FeedResult(
        accepted=good,
        rejected=rejected,
        duplicates=repeats,
        received=frame.height,
        by_rule=by_rule,
    )


def _typed(
    frame: pl.DataFrame, spec: FeedSpec, now: datetime, skew: timedelta
) -> tuple[pl.DataFrame, list[tuple[str, str, pl.Expr, str]]]:
    """Parse each column by its kind and list the checks, in the order they apply."""
    checks: list[tuple[str, str, pl.Expr, str]] = []
    out = frame
    for col in spec.columns:
        name, raw_name = col.name, f"_raw_{col.name}"
        text = pl.col(name).cast(pl.String).str.strip_chars()
        out = out.with_columns(pl.when(text == "").then(None).otherwise(text).alias(raw_name))
        missing = pl.col(raw_name).is_null()
        if col.required and col.default is None and not _po_ref(spec, name):
            checks.append((name, "required", missing, f"{name} is required"))
        if col.kind == "text":
            value = pl.col(raw_name)
            if col.default is not None:
                value = value.fill_null(pl.lit(col.default))
            out = out.with_columns(value.alias(name))
            if col.max_length:
                checks.append(
                    (
                        name,
                        "length",
                        pl.col(name).str.len_chars() > col.max_length,
                        f"{name} must be at most {col.max_length} characters",
                    )
                )
        elif col.kind in ("number", "integer"):
            number = pl.col(raw_name).cast(pl.Float64, strict=False)
            out = out.with_columns(number.alias(name))
            checks.append(
                (name, "number", ~missing & pl.col(name).is_null(), f"{name} must be a number")
            )
            checks.append(
                (name, "finite", ~pl.col(name).is_finite(), f"{name} must be a finite number")
            )
            if col.kind == "integer":
                checks.append(
                    (
                        name,
                        "integer",
                        pl.col(name) != pl.col(name).round(0),
                        f"{name} must be a whole number",
                    )
                )
            if col.default is not None:
                out = out.with_columns(pl.col(name).fill_null(float(col.default)))  # type: ignore[arg-type]
        elif col.kind == "timestamp":
            typed = isinstance(frame.schema[name], pl.Datetime)  # Parquet keeps the zone
            aware, naive = parse_timestamps(out[name] if typed else out[raw_name], name)
            out = out.with_columns(aware, naive.alias(f"_naive_{name}"))
            checks.append(
                (
                    name,
                    "timestamp",
                    ~missing & pl.col(name).is_null() & ~pl.col(f"_naive_{name}"),
                    f"{name} must be an ISO-8601 timestamp with a UTC offset",
                )
            )
            checks.append(
                (
                    name,
                    "timezone",
                    pl.col(f"_naive_{name}"),
                    f"{name} has no time zone; send it with an offset (2024-05-01T22:00:00+02:00)",
                )
            )
        elif col.kind == "date":
            out = out.with_columns(
                pl.col(raw_name).str.to_date("%Y-%m-%d", strict=False).alias(name)
            )
            checks.append(
                (name, "date", ~missing & pl.col(name).is_null(), f"{name} must be YYYY-MM-DD")
            )
    if spec.name in _PO_REF:
        checks.insert(
            0,
            (
                "po_id",
                "required",
                pl.col("_raw_po_id").is_null() & pl.col("_raw_erp_po_number").is_null(),
                "give po_id (Replen's PO id, the ERP order's origin) or erp_po_number",
            ),
        )
    for name in spec.nonnegative:
        checks.append((name, "nonnegative", pl.col(name) < 0, f"{name} must be >= 0"))
    for name in spec.positive:
        checks.append((name, "positive", pl.col(name) <= 0, f"{name} must be > 0"))
    for name in (*spec.nonnegative, *spec.positive):
        checks.append(
            (name, "bound", pl.col(name).abs() > MAX_UNITS, f"{name} must be at most {MAX_UNITS:g}")
        )
    limit = pl.lit(now + skew).cast(pl.Datetime("us", "UTC"))
    for name in spec.not_future:
        checks.append(
            (name, "future", pl.col(name) > limit, f"{name} is later than now + {skew} (clock?)")
        )
    if spec.name == "stores":
        zones = sorted(available_timezones())
        checks.append(
            (
                "timezone",
                "iana",
                pl.col("timezone").is_not_null() & ~pl.col("timezone").is_in(zones),
                "timezone must be an IANA zone name such as Europe/Paris",
            )
        )
    return out, checks


def _po_ref(spec: FeedSpec, name: str) -> bool:
    return spec.name in _PO_REF and name in ("po_id", "erp_po_number")


def _split_repeats(good: pl.DataFrame, spec: FeedSpec) -> tuple[pl.DataFrame, int, pl.DataFrame]:
    """Keep the first row of each key; a later identical row is a duplicate, a later row
    with other values is rejected (``key.conflict``): the input contradicts itself."""
    key = list(spec.key)
    body = [c for c in spec.names if c not in key]
    first = good.filter(pl.struct(key).is_first_distinct())
    later = good.filter(~pl.struct(key).is_first_distinct())
    if later.is_empty():
        return first, 0, later.with_columns(*_no_rule())
    joined = later.join(first, on=key, suffix="_first", nulls_equal=True)
    same = pl.all_horizontal([pl.col(c).eq_missing(pl.col(f"{c}_first")) for c in body])
    duplicates = joined.filter(same).height
    conflicts = joined.filter(~same).select(
        "_line",
        *spec.names,
        "_payload",
        pl.lit("key.conflict").alias("_rule"),
        pl.lit(key[0]).alias("_field"),
        pl.format(
            "{} repeats line {} with other values", pl.lit(", ".join(key)), "_line_first"
        ).alias("_msg"),
    )
    return first, duplicates, conflicts


def _no_rule() -> list[pl.Expr]:
    return [
        pl.lit(None, dtype=pl.String).alias("_rule"),
        pl.lit(None, dtype=pl.String).alias("_field"),
        pl.lit(None, dtype=pl.String).alias("_msg"),
    ]


def _rejects(frame: pl.DataFrame, bad: pl.DataFrame, spec: FeedSpec) -> pl.DataFrame:
    if bad.is_empty():
        return pl.DataFrame(schema=REJECT_COLUMNS)
    originals = [c for c in frame.columns if not c.startswith("_")]
    source = frame.join(bad.select("_line"), on="_line", how="semi").select(
        "_line", *[pl.col(c).cast(pl.String) for c in originals]
    )
    by_line = {r["_line"]: r for r in source.to_dicts()}
    rows = []
    for r in bad.iter_rows(named=True):
        original = by_line.get(r["_line"], {})
        rows.append(
            {
                "line": r["_line"],
                "key": json.dumps([original.get(k) for k in spec.key if k in original]),
                "rule": r["_rule"],
                "field": r["_field"],
                "value": original.get(r["_field"]) if r["_field"] else None,
                "message": r["_msg"],
                "payload": r["_payload"],
            }
        )
    return pl.DataFrame(rows, schema=REJECT_COLUMNS)


def reject_rows(
    accepted: pl.DataFrame, rows: list[tuple[int, str, str, str]], spec: FeedSpec
) -> pl.DataFrame:
    """Reject rows of ``accepted`` found bad later (against stored state): ``(line, field,
    rule, message)`` each, in the quarantine's shape."""
    by_line = {r["_line"]: r for r in accepted.to_dicts()}
    out = []
    for line, fld, rule, message in rows:
        row = by_line[line]
        out.append(
            {
                "line": line,
                "key": json.dumps([_text(row.get(k)) for k in spec.key]),
                "rule": f"{fld}.{rule}",
                "field": fld,
                "value": _text(row.get(fld)),
                "message": message,
                "payload": row.get("_payload"),
            }
        )
    return pl.DataFrame(out, schema=REJECT_COLUMNS)


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
