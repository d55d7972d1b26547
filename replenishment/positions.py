"""Stock positions and item/store master data in the database: idempotent loads, the latest
position as of a date, and the rejected feed rows (the feeds' quarantine)."""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta

import polars as pl
from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.engine import Engine

from kernel.rejects import REJECT_ID, reject_ids
from kernel.sql import engine_for, now_utc, read_session, utc, write_session
from replenishment.models import FeedReject, ItemMaster, StockPosition, StoreMaster

__all__ = ["LoadReport", "PositionStore", "new_batch_id"]

POSITION_COLUMNS = ("on_hand", "on_order", "in_transit", "backorders")
_MASTER = {
    "items": (ItemMaster, "sku_id", ("name", "description", "unit", "department", "category")),
    "stores": (StoreMaster, "store_id", ("name", "region", "timezone")),
}


@dataclass
class LoadReport:
    """One feed batch; ``received = accepted + updated + duplicates + rejected``.

    ``already_quarantined`` of the rejected rows were kept from an earlier delivery of the
    same row (:mod:`kernel.rejects`) and were not stored twice; ``rejected_lines`` are
    the batch's rejected rows in memory (for a reply to the sender), not in
    :meth:`to_dict`."""

    feed: str
    batch_id: str
    received: int = 0
    accepted: int = 0  # new rows
    updated: int = 0  # a key already known, with other values (a correction)
    duplicates: int = 0  # identical to what is stored or repeated in the input
    rejected: int = 0
    rejected_by_rule: dict[str, int] = field(default_factory=dict)
    older_than_current: int = 0  # stock: kept as history; the plan uses newer positions
    notes: list[str] = field(default_factory=list)
    already_quarantined: int = 0
    rejected_lines: pl.DataFrame | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, object]:
        return {
            f.name: copy.deepcopy(getattr(self, f.name))
            for f in fields(self)
            if f.name != "rejected_lines"
        }

    def check(self) -> None:
        total = self.accepted + self.updated + self.duplicates + self.rejected
        assert self.received == total, f"{self.received} received but {total} accounted for"


def new_batch_id() -> str:
    return f"{now_utc():%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"


class PositionStore:
    """Stock positions (every as_of kept), item and store names, rejected feed rows."""

    def __init__(self, engine: Engine | str) -> None:
        self.engine = engine_for(engine)

    # Writing -------------------------------------------------------------------------------
    def save_positions(
        self, positions: pl.DataFrame, rejected: pl.DataFrame, report: LoadReport, source: str
    ) -> LoadReport:
        """Store valid positions and the rejected rows in one transaction.

        A position already stored with the same values is a duplicate; with other values it
        is a correction (``updated``). Every as_of is kept; the plan reads the latest."""
        rows = positions.select("store_id", "sku_id", "as_of", *POSITION_COLUMNS)
        stamp = now_utc()
        with write_session(self.engine) as session:
            existing = self._existing_positions(session, rows)
            joined = rows.join(
                existing, on=["store_id", "sku_id", "as_of"], how="left", suffix="_old"
            )
            new = joined.filter(pl.col("on_hand_old").is_null())
            same = pl.all_horizontal([pl.col(c) == pl.col(f"{c}_old") for c in POSITION_COLUMNS])
            old = joined.filter(pl.col("on_hand_old").is_not_null())
            changed = old.filter(~same)
            if new.height:
                session.execute(
                    insert(StockPosition),
                    [
                        {**r, "ingested_at": stamp}
                        for r in new.select(rows.columns).iter_rows(named=True)
                    ],
                )
            for r in changed.select(rows.columns).iter_rows(named=True):
                session.execute(
                    update(StockPosition)
                    .where(
                        StockPosition.store_id == r["store_id"],
                        StockPosition.sku_id == r["sku_id"],
                        StockPosition.as_of == r["as_of"],
                    )
                    .values(**{c: r[c] for c in POSITION_COLUMNS}, ingested_at=stamp)
                )
            report.accepted += new.height
            report.updated += changed.height
            report.duplicates += old.height - changed.height
            report.older_than_current += self._older(session, rows)
            report.already_quarantined += self._save_rejects(
                session, "stock", report.batch_id, source, rejected
            )
        report.check()
        return report

    def save_master(
        self,
        kind: str,
        frame: pl.DataFrame,
        rejected: pl.DataFrame,
        report: LoadReport,
        source: str,
    ) -> LoadReport:
        """Upsert item or store master rows (the newest load wins per id)."""
        model, key, cols = _MASTER[kind]
        rows = frame.select(key, *cols)
        stamp = now_utc()
        with write_session(self.engine) as session:
            ids = rows[key].to_list()
            stored: dict[str, tuple] = {}
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                for obj in session.scalars(select(model).where(getattr(model, key).in_(chunk))):
                    stored[getattr(obj, key)] = tuple(getattr(obj, c) for c in cols)
            fresh, changed = [], []
            for r in rows.iter_rows(named=True):
                values = tuple(r[c] for c in cols)
                if r[key] not in stored:
                    fresh.append({**r, "updated_at": stamp})
                elif stored[r[key]] != values:
                    changed.append(r)
            if fresh:
                session.execute(insert(model), fresh)
            for r in changed:
                session.execute(
                    update(model)
                    .where(getattr(model, key) == r[key])
                    .values(**{c: r[c] for c in cols}, updated_at=stamp)
                )
            report.accepted += len(fresh)
            report.updated += len(changed)
            report.duplicates += rows.height - len(fresh) - len(changed)
            report.already_quarantined += self._save_rejects(
                session, kind, report.batch_id, source, rejected
            )
        report.check()
        return report

    def save_rejects(self, feed: str, batch_id: str, source: str, rejected: pl.DataFrame) -> int:
        """Keep a batch's rejected rows; returns how many were kept already (not again)."""
        with write_session(self.engine) as session:
            return self._save_rejects(session, feed, batch_id, source, rejected)

    @staticmethod
    def _save_rejects(
        session, feed: str, batch_id: str, source: str, rejected: pl.DataFrame
    ) -> int:  # type: ignore[no-untyped-def]
        """Insert the rejected rows not already kept for ``feed`` (by ``reject_id``, computed
        here if absent: one call is one delivery); returns how many were kept already. The
        unique index on (feed, reject_id) stops a concurrent delivery of the same rows: its
        transaction fails and a retry finds them kept."""
        if rejected.is_empty():
            return 0
        if REJECT_ID not in rejected.columns:
            rejected = rejected.with_columns(reject_ids(rejected, "key"))
        ids = rejected[REJECT_ID].to_list()
        known: set[str] = set()
        for start in range(0, len(ids), 500):
            known.update(
                session.scalars(
                    select(FeedReject.reject_id).where(
                        FeedReject.feed == feed, FeedReject.reject_id.in_(ids[start : start + 500])
                    )
                )
            )
        fresh = [r for r in rejected.iter_rows(named=True) if r[REJECT_ID] not in known]
        stamp = now_utc()
        if fresh:
            session.execute(
                insert(FeedReject),
                [
                    {**r, "feed": feed, "batch_id": batch_id, "source": source, "at": stamp}
                    for r in fresh
                ],
            )
        return rejected.height - len(fresh)

    @staticmethod
    def _existing_positions(session, rows: pl.DataFrame) -> pl.DataFrame:  # type: ignore[no-untyped-def]
        """Stored positions with the batch's as_of values (a feed has one or a few)."""
        stamps = rows["as_of"].unique().to_list()
        found: list[tuple] = []
        for start in range(0, len(stamps), 200):
            chunk = stamps[start : start + 200]
            found += session.execute(
                select(
                    StockPosition.store_id,
                    StockPosition.sku_id,
                    StockPosition.as_of,
                    *[getattr(StockPosition, c) for c in POSITION_COLUMNS],
                ).where(StockPosition.as_of.in_(chunk))
            ).all()
        frame = pl.DataFrame(
            [(s, k, utc(a), *v) for s, k, a, *v in found],
            schema={
                "store_id": pl.String,
                "sku_id": pl.String,
                "as_of": pl.Datetime("us", "UTC"),
                **{c: pl.Float64 for c in POSITION_COLUMNS},
            },
            orient="row",
        )
        return frame

    @staticmethod
    def _older(session, rows: pl.DataFrame) -> int:  # type: ignore[no-untyped-def]
        """Rows of the batch older than a position already stored for their store×SKU."""
        stores = rows["store_id"].unique().to_list()
        newest: list[tuple] = []
        for start in range(0, len(stores), 500):
            newest += session.execute(
                select(StockPosition.store_id, StockPosition.sku_id, func.max(StockPosition.as_of))
                .where(StockPosition.store_id.in_(stores[start : start + 500]))
                .group_by(StockPosition.store_id, StockPosition.sku_id)
            ).all()
        if not newest:
            return 0
        latest = pl.DataFrame(
            [(s, k, utc(a)) for s, k, a in newest],
            schema={
                "store_id": pl.String,
                "sku_id": pl.String,
                "_newest": pl.Datetime("us", "UTC"),
            },
            orient="row",
        )
        return (
            rows.join(latest, on=["store_id", "sku_id"])
            .filter(pl.col("as_of") < pl.col("_newest"))
            .height
        )

    # Reading -------------------------------------------------------------------------------
    def latest(self, plan_date: date | None = None) -> pl.DataFrame:
        """Per store×SKU, the newest position taken before the end of ``plan_date`` (all
        dates if None): ``store_id, sku_id, as_of, on_hand, on_order, in_transit,
        backorders``."""
        newest = select(
            StockPosition.store_id, StockPosition.sku_id, func.max(StockPosition.as_of).label("m")
        )
        if plan_date is not None:
            cut = datetime.combine(plan_date + timedelta(days=1), time.min, tzinfo=UTC)
            newest = newest.where(StockPosition.as_of < cut)
        sub = newest.group_by(StockPosition.store_id, StockPosition.sku_id).subquery()
        stmt = select(StockPosition).join(
            sub,
            and_(
                StockPosition.store_id == sub.c.store_id,
                StockPosition.sku_id == sub.c.sku_id,
                StockPosition.as_of == sub.c.m,
            ),
        )
        with read_session(self.engine) as session:
            rows = [
                (
                    p.store_id,
                    p.sku_id,
                    utc(p.as_of),
                    p.on_hand,
                    p.on_order,
                    p.in_transit,
                    p.backorders,
                )
                for p in session.scalars(stmt)
            ]
        return pl.DataFrame(
            rows,
            schema={
                "store_id": pl.String,
                "sku_id": pl.String,
                "as_of": pl.Datetime("us", "UTC"),
                **{c: pl.Float64 for c in POSITION_COLUMNS},
            },
            orient="row",
        )

    def version(self) -> tuple[int, int, int]:
        """Row counts of positions, items and stores: changes when a feed adds any (cheap
        cache key for readers that summarise them)."""
        with read_session(self.engine) as session:
            return (
                int(session.scalar(select(func.count()).select_from(StockPosition)) or 0),
                int(session.scalar(select(func.count()).select_from(ItemMaster)) or 0),
                int(session.scalar(select(func.count()).select_from(StoreMaster)) or 0),
            )

    def master(self, kind: str) -> pl.DataFrame:
        """Item or store master data (``items``: sku_id, name, …; ``stores``: store_id, …)."""
        model, key, cols = _MASTER[kind]
        with read_session(self.engine) as session:
            rows = [
                tuple(getattr(o, c) for c in (key, *cols)) for o in session.scalars(select(model))
            ]
        return pl.DataFrame(rows, schema={c: pl.String for c in (key, *cols)}, orient="row").sort(
            key
        )

    def rejects(self, feed: str | None = None) -> pl.DataFrame:
        stmt = select(FeedReject).order_by(FeedReject.id)
        if feed:
            stmt = stmt.where(FeedReject.feed == feed)
        cols = (
            "feed",
            "batch_id",
            "source",
            "line",
            "key",
            "rule",
            "field",
            "value",
            "message",
            "reject_id",
        )
        with read_session(self.engine) as session:
            rows = [
                {**{c: getattr(r, c) for c in cols}, "payload": r.payload, "at": utc(r.at)}
                for r in session.scalars(stmt)
            ]
        schema: dict[str, pl.DataType] = {c: pl.String() for c in (*cols, "payload")}
        schema |= {"line": pl.Int64(), "at": pl.Datetime("us", "UTC")}
        return pl.DataFrame(rows, schema=schema)
