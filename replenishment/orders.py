"""PO store: suggested POs with explained lines, stored by plan date (superseding older ones,
with what could not be planned); review in ``review.py``; reading for screens and plans."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import polars as pl
from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.engine import Engine

from kernel.sql import engine_for, now_utc, read_session, utc, write_session
from replenishment.explain import explanation_record
from replenishment.models import (
    AuditEntry,
    Base,
    ItemMaster,
    PoLine,
    PurchaseOrder,
    Receipt,
    Unplanned,
)
from replenishment.planner import Suggestion
from replenishment.review import OPEN, REVIEWED, TRANSITIONS, OrderError, Review, delivery_key

_PO: Table = PurchaseOrder.__table__  # type: ignore[assignment]
_LINE: Table = PoLine.__table__  # type: ignore[assignment]
_AUDIT: Table = AuditEntry.__table__  # type: ignore[assignment]

__all__ = [
    "OPEN",
    "TRANSITIONS",
    "Base",
    "OrderError",
    "OrderStore",
    "PoLine",
    "PurchaseOrder",
    "ReplaceReport",
    "delivery_key",
]


@dataclass(frozen=True)
class ReplaceReport:
    created: int
    replaced: int
    kept_reviewed: int
    superseded: int = 0
    unplanned: int = 0


class OrderStore(Review):
    """Suggested POs in a SQL database (SQLite file by default, PostgreSQL by URL); the
    schema comes from the migrations (``replen db upgrade``). Review actions (approve,
    reject, edit, revisions) come from :class:`replenishment.review.Review`."""

    def __init__(self, engine: Engine | str) -> None:
        self.engine = engine_for(engine)

    # Planning ------------------------------------------------------------------------------
    def replace_suggestions(
        self,
        plan_date: date,
        suggestion: Suggestion,
        actor: str = "planner-job",
        unplanned: pl.DataFrame | None = None,
    ) -> ReplaceReport:
        """Store a plan's suggestions in one transaction.

        Unreviewed suggestions of the same plan date are replaced; a supplier×store whose PO
        was already reviewed that day keeps it and gets no new suggestion. Suggestions of
        earlier plan dates still open are superseded: the newer plan sees the same need
        with fresher data, and the need must never be ordered twice. ``unplanned`` (store×
        SKUs the plan did not size, with the reason) replaces that date's list.
        """
        now = now_utc()
        po_t, line_t = _PO, _LINE
        with write_session(self.engine) as session:
            conn = session.connection()
            old = conn.execute(
                select(po_t.c.id, po_t.c.supplier_id, po_t.c.store_id, po_t.c.status).where(
                    po_t.c.plan_date == plan_date
                )
            ).all()
            reviewed = {(p.supplier_id, p.store_id) for p in old if p.status in REVIEWED}
            stale = [p.id for p in old if p.status == "suggested"]
            for start in range(0, len(stale), 500):
                chunk = stale[start : start + 500]
                conn.execute(delete(line_t).where(line_t.c.po_id.in_(chunk)))
                conn.execute(delete(po_t).where(po_t.c.id.in_(chunk)))
            superseded = conn.execute(
                update(po_t)
                .where(po_t.c.plan_date < plan_date, po_t.c.status == "suggested")
                .values(status="superseded")
                .returning(po_t.c.id)
            ).all()
            if superseded:
                conn.execute(
                    insert(_AUDIT),
                    [
                        {
                            "po_id": po_id,
                            "at": now,
                            "actor": actor,
                            "action": "superseded",
                            "detail": {"by_plan": plan_date.isoformat()},
                        }
                        for (po_id,) in superseded
                    ],
                )
            created = self._add_suggestions(conn, plan_date, suggestion, reviewed, now)
            n_unplanned = 0
            if unplanned is not None:
                session.execute(delete(Unplanned).where(Unplanned.plan_date == plan_date))
                rows = unplanned.select("store_id", "sku_id", "reason", "detail").to_dicts()
                if rows:
                    session.execute(
                        insert(Unplanned), [{**r, "plan_date": plan_date} for r in rows]
                    )
                n_unplanned = len(rows)
            session.add(
                AuditEntry(
                    po_id=None,
                    at=now,
                    actor=actor,
                    action="plan",
                    detail={
                        "plan_date": plan_date.isoformat(),
                        "created": created,
                        "replaced": len(stale),
                        "kept_reviewed": len(reviewed),
                        "superseded": len(superseded),
                        "unplanned": n_unplanned,
                    },
                )
            )
        return ReplaceReport(
            created=created,
            replaced=len(stale),
            kept_reviewed=len(reviewed),
            superseded=len(superseded),
            unplanned=n_unplanned,
        )

    @staticmethod
    def _add_suggestions(
        conn: Any,
        plan_date: date,
        suggestion: Suggestion,
        reviewed: set[tuple[str, str]],
        now: datetime,
    ) -> int:
        """Insert the suggested POs and their lines in bulk (two statements)."""
        heads = [
            h
            for h in suggestion.headers.iter_rows(named=True)
            if (h["supplier_id"], h["store_id"]) not in reviewed
        ]
        if not heads:
            return 0
        ids = (
            conn.execute(
                insert(_PO).returning(_PO.c.id, sort_by_parameter_order=True),
                [
                    {
                        "plan_date": plan_date,
                        "supplier_id": h["supplier_id"],
                        "store_id": h["store_id"],
                        "order_date": h["order_date"],
                        "expected_delivery": h["expected_delivery"],
                        "status": "suggested",
                        "currency": h["currency"],
                        "value": float(h["value"]),
                        "model_version": str(h["model_version"]),
                        "stale": False,
                        "created_at": now,
                        "revision": 1,
                    }
                    for h in heads
                ],
            )
            .scalars()
            .all()
        )
        po_of = {(h["supplier_id"], h["store_id"]): i for h, i in zip(heads, ids, strict=True)}
        lines = [
            {
                "po_id": po_of[(line["supplier_id"], line["store_id"])],
                "sku_id": line["sku_id"],
                "quantity": int(line["quantity"]),
                "suggested_quantity": int(line["quantity"]),
                "unit_cost": float(line["unit_cost"]),
                "value": float(line["value"]),
                "explanation": _explanation(line),
                "received_quantity": 0.0,
            }
            for line in suggestion.lines.iter_rows(named=True)
            if (line["supplier_id"], line["store_id"]) in po_of
        ]
        if lines:
            conn.execute(insert(_LINE), lines)
        return len(heads)

    # Reading -------------------------------------------------------------------------------
    def own_orders(self, known_before: datetime | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Lines of POs ordered here that a stock position may not count yet, and their
        receipts: ``(lines: po_id, store_id, sku_id, quantity, erp_known_at; receipts: po_id,
        sku_id, quantity, received_at)``. POs the ERP held before ``known_before`` and that
        were fully received are left out: every position newer than that counts them."""
        stmt = (
            select(
                PurchaseOrder.id,
                PurchaseOrder.store_id,
                PoLine.sku_id,
                PoLine.quantity,
                PoLine.confirmed_quantity,
                PurchaseOrder.erp_known_at,
                PurchaseOrder.status,
            )
            .join(PoLine)
            .where(PurchaseOrder.status.in_([*OPEN, "received"]))
        )
        with read_session(self.engine) as session:
            rows = session.execute(stmt).all()
            ids = sorted({r[0] for r in rows})
            receipts: list[Any] = []
            for start in range(0, len(ids), 500):
                receipts += session.execute(
                    select(
                        Receipt.po_id, Receipt.sku_id, Receipt.quantity, Receipt.received_at
                    ).where(Receipt.po_id.in_(ids[start : start + 500]))
                ).all()
        lines = pl.DataFrame(
            [
                (i, s, k, float(c if c is not None else q), utc(known))
                for i, s, k, q, c, known, status in rows
                if not (
                    status == "received"
                    and known is not None
                    and known_before is not None
                    and utc(known) < known_before  # type: ignore[operator]
                )
            ],
            schema={
                "po_id": pl.Int64,
                "store_id": pl.String,
                "sku_id": pl.String,
                "quantity": pl.Float64,
                "erp_known_at": pl.Datetime("us", "UTC"),
            },
            orient="row",
        )
        got = pl.DataFrame(
            [(i, k, float(q), utc(t)) for i, k, q, t in receipts],
            schema={
                "po_id": pl.Int64,
                "sku_id": pl.String,
                "quantity": pl.Float64,
                "received_at": pl.Datetime("us", "UTC"),
            },
            orient="row",
        )
        return lines, got

    def snooze(self, po_id: int, until: date | None, actor: str, reason: str | None = None) -> None:
        """Put a suggested PO aside until ``until`` (None wakes it now); audited."""
        with write_session(self.engine) as session:
            po = self._po(session, po_id)
            if po.status != "suggested":
                raise OrderError(f"PO {po_id} is {po.status}; only suggested POs can be snoozed")
            before = po.snoozed_until
            po.snoozed_until = until
            session.add(
                AuditEntry(
                    po_id=po_id,
                    at=now_utc(),
                    actor=actor,
                    action="snooze" if until else "wake",
                    detail={
                        "from": before.isoformat() if before else None,
                        "until": until.isoformat() if until else None,
                        "reason": reason,
                    },
                )
            )

    def mark_stale(self, actor: str = "planner-job") -> int:
        """Flag every unreviewed suggestion as stale (today's plan failed); returns POs."""
        now = now_utc()
        with write_session(self.engine) as session:
            result = session.execute(
                update(PurchaseOrder).where(PurchaseOrder.status == "suggested").values(stale=True)
            )
            n = int(result.rowcount)  # type: ignore[attr-defined]
            session.add(
                AuditEntry(
                    po_id=None,
                    at=now,
                    actor=actor,
                    action="mark_stale",
                    detail={"purchase_orders": n},
                )
            )
        return n

    def purchase_orders(
        self, plan_date: date | None = None, status: str | None = None
    ) -> pl.DataFrame:
        """Headers as a frame (one row per PO)."""
        stmt = select(PurchaseOrder)
        if plan_date is not None:
            stmt = stmt.where(PurchaseOrder.plan_date == plan_date)
        if status is not None:
            stmt = stmt.where(PurchaseOrder.status == status)
        with read_session(self.engine) as session:
            rows = [
                {
                    "po_id": p.id,
                    "plan_date": p.plan_date,
                    "supplier_id": p.supplier_id,
                    "store_id": p.store_id,
                    "order_date": p.order_date,
                    "expected_delivery": p.expected_delivery,
                    "status": p.status,
                    "revision": p.revision,
                    "lines": len(p.lines),
                    "value": p.value,
                    "currency": p.currency,
                    "model_version": p.model_version,
                    "stale": p.stale,
                    "erp_ref": p.erp_ref,
                }
                for p in session.scalars(stmt.order_by(PurchaseOrder.id))
            ]
        return pl.DataFrame(rows, schema=_HEADER_SCHEMA)

    def po_lines(self, plan_date: date | None = None, po_id: int | None = None) -> pl.DataFrame:
        """Lines with their explanation fields flattened into columns, and the item name."""
        stmt = (
            select(PoLine, PurchaseOrder, ItemMaster.name)
            .join(PurchaseOrder)
            .outerjoin(ItemMaster, ItemMaster.sku_id == PoLine.sku_id)
        )
        if plan_date is not None:
            stmt = stmt.where(PurchaseOrder.plan_date == plan_date)
        if po_id is not None:
            stmt = stmt.where(PurchaseOrder.id == po_id)
        with read_session(self.engine) as session:
            rows = [
                {
                    # The explanation's "quantity" is the suggestion; the line's own
                    # (possibly edited) quantity wins.
                    **line.explanation,
                    "po_id": po.id,
                    "status": po.status,
                    "revision": po.revision,
                    "supplier_id": po.supplier_id,
                    "store_id": po.store_id,
                    "sku_id": line.sku_id,
                    "item_name": name,
                    "quantity": line.quantity,
                    "suggested_quantity": line.suggested_quantity,
                    "received_quantity": line.received_quantity,
                    "confirmed_quantity": line.confirmed_quantity,
                    "unit_cost": line.unit_cost,
                    "value": line.value,
                    "model_version": po.model_version,
                }
                for line, po, name in session.execute(stmt.order_by(PoLine.id)).all()
            ]
        if not rows:  # no lines yet: still the columns every reader selects
            return pl.DataFrame(schema=_LINE_SCHEMA)
        return pl.DataFrame(rows, infer_schema_length=None)

    def unplanned(self, plan_date: date | None = None) -> pl.DataFrame:
        """Store×SKUs a plan did not size, with the reason (newest plan date if None)."""
        with read_session(self.engine) as session:
            if plan_date is None:
                plan_date = session.scalar(
                    select(Unplanned.plan_date).order_by(Unplanned.plan_date.desc()).limit(1)
                )
            rows = session.execute(
                select(
                    Unplanned.plan_date,
                    Unplanned.store_id,
                    Unplanned.sku_id,
                    Unplanned.reason,
                    Unplanned.detail,
                )
                .where(Unplanned.plan_date == plan_date)
                .order_by(Unplanned.reason, Unplanned.store_id, Unplanned.sku_id)
            ).all()
        return pl.DataFrame(
            rows,
            schema={
                "plan_date": pl.Date,
                "store_id": pl.String,
                "sku_id": pl.String,
                "reason": pl.String,
                "detail": pl.String,
            },
            orient="row",
        )

    def audit(self) -> list[dict]:
        with read_session(self.engine) as session:
            return [
                {
                    "po_id": a.po_id,
                    "at": utc(a.at),
                    "actor": a.actor,
                    "action": a.action,
                    "detail": a.detail,
                }
                for a in session.scalars(select(AuditEntry).order_by(AuditEntry.id))
            ]


# Columns shared by the frames of POs and of their lines (review_store's worklist lines too):
# what names a PO, first; what a line orders.
PO_SCHEMA: dict[str, Any] = {
    "po_id": pl.Int64,
    "plan_date": pl.Date,
    "supplier_id": pl.String,
    "store_id": pl.String,
    "order_date": pl.Date,
    "expected_delivery": pl.Date,
    "status": pl.String,
}
ORDERED_SCHEMA: dict[str, Any] = {
    "sku_id": pl.String,
    "quantity": pl.Int64,
    "suggested_quantity": pl.Int64,
    "unit_cost": pl.Float64,
    "value": pl.Float64,
}
_LINE_SCHEMA = {
    "po_id": pl.Int64,
    "status": pl.String,
    "supplier_id": pl.String,
    "store_id": pl.String,
    **ORDERED_SCHEMA,
    "model_version": pl.String,
}
_HEADER_SCHEMA = {
    **PO_SCHEMA,
    "revision": pl.Int64,
    "lines": pl.Int64,
    "value": pl.Float64,
    "currency": pl.String,
    "model_version": pl.String,
    "stale": pl.Boolean,
    "erp_ref": pl.String,
}


def _explanation(line: dict) -> dict:
    return explanation_record(line)
