"""Review of POs: approve, reject, edit, revise — each a compare-and-set in the database,
audited, the approval writing its delivery record (the ERP outbox) in the same transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from kernel.errors import Conflict, InvalidInput, NotFound
from kernel.sql import now_utc, read_session, utc, write_session
from replenishment.models import AuditEntry, Delivery, PurchaseOrder

__all__ = ["OPEN", "REVIEWED", "TRANSITIONS", "OrderError", "Review", "delivery_key"]

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


def delivery_key(po_id: int, revision: int) -> str:
    """The idempotency key of one PO version: the ERP must never apply it twice."""
    return f"replen-po-{po_id}-r{revision}"


class Review:
    """The review actions of :class:`replenishment.orders.OrderStore`."""

    engine: Engine

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
        """Approve many suggested POs in one transaction (compare-and-set: only those still
        suggested), each with its delivery record; returns (approved ids, {id: why not})."""
        po_t: Any = PurchaseOrder.__table__
        now = now_utc()
        approved: dict[int, int] = {}
        with write_session(self.engine) as session:
            conn = session.connection()
            for start in range(0, len(po_ids), 500):
                chunk = po_ids[start : start + 500]
                approved |= dict(
                    conn.execute(
                        update(po_t)
                        .where(po_t.c.id.in_(chunk), po_t.c.status == "suggested")
                        .values(status="approved")
                        .returning(po_t.c.id, po_t.c.revision)
                    )
                    .tuples()
                    .all()
                )
            if approved:
                conn.execute(
                    insert(Delivery),
                    [
                        {
                            "po_id": po_id,
                            "revision": rev,
                            "idempotency_key": delivery_key(po_id, rev),
                            "status": "pending",
                            "attempts": 0,
                            "next_attempt_at": now,
                            "created_at": now,
                        }
                        for po_id, rev in approved.items()
                    ],
                )
                conn.execute(
                    insert(AuditEntry),
                    [
                        {
                            "po_id": po_id,
                            "at": now,
                            "actor": actor,
                            "action": "approved",
                            "detail": {"from": "suggested", "to": "approved", "reason": None},
                        }
                        for po_id in approved
                    ],
                )
            others = [i for i in po_ids if i not in approved]
            states = (
                dict(
                    conn.execute(select(po_t.c.id, po_t.c.status).where(po_t.c.id.in_(others)))
                    .tuples()
                    .all()
                )
                if others
                else {}
            )
        refused = {i: f"is {states[i]}" if i in states else "does not exist" for i in others}
        return [i for i in po_ids if i in approved], refused

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
