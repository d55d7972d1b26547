"""PO store: suggested POs with explained lines, review by compare-and-set, revisions, the
delivery record written with each approval, and an audit trail."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import polars as pl
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from kernel.errors import Conflict, InvalidInput, NotFound
from replenishment.models import (
    AuditEntry,
    Base,
    Delivery,
    ItemMaster,
    PoLine,
    PurchaseOrder,
    Receipt,
    Unplanned,
)
from replenishment.planner import Suggestion
from replenishment.policy import EXPLANATION_COLUMNS
from replenishment.sql import engine_for, now_utc, read_session, utc, write_session

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

REVIEWED = ("approved", "rejected", "exported", "acknowledged", "received")
OPEN = ("approved", "exported", "acknowledged")  # ordered, not yet fully received
# Status machine: who may follow whom. ``approved`` after ``exported``/``acknowledged`` is
# a revision (a planner edit after delivery): a new version for the ERP, never a new order.
TRANSITIONS = {
    "suggested": ("approved", "rejected", "superseded"),
    "approved": ("exported", "acknowledged", "received", "rejected"),
    "exported": ("acknowledged", "received"),
    "acknowledged": ("received",),
    "received": (),
    "rejected": (),
    "superseded": (),
}


class OrderError(Conflict):
    """A PO action that the PO's state or the input does not allow; says what would."""


@dataclass(frozen=True)
class ReplaceReport:
    created: int
    replaced: int
    kept_reviewed: int
    superseded: int = 0
    unplanned: int = 0


def delivery_key(po_id: int, revision: int) -> str:
    """The idempotency key of one PO version: the ERP must never apply it twice."""
    return f"replen-po-{po_id}-r{revision}"


class OrderStore:
    """Suggested POs in a SQL database (SQLite file by default, PostgreSQL by URL); the
    schema comes from the migrations (``replen db upgrade``)."""

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
        with write_session(self.engine) as session:
            old = session.scalars(
                select(PurchaseOrder).where(PurchaseOrder.plan_date == plan_date)
            ).all()
            reviewed = {(p.supplier_id, p.store_id) for p in old if p.status in REVIEWED}
            stale = [p for p in old if p.status == "suggested"]
            for po in stale:
                session.delete(po)
            superseded = session.execute(
                update(PurchaseOrder)
                .where(PurchaseOrder.plan_date < plan_date, PurchaseOrder.status == "suggested")
                .values(status="superseded")
                .returning(PurchaseOrder.id)
            ).all()
            for (po_id,) in superseded:
                session.add(
                    AuditEntry(
                        po_id=po_id,
                        at=now,
                        actor=actor,
                        action="superseded",
                        detail={"by_plan": plan_date.isoformat()},
                    )
                )
            created = self._add_suggestions(session, plan_date, suggestion, reviewed, now)
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
        session: Session,
        plan_date: date,
        suggestion: Suggestion,
        reviewed: set[tuple[str, str]],
        now: datetime,
    ) -> int:
        lines_by_po = suggestion.lines.partition_by(
            "supplier_id", "store_id", as_dict=True, maintain_order=True
        )
        created = 0
        for head in suggestion.headers.iter_rows(named=True):
            key = (head["supplier_id"], head["store_id"])
            if key in reviewed:
                continue
            po = PurchaseOrder(
                plan_date=plan_date,
                supplier_id=head["supplier_id"],
                store_id=head["store_id"],
                order_date=head["order_date"],
                expected_delivery=head["expected_delivery"],
                status="suggested",
                currency=head["currency"],
                value=float(head["value"]),
                model_version=str(head["model_version"]),
                created_at=now,
                revision=1,
            )
            for line in lines_by_po[key].iter_rows(named=True):
                po.lines.append(
                    PoLine(
                        sku_id=line["sku_id"],
                        quantity=int(line["quantity"]),
                        suggested_quantity=int(line["quantity"]),
                        unit_cost=float(line["unit_cost"]),
                        value=float(line["value"]),
                        explanation=_explanation(line),
                        received_quantity=0.0,
                    )
                )
            session.add(po)
            created += 1
        session.flush()
        return created

    # Review --------------------------------------------------------------------------------
    def transition(
        self,
        po_id: int,
        to: str,
        actor: str,
        reason: str | None = None,
        detail: dict | None = None,
        expect: str | None = None,
    ) -> str:
        """Move a PO to status ``to`` (see ``TRANSITIONS``); audited; returns the old status.

        Compare-and-set in the database: of two concurrent changes of one PO, exactly one
        succeeds, the other is told the PO's new state. ``expect`` is the status the caller
        saw (a rejection of what was a suggestion must not reject an approved PO).
        Approving writes the delivery record of the PO's current revision in the same
        transaction."""
        if to == "rejected" and not reason:
            raise InvalidInput(
                "rejecting a PO needs a reason",
                field="reason",
                rule="reason.required",
                hint="give one with --reason",
            )
        with write_session(self.engine) as session:
            po = self._po(session, po_id)
            before, revision = po.status, po.revision
            if expect is not None and before != expect:
                raise OrderError(
                    f"PO {po_id} changed meanwhile: it is now {before}, not {expect}; look again"
                )
            allowed = TRANSITIONS.get(before, ())
            if to not in allowed:
                raise OrderError(
                    f"PO {po_id} is {before}; it can become "
                    f"{' or '.join(allowed) if allowed else 'nothing else'}, not {to}"
                )
            now = now_utc()
            if before == "approved" and to == "rejected":
                self._cancel_delivery(session, po_id, now)
            self._cas(session, po_id, before, revision, status=to)
            if to == "approved":
                self._queue_delivery(session, po_id, revision, now)
            session.add(
                AuditEntry(
                    po_id=po_id,
                    at=now,
                    actor=actor,
                    action=to,
                    detail={"from": before, "to": to, "reason": reason, **(detail or {})},
                )
            )
        return before

    def approve_many(self, po_ids: list[int], actor: str) -> tuple[list[int], dict[int, str]]:
        """Approve many suggested POs in one transaction (each by compare-and-set, each with
        its delivery record); returns (approved ids, {id: why not} for the others)."""
        approved: list[int] = []
        refused: dict[int, str] = {}
        now = now_utc()
        with write_session(self.engine) as session:
            for po_id in po_ids:
                done = session.execute(
                    update(PurchaseOrder)
                    .where(PurchaseOrder.id == po_id, PurchaseOrder.status == "suggested")
                    .values(status="approved")
                    .returning(PurchaseOrder.revision)
                    .execution_options(synchronize_session=False)
                ).first()
                if done is None:
                    current = session.get(PurchaseOrder, po_id)
                    refused[po_id] = f"is {current.status}" if current else "does not exist"
                    continue
                self._queue_delivery(session, po_id, int(done[0]), now)
                session.add(
                    AuditEntry(
                        po_id=po_id,
                        at=now,
                        actor=actor,
                        action="approved",
                        detail={"from": "suggested", "to": "approved", "reason": None},
                    )
                )
                approved.append(po_id)
        return approved, refused

    def edit_line(
        self, po_id: int, sku_id: str, quantity: int, actor: str, reason: str
    ) -> tuple[int, int]:
        """Change a line's quantity (reason required); returns (old, new).

        A suggested PO changes in place. An approved, exported or acknowledged PO without
        receipts gets a new revision, approved by this edit and queued for delivery: the ERP
        receives it as a new version of the same order (same PO id, next revision)."""
        if not reason:
            raise InvalidInput(
                "an edit needs a reason, kept in the audit trail",
                field="reason",
                rule="reason.required",
                hint="give one with --reason",
            )
        if quantity < 0:
            raise InvalidInput(
                f"quantity={quantity} must be >= 0 units",
                field="quantity",
                value=quantity,
                rule="quantity.nonnegative",
            )
        with write_session(self.engine) as session:
            po = self._po(session, po_id)
            before, revision = po.status, po.revision
            if before not in ("suggested", *OPEN):
                raise OrderError(
                    f"PO {po_id} is {before}; only suggested, approved, exported or "
                    "acknowledged POs can be edited"
                )
            if before != "suggested" and any(x.received_quantity for x in po.lines):
                raise OrderError(
                    f"PO {po_id} has goods receipts; change what is still open in the ERP"
                )
            line = next((x for x in po.lines if x.sku_id == sku_id), None)
            if line is None:
                raise NotFound(
                    f"PO {po_id} has no line for sku_id={sku_id!r}; lines: "
                    f"{[x.sku_id for x in po.lines]}"
                )
            old = line.quantity
            now = now_utc()
            new_revision = revision if before == "suggested" else revision + 1
            if before == "approved":
                self._cancel_delivery(session, po_id, now)
            self._cas(
                session,
                po_id,
                before,
                revision,
                status="approved" if before != "suggested" else "suggested",
                revision=new_revision,
            )
            line.quantity = quantity
            line.value = quantity * line.unit_cost
            line.confirmed_quantity = None
            session.flush()
            session.execute(
                update(PurchaseOrder)
                .where(PurchaseOrder.id == po_id)
                .values(value=sum(x.value for x in po.lines))
            )
            detail: dict[str, object] = {"sku_id": sku_id, "from": old, "to": quantity}
            if before != "suggested":
                self._queue_delivery(session, po_id, new_revision, now)
                detail |= {"revision": new_revision, "status_before": before}
            session.add(
                AuditEntry(
                    po_id=po_id,
                    at=now,
                    actor=actor,
                    action="edit" if before == "suggested" else "revise",
                    detail={**detail, "reason": reason},
                )
            )
        return old, quantity

    @staticmethod
    def _cas(session: Session, po_id: int, was: str, at_revision: int, **values: object) -> None:
        """Update the PO only if it is still ``was`` at ``at_revision``."""
        done = session.execute(
            update(PurchaseOrder)
            .where(
                PurchaseOrder.id == po_id,
                PurchaseOrder.status == was,
                PurchaseOrder.revision == at_revision,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if done != 1:
            session.expire_all()
            current = session.get(PurchaseOrder, po_id)
            state = f"{current.status} (revision {current.revision})" if current else "gone"
            raise OrderError(f"PO {po_id} changed meanwhile: it is now {state}; look again")

    @staticmethod
    def _queue_delivery(session: Session, po_id: int, revision: int, now: datetime) -> None:
        session.add(
            Delivery(
                po_id=po_id,
                revision=revision,
                idempotency_key=delivery_key(po_id, revision),
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )

    @staticmethod
    def _cancel_delivery(session: Session, po_id: int, now: datetime) -> None:
        """Cancel the PO's pending delivery, unless a worker is sending it right now."""
        pending = session.scalars(
            select(Delivery).where(Delivery.po_id == po_id, Delivery.status == "pending")
        ).all()
        for row in pending:
            lease = utc(row.lease_until)
            if lease is not None and lease > now:
                raise OrderError(
                    f"PO {po_id} is being sent to the ERP right now (attempt "
                    f"{row.attempts + 1}); try again in a moment",
                    hint="if the ERP accepted it, change or cancel it there too",
                )
            row.status = "cancelled"
            row.last_error = "cancelled: the PO was rejected or revised before delivery"

    def history(self, po_id: int) -> list[dict]:
        """The PO's audit trail, oldest first."""
        with read_session(self.engine) as session:
            self._po(session, po_id)
            return [
                {"at": utc(a.at), "actor": a.actor, "action": a.action, "detail": a.detail}
                for a in session.scalars(
                    select(AuditEntry).where(AuditEntry.po_id == po_id).order_by(AuditEntry.id)
                )
            ]

    @staticmethod
    def _po(session: Session, po_id: int) -> PurchaseOrder:
        po = session.get(PurchaseOrder, po_id)
        if po is None:
            raise NotFound(f"no purchase order with id {po_id}", hint="see `replen orders list`")
        return po

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


_HEADER_SCHEMA = {
    "po_id": pl.Int64,
    "plan_date": pl.Date,
    "supplier_id": pl.String,
    "store_id": pl.String,
    "order_date": pl.Date,
    "expected_delivery": pl.Date,
    "status": pl.String,
    "revision": pl.Int64,
    "lines": pl.Int64,
    "value": pl.Float64,
    "currency": pl.String,
    "model_version": pl.String,
    "stale": pl.Boolean,
    "erp_ref": pl.String,
}


def _explanation(line: dict) -> dict:
    keep = (
        *EXPLANATION_COLUMNS,
        "protection_days",
        "service_level",
        "demand_sd",
        "min_order_fill",
        "budget_adjustment",
        "erp_on_order",
        "in_transit",
        "replen_on_order",
        "position_as_of",
    )
    out = {}
    for key in keep:
        if key not in line:
            continue
        value = line[key]
        out[key] = round(float(value), 6) if isinstance(value, float) else value
    return json.loads(json.dumps(out, default=str))
