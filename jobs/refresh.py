"""Feature refresh: POS batches into the lake, daily sales and velocity into Feast."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import polars as pl

from features.events import REJECT_SCHEMA, ValidationResult, validate_events
from features.lake import BatchReport
from features.sales import last_date, velocity_history
from jobs.runtime import NoSales, Runtime
from jobs.velocity import PUSH_LOCK
from kernel.rejects import REJECT_ID

__all__ = [
    "FeatureRefresh",
    "IngestSummary",
    "ingest_inventory",
    "ingest_pos",
    "push_velocity",
    "read_pos",
    "rebuild_features",
    "refresh_features",
]


@dataclass
class IngestSummary:
    """Totals over the batches of one ingest; ``received = accepted + duplicates + rejected``.

    ``already_quarantined`` of the rejected lines were in the quarantine before (delivered
    earlier) and were not recorded twice. ``rejected_lines`` (kept only when asked: the HTTP
    reply lists them) are this ingest's rejected lines, each with its ``reject_id``."""

    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    batches: int = 0
    rejected_by_rule: dict[str, int] = field(default_factory=dict)
    unknown_stores: list[str] = field(default_factory=list)
    unknown_skus: list[str] = field(default_factory=list)
    pushed: int = 0
    batch_ids: list[str] = field(default_factory=list)
    already_quarantined: int = 0
    rejected_lines: list[pl.DataFrame] = field(default_factory=list, repr=False)

    def add(self, report: BatchReport, *, keep_rejected: bool = False) -> None:
        self.received += report.received
        self.accepted += report.accepted
        self.duplicates += report.duplicates
        self.rejected += report.rejected
        self.already_quarantined += report.already_quarantined
        if keep_rejected and report.rejected_lines is not None and report.rejected_lines.height:
            self.rejected_lines.append(report.rejected_lines)
        self.batches += 1
        self.batch_ids.append(report.batch_id)
        for rule, n in report.rejected_by_rule.items():
            self.rejected_by_rule[rule] = self.rejected_by_rule.get(rule, 0) + n
        self.unknown_stores = sorted({*self.unknown_stores, *report.unknown_stores})
        self.unknown_skus = sorted({*self.unknown_skus, *report.unknown_skus})

    def merge(self, other: IngestSummary) -> None:
        """Add another ingest's totals (batch ids are not kept)."""
        for name in (
            "received",
            "accepted",
            "duplicates",
            "rejected",
            "batches",
            "pushed",
            "already_quarantined",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for rule, n in other.rejected_by_rule.items():
            self.rejected_by_rule[rule] = self.rejected_by_rule.get(rule, 0) + n
        self.unknown_stores = sorted({*self.unknown_stores, *other.unknown_stores})
        self.unknown_skus = sorted({*self.unknown_skus, *other.unknown_skus})

    def rejected_frame(self) -> pl.DataFrame:
        """The kept rejected lines in one frame (``keep_rejected``)."""
        if not self.rejected_lines:
            return pl.DataFrame(schema={**REJECT_SCHEMA, REJECT_ID: pl.String})
        return pl.concat(self.rejected_lines, how="diagonal_relaxed")

    def to_dict(self) -> dict[str, object]:
        data = {
            f.name: copy.deepcopy(getattr(self, f.name))
            for f in fields(self)
            if f.name != "rejected_lines"
        }
        data["unknown_skus"] = self.unknown_skus[:50]
        data["unknown_sku_count"] = len(self.unknown_skus)
        return data


def ingest_pos(
    rt: Runtime,
    raw: pl.DataFrame,
    *,
    push: bool = True,
    chunk_rows: int = 250_000,
    on_progress: Callable[[int], None] | None = None,
    live: bool = False,
    allowed_stores: set[str] | None = None,
    unparsed: pl.DataFrame | None = None,
    actor: str | None = None,
    keep_rejected: bool = False,
) -> IngestSummary:
    """Validate and commit POS lines (contract-named columns) in batches of ``chunk_rows``.

    Each batch is committed atomically and acknowledged only once durable; the touched
    store×SKUs' velocity is then pushed online (``push``) once, after the last batch.
    ``live`` lines (HTTP) may be at most ``pos_max_age_days`` old, backfills (files)
    ``backfill_max_age_days``; ``allowed_stores`` limits the stores the sender may write;
    ``unparsed`` lines (the quarantine's schema: lines that were not even JSON) are
    quarantined with the first batch; ``actor`` (the sender) is recorded in each batch's
    manifest. A rejected line already in the quarantine (the same line delivered before) is
    counted as rejected but not recorded twice (``already_quarantined``); identical
    rejected lines are numbered across the batches of this ingest, so a resend of the same
    input is recognised line for line. ``keep_rejected`` keeps the rejected lines in the
    summary (``rejected_frame``). Lines are numbered from 0 across the whole input, unless
    it has ``_line`` (the sender's own numbering).
    """
    s = rt.settings
    known_stores, known_skus = _known_keys(rt)
    summary = IngestSummary()
    now = datetime.now(UTC)
    max_age = s.pos_max_age_days if live else s.backfill_max_age_days
    seen_rejects: dict[str, int] = {}  # identical rejected lines so far, across batches
    for start in range(0, max(raw.height, 1), chunk_rows):
        chunk = raw.slice(start, chunk_rows)
        if "_line" not in chunk.columns:  # the line's place in the whole input
            chunk = chunk.with_row_index("_line", offset=start)
        validated = validate_events(
            chunk,
            now=now,
            max_future_skew=timedelta(seconds=s.max_future_skew_seconds),
            max_abs_quantity=s.max_abs_quantity,
            max_age=timedelta(days=max_age),
            max_unit_price=s.max_unit_price,
            allowed_stores=allowed_stores,
        )
        if start == 0 and unparsed is not None and unparsed.height:
            validated = ValidationResult(
                accepted=validated.accepted,
                rejected=pl.concat([unparsed, validated.rejected], how="vertical_relaxed"),
            )
        report = rt.lake.append_events(
            validated, known_stores, known_skus, actor=actor, seen_rejects=seen_rejects
        )
        summary.add(report, keep_rejected=keep_rejected)
        if on_progress is not None:
            on_progress(chunk.height)
    if push and summary.accepted:
        summary.pushed += push_velocity(rt)
    return summary


def read_pos(
    path: Path, mapping: str = "replen", pairs: list[str] | None = None, timezone: str | None = None
) -> pl.DataFrame:
    """A POS file (CSV, Parquet, NDJSON) as contract-named text columns, through a built-in
    column mapping refined by ``target=source`` pairs; values are judged later, per line."""
    from features.mapping import apply_mapping, parse_mapping
    from kernel.inputs import read_table

    spec = parse_mapping(mapping, pairs or [], timezone)
    return apply_mapping(read_table(path, strings=True), spec)


def ingest_inventory(rt: Runtime, snapshots: pl.DataFrame) -> int:
    return rt.lake.append_inventory(snapshots)


def lake_as_of(rt: Runtime) -> date | None:
    """The newest sales day in the lake: the day velocity is measured as of."""
    newest = rt.lake.newest_sold_at()
    return newest.date() if newest is not None else None


def push_velocity(rt: Runtime) -> int:
    """Fold the lake batches committed since this data directory's last velocity
    checkpoint and push the touched store×SKUs' velocity online (every store×SKU when the
    as-of day moved); returns the rows pushed. Cost: the new batches, not the lake."""
    from jobs.velocity import VelocitySync

    sync = VelocitySync(rt)
    pushed = sync.sync().pushed
    sync.save()
    return pushed


@dataclass(frozen=True)
class FeatureRefresh:
    series: int
    days: int
    velocity_rows: int
    as_of: str
    input_rows: int = 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def refresh_features(rt: Runtime, history: pl.DataFrame | None = None) -> FeatureRefresh:
    """Rewrite the offline velocity table and the models' inputs (sales, price, promotions,
    calendar, item attributes) from the lake and the reference files, and materialize the
    newest day online."""
    daily = history if history is not None else rt.history()
    if daily.is_empty():
        raise NoSales("the POS lake is empty: nothing to refresh")
    hist = velocity_history(daily)
    last = last_date(daily)
    with PUSH_LOCK:
        rt.features.apply_once()
        rt.features.write_offline(hist)
        start = datetime.combine(last, time.min, tzinfo=UTC)
        rt.features.materialize(start, start + timedelta(days=1))
        from jobs.model_inputs import refresh_inputs

        inputs = refresh_inputs(rt, daily)  # the online store takes one writer at a time
    return FeatureRefresh(
        series=daily.select("store_id", "sku_id").n_unique(),
        days=daily["date"].n_unique(),
        velocity_rows=hist.height,
        as_of=str(last),
        input_rows=sum(inputs.rows.values()),
    )


def rebuild_features(rt: Runtime) -> FeatureRefresh:
    """Recreate the Feast store from the lake alone (registry, offline table, online rows)."""
    daily = rt.history()
    if daily.is_empty():
        raise NoSales("the POS lake is empty: nothing to rebuild from")
    with PUSH_LOCK:
        rt.features.rebuild(velocity_history(daily).filter(pl.col("as_of") == last_date(daily)))
    return refresh_features(rt, daily)


def _known_keys(rt: Runtime) -> tuple[set[str] | None, set[str] | None]:
    """Stores and SKUs named in the master data (or stock positions), to flag POS lines of
    unknown ones; None where nothing is loaded yet (a database not created yet holds
    none: it is not created, nor migrated, just to look)."""
    from replen.db import exists

    if not exists(rt.settings.db_url):
        return None, None
    stores = rt.positions.master("stores")["store_id"].to_list()
    skus = rt.positions.master("items")["sku_id"].to_list()
    if not stores:
        stores = rt.positions.latest()["store_id"].unique().to_list()
    return (set(stores) or None), (set(skus) or None)
