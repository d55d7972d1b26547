"""Reviewing purchase orders as an identity: store scope, approval limit and audit actor
checked the same way for the planner API, the planner page and the CLI."""

from __future__ import annotations

from datetime import date
from typing import Any

from jobs.runtime import Runtime
from kernel.errors import NotFound, ReplenError
from replen.auth.policy import Principal, authorize

__all__ = ["bulk", "decide", "edit", "head_of", "snooze"]


def head_of(rt: Runtime, po_id: int) -> dict[str, Any]:
    """One PO's header (store, value, status); NotFound if there is none."""
    from sqlalchemy import select

    from replenishment.orders import PurchaseOrder

    po = PurchaseOrder
    with rt.orders.engine.connect() as conn:
        row = conn.execute(
            select(po.id, po.store_id, po.supplier_id, po.status, po.value).where(po.id == po_id)
        ).first()
    if row is None:
        raise NotFound(
            f"no purchase order with id {po_id}",
            hint="list them with `replen orders list` or GET /v1/orders",
        )
    return {
        "po_id": row[0],
        "store_id": row[1],
        "supplier_id": row[2],
        "status": row[3],
        "value": row[4],
    }


def decide(rt: Runtime, principal: Principal, po_id: int, to: str, reason: str | None) -> dict:
    """Approve or reject ``po_id`` as ``principal`` (store scope and value limit checked);
    the audit trail names ``principal``."""
    head = head_of(rt, po_id)
    authorize(principal, "orders:approve", store=head["store_id"], value=float(head["value"]))
    before = rt.orders.transition(po_id, to, principal.actor, reason)
    return {"po_id": po_id, "from": before, "to": to}


def edit(
    rt: Runtime, principal: Principal, po_id: int, sku_id: str, quantity: int, reason: str
) -> dict:
    """Change one line's quantity as ``principal`` (store scope checked, audited)."""
    head = head_of(rt, po_id)
    authorize(principal, "orders:edit", store=head["store_id"])
    old, new = rt.orders.edit_line(po_id, sku_id, quantity, principal.actor, reason)
    return {"po_id": po_id, "sku_id": sku_id, "from": old, "to": new}


def snooze(
    rt: Runtime, principal: Principal, po_id: int, until: date | None, reason: str | None
) -> dict:
    """Put a suggested PO aside until ``until`` (None: back now) as ``principal``."""
    head = head_of(rt, po_id)
    authorize(principal, "orders:edit", store=head["store_id"])
    rt.orders.snooze(po_id, until, principal.actor, reason)
    return {"po_id": po_id, "snoozed_until": until}


def bulk(
    rt: Runtime,
    principal: Principal,
    action: str,
    po_ids: list[int],
    reason: str | None = None,
    until: date | None = None,
) -> dict[str, Any]:
    """Apply ``action`` (approve, reject, snooze) to each PO on its own: one refused PO
    (wrong state, outside the scope, over the limit) does not stop the others; each
    outcome is reported, a failure as its problem document."""
    results: list[dict[str, Any]] = []
    for po_id in dict.fromkeys(po_ids):  # each once, in the order given
        try:
            if action == "snooze":
                snooze(rt, principal, po_id, until, reason)
                status = "suggested"
            else:
                status = decide(
                    rt, principal, po_id, "approved" if action == "approve" else "rejected", reason
                )["to"]
            results.append({"po_id": po_id, "ok": True, "status": status})
        except ReplenError as exc:
            results.append({"po_id": po_id, "ok": False, "error": exc.problem()})
    ok = sum(r["ok"] for r in results)
    return {"succeeded": ok, "failed": len(results) - ok, "results": results}
