"""The ERP outbox: claim due PO versions under a lease, record what the ERP answered, back
off, dead-letter, retry. Each row is one PO version (PO id + revision = idempotency key)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import Table, bindparam, func, insert, or_, select, update

from kernel.errors import Conflict, NotFound
from kernel.sql import engine_for, now_utc, read_session, utc, write_session
from replenishment.erp.adapters import Accepted, DeliveryFailed
from replenishment.erp.payload import build_payloads, validate_payload
from replenishment.models import AuditEntry, Delivery, PurchaseOrder

__all__ = ["Claimed", "Outbox", "RetryPolicy", "backoff"]

ACTOR = "erp-delivery"
_D: Table = Delivery.__table__  # type: ignore[assignment]
_PO: Table = PurchaseOrder.__table__  # type: ignore[assignment]
_AUDIT: Table = AuditEntry.__table__  # type: ignore[assignment]


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
        d, po = _D, _PO
        due = (
            (d.c.status == "pending")
            & (d.c.next_attempt_at <= now)
            & or_(d.c.lease_until.is_(None), d.c.lease_until < now)
        )
        with write_session(self.engine) as session:
            conn = session.connection()
            ids = (
                conn.execute(
                    select(d.c.id).where(due).order_by(d.c.next_attempt_at, d.c.id).limit(limit)
                )
                .scalars()
                .all()
            )
            if not ids:
                return []
            rows = conn.execute(
                update(d)
                .where(d.c.id.in_(ids), due)
                .values(
                    lease_owner=owner, lease_until=now + timedelta(seconds=policy.lease_seconds)
                )
                .returning(
                    d.c.id, d.c.po_id, d.c.revision, d.c.idempotency_key, d.c.attempts, d.c.payload
                )
            ).all()
            heads = {
                r.id: r
                for r in conn.execute(
                    select(po.c.id, po.c.revision, po.c.status).where(
                        po.c.id.in_([r.po_id for r in rows])
                    )
                )
            }
            fresh: list[Any] = []
            stale: list[Any] = []
            for r in rows:
                head = heads.get(r.po_id)
                ok = head is not None and head.revision == r.revision and head.status != "rejected"
                (fresh if ok else stale).append(r)
            if stale:
                conn.execute(
                    update(d)
                    .where(d.c.id.in_([r.id for r in stale]))
                    .values(
                        status="cancelled",
                        lease_owner=None,
                        lease_until=None,
                        last_error="cancelled: the PO changed before this version was sent",
                    )
                )
            docs = build_payloads(
                session, [(r.po_id, r.idempotency_key) for r in fresh if r.payload is None]
            )
            built, dead = [], []
            claimed: list[Claimed] = []
            for r in fresh:
                payload = r.payload if r.payload is not None else docs.get(r.po_id)
                problems = validate_payload(payload) if r.payload is None and payload else []
                if payload is None or problems:
                    dead.append((r, f"invalid document: {'; '.join(problems) or 'PO is gone'}"))
                    continue
                if r.payload is None:
                    built.append({"_id": r.id, "_payload": payload})
                claimed.append(
                    Claimed(r.id, r.po_id, r.revision, r.idempotency_key, r.attempts, payload)
                )
            if built:
                conn.execute(
                    update(d)
                    .where(d.c.id == bindparam("_id"))
                    .values(payload=bindparam("_payload")),
                    built,
                )
            self._dead(conn, [(r.id, r.po_id, r.revision, r.attempts, why) for r, why in dead], now)
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
        d, po = _D, _PO
        with write_session(self.engine) as session:
            conn = session.connection()
            current = {
                r.id: r
                for r in conn.execute(
                    select(d.c.id, d.c.status, d.c.lease_owner).where(
                        d.c.id.in_([c.id for c, _ in outcomes])
                    )
                )
            }
            heads = {
                r.id: r
                for r in conn.execute(
                    select(po.c.id, po.c.status, po.c.revision, po.c.erp_known_at)
                    .where(po.c.id.in_([c.po_id for c, _ in outcomes]))
                    .with_for_update()
                )
            }
            done, moved, audits, retries, dead = [], [], [], [], []
            for claim, outcome in outcomes:
                row = current.get(claim.id)
                if row is None or row.status != "pending" or row.lease_owner != owner:
                    counts["lost_lease"] += 1
                    continue
                attempts = claim.attempts + 1
                if isinstance(outcome, Accepted):
                    done.append(
                        {"_id": claim.id, "_attempts": attempts, "_erp_ref": outcome.erp_ref}
                    )
                    head = heads.get(claim.po_id)
                    exported = (
                        head is not None
                        and head.status == "approved"
                        and head.revision == claim.revision
                    )
                    known = head is not None and head.erp_known_at is None and commits_in_erp
                    if exported or known:
                        moved.append(
                            {
                                "_id": claim.po_id,
                                "_status": "exported" if exported else head.status,  # type: ignore[union-attr]
                                "_erp_ref": outcome.erp_ref,
                                "_known": now if known else head.erp_known_at,  # type: ignore[union-attr]
                            }
                        )
                    audits.append(
                        {
                            "po_id": claim.po_id,
                            "at": now,
                            "actor": ACTOR,
                            "action": "exported" if exported else "delivered",
                            "detail": {
                                "revision": claim.revision,
                                "idempotency_key": claim.key,
                                "adapter": adapter,
                                "erp_ref": outcome.erp_ref,
                                "attempts": attempts,
                            },
                        }
                    )
                    counts["delivered"] += 1
                elif outcome.permanent or attempts >= policy.max_attempts:
                    reason = outcome.reason
                    if not outcome.permanent:
                        reason = f"gave up after {attempts} attempts; last: {reason}"
                    dead.append((claim.id, claim.po_id, claim.revision, attempts, reason))
                    counts["dead"] += 1
                else:
                    wait = max(backoff(attempts, policy, rng), outcome.retry_after or 0.0)
                    retries.append(
                        {
                            "_id": claim.id,
                            "_attempts": attempts,
                            "_next": now + timedelta(seconds=wait),
                            "_error": outcome.reason[:2000],
                        }
                    )
                    counts["retried"] += 1
            if done:
                conn.execute(
                    update(d)
                    .where(d.c.id == bindparam("_id"))
                    .values(
                        status="delivered",
                        attempts=bindparam("_attempts"),
                        erp_ref=bindparam("_erp_ref"),
                        delivered_at=now,
                        adapter=adapter,
                        last_error=None,
                        lease_owner=None,
                        lease_until=None,
                    ),
                    done,
                )
            if moved:
                conn.execute(
                    update(po)
                    .where(po.c.id == bindparam("_id"))
                    .values(
                        status=bindparam("_status"),
                        erp_ref=func.coalesce(bindparam("_erp_ref"), po.c.erp_ref),
                        erp_known_at=bindparam("_known"),
                    ),
                    moved,
                )
            if retries:
                conn.execute(
                    update(d)
                    .where(d.c.id == bindparam("_id"))
                    .values(
                        attempts=bindparam("_attempts"),
                        next_attempt_at=bindparam("_next"),
                        last_error=bindparam("_error"),
                        adapter=adapter,
                        lease_owner=None,
                        lease_until=None,
                    ),
                    retries,
                )
            if audits:
                conn.execute(insert(_AUDIT), audits)
            self._dead(conn, dead, now, adapter)
        return counts

    @staticmethod
    def _dead(
        conn: Any,
        rows: list[tuple[int, int, int, int, str]],
        now: datetime,
        adapter: str | None = None,
    ) -> None:
        """Dead-letter ``(delivery id, po id, revision, attempts, reason)`` rows, audited."""
        if not rows:
            return
        conn.execute(
            update(_D)
            .where(_D.c.id == bindparam("_id"))
            .values(
                status="dead",
                attempts=bindparam("_attempts"),
                dead_reason=bindparam("_reason"),
                last_error=bindparam("_reason"),
                adapter=adapter,
                lease_owner=None,
                lease_until=None,
            ),
            [{"_id": i, "_attempts": n, "_reason": why[:2000]} for i, _, _, n, why in rows],
        )
        conn.execute(
            insert(_AUDIT),
            [
                {
                    "po_id": po_id,
                    "at": now,
                    "actor": ACTOR,
                    "action": "delivery_failed",
                    "detail": {"revision": rev, "reason": why[:500]},
                }
                for _, po_id, rev, _, why in rows
            ],
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
                raise NotFound(f"PO {po_id} has no delivery", hint="see `replen erp dead-letters`")
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


_DELIVERY_SCHEMA: dict[str, pl.DataType] = {
    "delivery_id": pl.Int64(),
    "po_id": pl.Int64(),
    "revision": pl.Int64(),
    "idempotency_key": pl.String(),
    "status": pl.String(),
    "attempts": pl.Int64(),
    "next_attempt_at": pl.Datetime("us", "UTC"),
    "adapter": pl.String(),
    "erp_ref": pl.String(),
    "last_error": pl.String(),
    "dead_reason": pl.String(),
    "delivered_at": pl.Datetime("us", "UTC"),
}
