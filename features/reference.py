"""Reference inputs beside POS lines: calendar, price list, promotions, item attributes.

Each kind has a file contract checked by a table of named rules (``<field>.<rule>``, as
POS lines are); a file with any broken rule is refused whole, its errors naming file, line
(1-based, the header is line 1), field, value and rule. Accepted rows are merged into the
kind's table under the data directory by key (a resent row replaces the old one), written
atomically: a bad file changes nothing, a good one lands entirely.

- calendar: ``date``; optional ``store_id`` (empty or ``*``: every store), ``event``,
  ``event_type``, ``payday`` (0/1: paydays, SNAP-like benefit days). Key: date, store.
- prices: ``sku_id, valid_from, price``; optional ``store_id`` (empty: every store). The
  shelf price from ``valid_from`` until the next row. Key: store, SKU, valid_from.
- promotions: ``promo_id, sku_id, start_date, end_date``; optional ``store_id``,
  ``discount`` (a fraction, 0.2 = 20% off). Key: promo, store, SKU.
- attributes: ``sku_id``; optional ``department``, ``category``. Key: SKU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl

from features.lake import write_parquet_atomically
from kernel.errors import InvalidInput
from kernel.inputs import check_names

__all__ = ["ALL_STORES", "KINDS", "ReferenceError", "ReferenceStore", "UpsertReport", "validate"]

ALL_STORES = "*"
_MAX_SHOWN = 20


@dataclass(frozen=True)
class _Kind:
    required: tuple[str, ...]
    optional: dict[str, pl.DataType]
    key: tuple[str, ...]


_TEXT = pl.String()
KINDS: dict[str, _Kind] = {
    "calendar": _Kind(
        ("date",),
        {"store_id": _TEXT, "event": _TEXT, "event_type": _TEXT, "payday": pl.Float64()},
        ("date", "store_id"),
    ),
    "prices": _Kind(
        ("sku_id", "valid_from", "price"), {"store_id": _TEXT}, ("store_id", "sku_id", "valid_from")
    ),
    "promotions": _Kind(
        ("promo_id", "sku_id", "start_date", "end_date"),
        {"store_id": _TEXT, "discount": pl.Float64()},
        ("promo_id", "store_id", "sku_id"),
    ),
    "attributes": _Kind(("sku_id",), {"department": _TEXT, "category": _TEXT}, ("sku_id",)),
}
_DATES = ("date", "valid_from", "start_date", "end_date")
_NUMBERS = ("price", "discount", "payday")


class ReferenceError(InvalidInput):
    """A reference file breaks its contract; the message lists each broken rule by line."""


@dataclass(frozen=True)
class UpsertReport:
    """``received = added + replaced + unchanged``."""

    kind: str
    received: int
    added: int
    replaced: int
    unchanged: int
    rows: int  # in the table afterwards

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def validate(kind: str, raw: pl.DataFrame, source: str = "input") -> pl.DataFrame:
    """Typed rows of a ``kind`` file read as text; raises :class:`ReferenceError` naming
    every broken rule (up to 20) with its 1-based file line."""
    if kind not in KINDS:
        raise InvalidInput(
            f"unknown reference kind {kind!r}",
            field="kind",
            value=kind,
            rule="kind.known",
            hint=f"choose from {', '.join(KINDS)}",
        )
    spec = KINDS[kind]
    # Unknown columns are refused naming the closest known one (``evnt`` → ``event``).
    check_names(
        raw.columns, [*spec.required, *spec.optional], required=spec.required, source=source
    )
    text = raw.with_row_index("_line", offset=2).with_columns(
        [_text(c) for c in (*spec.required, *spec.optional) if c in raw.columns]
    )
    text = text.with_columns(
        [pl.lit(None, dtype=pl.String).alias(c) for c in spec.optional if c not in raw.columns]
    )
    typed = text.with_columns(
        *[
            pl.col(c).str.to_date("%Y-%m-%d", strict=False).alias(f"_{c}")
            for c in _DATES
            if c in text.columns
        ],
        *[_number(c).alias(f"_{c}") for c in _NUMBERS if c in text.columns],
    )
    failures = _failures(kind, typed)
    if failures.height:
        _raise(failures, source)
    out = typed.select(
        *[
            pl.col(f"_{c}").alias(c) if f"_{c}" in typed.columns else pl.col(c)
            for c in (*spec.required, *spec.optional)
        ]
    )
    if "store_id" in out.columns:
        out = out.with_columns(pl.col("store_id").fill_null(ALL_STORES))
    if kind == "calendar":
        out = out.with_columns(pl.col("payday").fill_null(0.0))
    dup = out.with_row_index("_i").filter(~pl.struct(list(spec.key)).is_first_distinct())
    if dup.height:
        row = dup.row(0, named=True)
        shown = ", ".join(f"{k}={row[k]}" for k in spec.key)
        line = int(typed["_line"][row["_i"]])
        raise ReferenceError(
            f"{shown} appears more than once; one row per {', '.join(spec.key)}",
            field=spec.key[0],
            value=row[spec.key[0]],
            rule=f"{spec.key[0]}.unique",
            source=source,
            line=line,
        )
    return out


def _text(name: str) -> pl.Expr:
    value = pl.col(name).cast(pl.String).str.strip_chars()
    return pl.when(value == "").then(None).otherwise(value).alias(name)


def _number(name: str) -> pl.Expr:
    value = pl.col(name).str.to_lowercase()
    boolean = (
        pl.when(value.is_in(["true", "yes"]))
        .then(pl.lit("1"))
        .when(value.is_in(["false", "no"]))
        .then(pl.lit("0"))
        .otherwise(value)
    )
    return (boolean if name == "payday" else pl.col(name)).cast(pl.Float64, strict=False)


def _failures(kind: str, t: pl.DataFrame) -> pl.DataFrame:
    """One row per broken rule: ``_line, field, rule, value, message``."""

    def bad_date(c: str) -> tuple[str, str, pl.Expr, str]:
        return (
            c,
            "date",
            pl.col(c).is_not_null() & pl.col(f"_{c}").is_null(),
            "must be a date YYYY-MM-DD",
        )

    def required(c: str) -> tuple[str, str, pl.Expr, str]:
        return (c, "required", pl.col(c).is_null(), "is required")

    checks: list[tuple[str, str, pl.Expr, str]] = [required(c) for c in KINDS[kind].required]
    checks += [bad_date(c) for c in _DATES if f"_{c}" in t.columns]
    number = pl.col  # alias for readability below
    if kind == "calendar":
        checks.append(
            (
                "payday",
                "flag",
                number("payday").is_not_null()
                & ~number("_payday").is_in([0.0, 1.0]).fill_null(False),
                "must be 0 or 1 (or true/false)",
            )
        )
    if kind == "prices":
        checks += [
            (
                "price",
                "number",
                pl.col("price").is_not_null() & pl.col("_price").is_null(),
                "must be a number",
            ),
            ("price", "nonnegative", pl.col("_price") < 0, "must be >= 0"),
        ]
    if kind == "promotions":
        checks += [
            (
                "end_date",
                "order",
                pl.col("_end_date") < pl.col("_start_date"),
                "must not be before start_date",
            ),
            (
                "discount",
                "number",
                pl.col("discount").is_not_null() & pl.col("_discount").is_null(),
                "must be a number",
            ),
            (
                "discount",
                "fraction",
                (pl.col("_discount") < 0) | (pl.col("_discount") >= 1),
                "must be a fraction in [0, 1)",
            ),
        ]
    found = [
        t.filter(failed.fill_null(False)).select(
            "_line",
            pl.lit(field).alias("field"),
            pl.lit(f"{field}.{rule}").alias("rule"),
            pl.col(field).cast(pl.String).alias("value"),
            pl.lit(message).alias("message"),
        )
        for field, rule, failed, message in checks
    ]
    return pl.concat(found).sort("_line") if found else pl.DataFrame()


def _raise(failures: pl.DataFrame, source: str) -> None:
    lines = [
        f"{source}:{r['_line']}: {r['field']}={r['value']!r} {r['message']} ({r['rule']})"
        for r in failures.head(_MAX_SHOWN).iter_rows(named=True)
    ]
    more = f"\n… and {failures.height - _MAX_SHOWN} more" if failures.height > _MAX_SHOWN else ""
    first = failures.row(0, named=True)
    raise ReferenceError(
        f"{failures.height} broken rule(s), nothing loaded:\n" + "\n".join(lines) + more,
        field=first["field"],
        value=first["value"],
        rule=first["rule"],
        source=source,
        line=int(first["_line"]),
        hint="fix the lines above and load the file again",
    )


class ReferenceStore:
    """The reference tables of one installation: one Parquet file per kind under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, kind: str) -> Path:
        return self.root / f"{kind}.parquet"

    def load(self, kind: str) -> pl.DataFrame | None:
        """The kind's table, or None when no file of that kind was loaded yet."""
        path = self.path(kind)
        return pl.read_parquet(path) if path.exists() else None

    def upsert(self, kind: str, rows: pl.DataFrame) -> UpsertReport:
        """Merge validated ``rows`` by the kind's key: new keys are added, known ones
        replaced; the table is rewritten atomically."""
        key = list(KINDS[kind].key)
        before = self.load(kind)
        if before is None or before.is_empty():
            merged, added, replaced, unchanged = rows, rows.height, 0, 0
        else:
            rows = rows.select(before.columns)
            old = before.join(rows.select(key), on=key, how="semi")
            same = rows.join(old, on=rows.columns, how="semi", nulls_equal=True).height
            added = rows.height - old.height
            replaced, unchanged = old.height - same, same
            merged = pl.concat([before.join(rows.select(key), on=key, how="anti"), rows])
        merged = merged.sort(key)
        write_parquet_atomically(merged, self.path(kind))
        return UpsertReport(kind, rows.height, added, replaced, unchanged, merged.height)
