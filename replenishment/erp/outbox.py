"""The ERP outbox: claim due PO versions under a lease, record what the ERP answered, back
off, dead-letter, retry. Each row is one PO version (PO id + revision = idempotency key)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import func, or_, select, update

from kernel.errors import Conflict, NotFound
from replenishment.erp.adapters import Accepted, DeliveryFailed
from replenishment.erp.payload import build_payload, validate_payload
from replenishment.models import AuditEntry, Delivery, PurchaseOrder
from replenishment.sql import engine_for, now_utc, read_session, utc, write_session

__all__ = ["Claimed", "Outbox", "RetryPolicy", "backoff"]

ACTOR = "erp-delivery"


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter; give up (dead letter) after ``max_attempts``."""

    base_seconds: float = 2.0
    cap_seconds: float = 300.0
    max_attempts: int = 30
    lease_seconds: float = 120.0


def backoff(attempt: int, policy: RetryPolicy, rng: random.Random | None = None) -> float:
    """Seconds before attempt ``attempt + 1``: base·2^(attempt−1) capped, times a random
    factor in [0.5, 1] so that many failed deliveries do not come back all at once."""
    raw = min(policy.cap_seconds, policy.base_seconds * 2 ** max(attempt - 1, 0))
    return raw * (0.5 + 0.5 * (rng or random).random())


@dataclass(frozen=True)
class Claimed:
    id: int
    po_id: int
    revision: int
    key: str
    attempts: int
    payload: dict[str, Any]


class Outbox:
    def __init__(self, engine: Any) -> None:
        self.engine = engine_for(engine)

    def claim(self, owner: str, limit: int, policy: RetryPolicy) -> list[Claimed]:
        """Lease up to ``limit`` due deliveries to ``owner`` (nobody else sends them until
        the lease ends: a worker killed mid-send loses them to the next after the lease).
        The document is built at the first claim and kept, so every retry sends the same
        bytes under the same key."""
        now = now_utc()
        due = (
            (Delivery.status == "pending")
            & (Delivery.next_attempt_at <= now)
            & or_(Delivery.lease_until.is_(None), Delivery.lease_until < now)
        )
        claimed: list[Claimed] = []
        with write_session(self.engine) as session:
            ids = session.scalars(
                select(Delivery.id).where(due).order_by(Delivery.next_attempt_at, Delivery.id)
                .limit(limit)
            ).all()
            if not ids:
                return []
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids), due)
                .values(lease_owner=owner, lease_until=now + timedelta(seconds=policy.lease_seconds))
                .execution_options(synchronize_session=False)
            )
            rows = session.scalars(
                select(Delivery).where(Delivery.id.in_(ids), Delivery.lease_owner == owner)
            ).all()
            for row in rows:
                po = session.get(PurchaseOrder, row.po_id)
                if po is None or po.revision != row.revision or po.status == "rejected":
                    row.status = "cancelled"
                    row.last_error = "cancelled: the PO changed before this version was sent"
                    row.lease_owner = row.lease_until = None
                    continue
                if row.payload is None:
                    payload = build_payload(session, row.po_id, row.idempotency_key)
                    problems = validate_payload(payload)
                    if problems:
                        self._dead(session, row, f"invalid document: {'; '.join(problems)}", now)
                        continue
                    row.payload = payload
                claimed.append(
                    Claimed(row.id, row.po_id, row.revision, row.idempotency_key, row.attempts,
                            dict(row.payload))
                )
        return claimed

    def record(
        self,
        owner: str,
        outcomes: list[tuple[Claimed, Accepted | DeliveryFailed]],
        policy: RetryPolicy,
        adapter: str,
        commits_in_erp: bool,
        rng: random.Random | None = None,
    ) -> dict[str, int]:
        """Write the ERP's answers in one transaction; returns counts by outcome. A PO
        becomes ``exported`` only when the ERP accepted its current revision. An answer
        for a delivery whose lease this worker lost is dropped (the new holder sends it
        again under the same key, which the ERP applies once)."""
        counts = {"delivered": 0, "retried": 0, "dead": 0, "lost_lease": 0}
        now = now_utc()
        with write_session(self.engine) as session:
            for claim, outcome in outcomes:
                row = session.get(Delivery, claim.id)
                if row is None or row.status != "pending" or row.lease_owner != owner:
                    counts["lost_lease"] += 1
                    continue
                row.attempts += 1
                row.lease_owner = row.lease_until = None
                row.adapter = adapter
                if isinstance(outcome, Accepted):
                    self._delivered(session, row, outcome, now, commits_in_erp)
                    counts["delivered"] += 1
                elif outcome.permanent or row.attempts >= policy.max_attempts:
                    reason = outcome.reason
                    if not outcome.permanent:
                        reason = f"gave up after {row.attempts} attempts; last: {reason}"
                    self._dead(session, row, reason, now)
                    counts["dead"] += 1
                else:
                    wait = max(backoff(row.attempts, policy, rng), outcome.retry_after or 0.0)
                    row.next_attempt_at = now + timedelta(seconds=wait)
                    row.last_error = outcome.reason
                    counts["retried"] += 1
        return counts

    @staticmethod
    def _delivered(
        session: Any, row: Delivery, outcome: Accepted, now: datetime, commits_in_erp: bool
    ) -> None:
        row.status = "delivered"
        row.delivered_at = now
        row.erp_ref = outcome.erp_ref
        row.last_error = None
        values: dict[str, Any] = {"status": "exported"}
        if outcome.erp_ref:
            values["erp_ref"] = outcome.erp_ref
        moved = session.execute(
            update(PurchaseOrder)
            .where(
                PurchaseOrder.id == row.po_id,
                PurchaseOrder.status == "approved",
                PurchaseOrder.revision == row.revision,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount
        if commits_in_erp:
            session.execute(
                update(PurchaseOrder)
                .where(PurchaseOrder.id == row.po_id, PurchaseOrder.erp_known_at.is_(None))
                .values(erp_known_at=now)
                .execution_options(synchronize_session=False)
            )
        session.add(
            AuditEntry(
                po_id=row.po_id,
                at=now,
                actor=ACTOR,
                action="exported" if moved else "delivered",
                detail={
                    "revision": row.revision,
                    "idempotency_key": row.idempotency_key,
                    "adapter": row.adapter,
                    "erp_ref": outcome.erp_ref,
                    "attempts": row.attempts,
                },
            )
        )

    @staticmethod
    def _dead(session: Any, row: Delivery, reason: str, now: datetime) -> None:
        row.status = "dead"
        row.dead_reason = reason[:2000]
        row.last_error = reason[:2000]
        row.lease_owner = row.lease_until = None
        session.add(
            AuditEntry(
                po_id=row.po_id,
                at=now,
                actor=ACTOR,
                action="delivery_failed",
                detail={"revision": row.revision, "reason": reason[:500]},
            )
        )

    # Operations ----------------------------------------------------------------------------
    def retry(self, po_id: int, actor: str) -> str:
        """Send a dead-lettered PO version again (attempts start over); returns its key."""
        now = now_utc()
        with write_session(self.engine) as session:
            row = session.scalars(
                select(Delivery)
                .where(Delivery.po_id == po_id)
                .order_by(Delivery.revision.desc(), Delivery.id.desc())
                .limit(1)
            ).first()
            if row is None:
                raise NotFound(
                    f"PO {po_id} has no delivery", hint="see `replen erp dead-letters`"
                )
            if row.status != "dead":
                raise Conflict(
                    f"the delivery of PO {po_id} (revision {row.revision}) is {row.status}, "
                    "not a dead letter; only dead letters can be retried"
                )
            row.status = "pending"
            row.attempts = 0
            row.next_attempt_at = now
            reason, row.dead_reason = row.dead_reason, None
            session.add(
                AuditEntry(
                    po_id=po_id,
                    at=now,
                    actor=actor,
                    action="delivery_retry",
                    detail={"revision": row.revision, "was": reason},
                )
            )
            return row.idempotency_key

    def deliveries(self, status: str | None = None) -> pl.DataFrame:
        stmt = select(Delivery).order_by(Delivery.id)
        if status:
            stmt = stmt.where(Delivery.status == status)
        with read_session(self.engine) as session:
            rows = [
                {
                    "delivery_id": d.id,
                    "po_id": d.po_id,
                    "revision": d.revision,
                    "idempotency_key": d.idempotency_key,
                    "status": d.status,
                    "attempts": d.attempts,
                    "next_attempt_at": utc(d.next_attempt_at),
                    "adapter": d.adapter,
                    "erp_ref": d.erp_ref,
                    "last_error": d.last_error,
                    "dead_reason": d.dead_reason,
                    "delivered_at": utc(d.delivered_at),
                }
                for d in session.scalars(stmt)
            ]
        return pl.DataFrame(rows, schema=_DELIVERY_SCHEMA)

    def counts(self) -> dict[str, int]:
        with read_session(self.engine) as session:
            rows = session.execute(
                select(Delivery.status, func.count()).group_by(Delivery.status)
            ).all()
        return {str(s): int(n) for s, n in rows}

    def next_due(self) -> datetime | None:
        """When the next pending delivery can be claimed: its attempt time, or the end of
        the lease another worker holds on it."""
        now = now_utc()
        pending = Delivery.status == "pending"
        free = or_(Delivery.lease_until.is_(None), Delivery.lease_until < now)
        with read_session(self.engine) as session:
            due = session.scalar(select(func.min(Delivery.next_attempt_at)).where(pending, free))
            held = session.scalar(
                select(func.min(Delivery.lease_until)).where(pending, Delivery.lease_until >= now)
            )
        times = [t for t in (utc(due), utc(held)) if t is not None]
        return min(times) if times else None


_DELIVERY_SCHEMA = {
    "delivery_id": pl.Int64,
    "po_id": pl.Int64,
    "revision": pl.Int64,
    "idempotency_key": pl.String,
    "status": pl.String,
    "attempts": pl.Int64,
    "next_attempt_at": pl.Datetime("us", "UTC"),
    "adapter": pl.String,
    "erp_ref": pl.String,
    "last_error": pl.String,
    "dead_reason": pl.String,
    "delivered_at": pl.Datetime("us", "UTC"),
}
