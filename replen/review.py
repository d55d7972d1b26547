"""Reviewing purchase orders as an identity: store scope, approval limit and audit actor
checked the same way for the planner API, the planner page and the CLI."""

from __future__ import annotations

from typing import Any

import polars as pl

from jobs.runtime import Runtime
from kernel.errors import NotFound
from replen.auth.policy import Principal, authorize

__all__ = ["decide", "edit", "head_of"]


def head_of(rt: Runtime, po_id: int) -> dict[str, Any]:
    """One PO's header (store, value, status); NotFound if there is none."""
    heads = rt.orders.purchase_orders().filter(pl.col("po_id") == po_id)
    if heads.is_empty():
        raise NotFound(
            f"no purchase order with id {po_id}", hint="list them with `replen orders list`"
        )
    return heads.row(0, named=True)


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
