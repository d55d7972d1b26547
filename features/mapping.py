"""Column mappings from foreign POS exports to the Replen POS contract.

A mapping renames columns, can derive ``event_id`` from key columns when an export has none,
localises naive timestamps in a stated time zone, and sets constants (e.g. the currency).
The original columns are kept as ``src.<name>`` so that quarantine shows what was received.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from features.events import EVENT_SCHEMA
from features.lake_index import repeated
from kernel.errors import InvalidInput

__all__ = ["BUILTIN", "ColumnMapping", "apply_mapping", "parse_mapping"]


@dataclass(frozen=True)
class ColumnMapping:
    """``columns`` maps contract name → source column."""

    columns: dict[str, str] = field(default_factory=dict)
    event_id_from: tuple[str, ...] = ()  # derive event_id: these columns + occurrence number
    timezone: str | None = None  # zone of naive sold_at values
    timestamp_format: str | None = None  # strptime format of naive sold_at values
    constants: dict[str, str] = field(default_factory=dict)


BUILTIN: dict[str, ColumnMapping] = {
    "replen": ColumnMapping(),
    # UCI Online Retail: one invoice line per row; cancellations ("C…") carry negative
    # quantities (returns); the country is the selling channel, i.e. our store.
    "uci-online-retail": ColumnMapping(
        columns={
            "sku_id": "StockCode",
            "store_id": "Country",
            "sold_at": "InvoiceDate",
            "quantity": "Quantity",
            "unit_price": "UnitPrice",
        },
        event_id_from=("InvoiceNo", "StockCode"),
        timezone="Europe/London",
        timestamp_format="%Y-%m-%d %H:%M:%S",
        constants={"currency": "GBP"},
    ),
}


def parse_mapping(name: str, pairs: list[str], timezone: str | None) -> ColumnMapping:
    """A built-in mapping by ``name`` refined by ``target=source`` pairs and a time zone."""
    if name not in BUILTIN:
        raise InvalidInput(
            f"unknown mapping {name!r}",
            field="mapping",
            value=name,
            rule="mapping.known",
            hint=f"built-in mappings: {', '.join(sorted(BUILTIN))}",
        )
    base = BUILTIN[name]
    columns = dict(base.columns)
    for pair in pairs:
        target, sep, source = pair.partition("=")
        if not sep or not target or not source:
            raise InvalidInput(
                f"--map {pair!r} must look like target=source, e.g. sku_id=StockCode",
                field="map",
                value=pair,
                rule="map.syntax",
            )
        columns[target.strip()] = source.strip()
    return ColumnMapping(
        columns=columns,
        event_id_from=base.event_id_from,
        timezone=timezone or base.timezone,
        timestamp_format=base.timestamp_format,
        constants=dict(base.constants),
    )


def apply_mapping(raw: pl.DataFrame, mapping: ColumnMapping) -> pl.DataFrame:
    """Return contract-named columns plus the original ones as ``src.<name>``."""
    missing = [
        s for s in {*mapping.columns.values(), *mapping.event_id_from} if s not in raw.columns
    ]
    if missing:
        raise InvalidInput(
            f"the file lacks column(s) {sorted(missing)} that the mapping reads; "
            f"found {raw.columns}",
            field=sorted(missing)[0],
            rule="column.required",
            hint="choose another --mapping or rename with --map target=source",
        )
    renames = {source: target for target, source in mapping.columns.items()}
    keep = [pl.col(source).alias(target) for source, target in renames.items()]
    if not renames and not mapping.event_id_from:
        exprs: list[pl.Expr | pl.Series] = [pl.all()]  # already in contract names
    else:
        # Contract-named columns the mapping does not target pass through (e.g. promo_id).
        same = [
            pl.col(c)
            for c in raw.columns
            if c in EVENT_SCHEMA and c not in mapping.columns and c not in renames
        ]
        originals = [pl.col(c).alias(f"src.{c}") for c in raw.columns]
        exprs = [*keep, *same, *originals]
    if mapping.event_id_from:
        exprs.append(_derived_ids(raw, mapping.event_id_from))
    frame = raw.select(exprs)
    extra: list[pl.Expr | pl.Series] = [
        pl.lit(v).alias(k) for k, v in mapping.constants.items() if k not in frame.columns
    ]
    if mapping.timezone and "sold_at" in frame.columns:
        extra.append(_localise(frame, mapping.timezone, mapping.timestamp_format))
    # Lazily: an eager step would first copy every column (the file's own ones included)
    # into chunks aligned with the new ones'.
    return frame.lazy().with_columns(extra).collect() if extra else frame


def _derived_ids(raw: pl.DataFrame, columns: tuple[str, ...]) -> pl.Series:
    """``key:n``: the key columns joined, and the line's occurrence of that key in the file.

    Deterministic for the same file, so a resend yields the same ids. Occurrences are
    counted only among repeated keys (a window over every line would cost a second), found
    by their 64-bit hashes first (a hash collision only adds a line to the exact count).
    """
    key = raw.select(
        pl.concat_str([pl.col(c).cast(pl.String).fill_null("") for c in columns], separator=":")
    ).to_series()
    maybe = repeated(key.hash(seed=0).to_numpy())
    if maybe is None:
        return (key + ":0").alias("event_id")
    rep = (
        pl.DataFrame({"key": key, "i": pl.int_range(raw.height, eager=True)})
        .filter(pl.Series(maybe))
        .with_columns(pl.int_range(pl.len()).over("key").cast(pl.Int64).alias("n"))
    )
    occurrence = pl.zeros(raw.height, dtype=pl.Int64, eager=True).scatter(rep["i"], rep["n"])
    # One concatenation (``key + ":" + n`` would copy every id twice).
    return pl.select(
        pl.concat_str([pl.lit(key), pl.lit(occurrence)], separator=":").alias("event_id")
    ).to_series()


def _localise(frame: pl.DataFrame, zone: str, fmt: str | None) -> pl.Series:
    """Naive text timestamps read in ``zone`` → UTC datetimes.

    If any value does not parse, the column stays text (with parsed values rewritten in
    ISO-8601 with offset) so that validation rejects exactly the bad lines by rule.
    """
    text = frame["sold_at"].cast(pl.String).str.strip_chars()
    naive = text.str.strptime(pl.Datetime("us"), fmt, strict=False)
    # The zone rules are looked up once per run of equal times (lines of one receipt
    # share its time), not once per line, when the runs are long enough to pay.
    run = naive.rle_id()
    by_run = len(run) > 0 and 2 * (int(run[-1]) + 1) <= len(run)  # ids count up from 0
    if by_run:
        naive = naive.filter(run.diff().fill_null(1) != 0)  # each run's first time
    local = naive.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
    if by_run:
        local = local.gather(run)
    utc = local.dt.convert_time_zone("UTC").alias("sold_at")
    if utc.null_count() == text.null_count():
        return utc
    iso = utc.dt.strftime("%Y-%m-%dT%H:%M:%S%.f+00:00")
    return pl.select(pl.coalesce(iso, text)).to_series().alias("sold_at")
