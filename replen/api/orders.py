"""The planner API: purchase orders of the caller's stores; edit, approve, reject (audited
under the caller's identity, approvals within the approver's value limit)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from jobs.runtime import Runtime
from replen import review
from replen.api.deps import get_runtime
from replen.api.limits import body_rule
from replen.api.security import require, secured
from replen.auth.policy import Principal, authorize
from replen.review import head_of

router = APIRouter(prefix="/v1/orders", tags=["orders"])
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
PoId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class PurchaseOrderHead(BaseModel):
    po_id: int
    plan_date: date
    supplier_id: str
    store_id: str
    status: str
    lines: int
    value: float
    currency: str
    stale: bool


class PurchaseOrderDetail(BaseModel):
    head: PurchaseOrderHead
    lines: list[dict[str, Any]]
    history: list[dict[str, Any]]


class Decision(BaseModel):
    reason: str | None = Field(None, max_length=500)


class LineEdit(BaseModel):
    quantity: int = Field(ge=0, le=10_000_000)
    reason: str = Field(min_length=1, max_length=500)


class Transition(BaseModel):
    po_id: int
    before: str = Field(alias="from")
    to: str


def _head_model(row: dict[str, Any]) -> PurchaseOrderHead:
    return PurchaseOrderHead(**{k: row[k] for k in PurchaseOrderHead.model_fields})


@router.get("", response_model=list[PurchaseOrderHead], responses=secured(422))
def list_orders(
    rt: RuntimeDep,
    principal: Annotated[Principal, require("orders:read")],
    plan_date: Annotated[date | None, Query()] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
) -> list[PurchaseOrderHead]:
    """Purchase orders of the caller's stores (optionally one plan date or status)."""
    heads = rt.orders.purchase_orders(plan_date)
    stores = principal.store_filter()
    if stores is not None:
        heads = heads.filter(pl.col("store_id").is_in(sorted(stores)))
    if status:
        heads = heads.filter(pl.col("status") == status)
    return [_head_model(r) for r in heads.iter_rows(named=True)]


@router.get("/{po_id}", response_model=PurchaseOrderDetail, responses=secured(404, 422))
def get_order(
    po_id: PoId, rt: RuntimeDep, principal: Annotated[Principal, require("orders:read")]
) -> PurchaseOrderDetail:
    """One PO: every line with its explanation, and the audit trail."""
    head = head_of(rt, po_id)
    authorize(principal, "orders:read", store=head["store_id"])
    lines = rt.orders.po_lines().filter(pl.col("po_id") == po_id)
    history = [
        {**h, "at": h["at"].isoformat() if hasattr(h["at"], "isoformat") else h["at"]}
        for h in rt.orders.history(po_id)
    ]
    return PurchaseOrderDetail(head=_head_model(head), lines=lines.to_dicts(), history=history)


@router.post(
    "/{po_id}/approve",
    response_model=Transition,
    responses=secured(404, 409, 422),
    openapi_extra=body_rule(),
)
async def approve(
    po_id: PoId,
    rt: RuntimeDep,
    principal: Annotated[Principal, require("orders:approve")],
    decision: Decision | None = None,
) -> Any:
    """Approve a suggested PO, if its value is within the caller's approval limit."""
    reason = decision.reason if decision else None
    return await run_in_threadpool(review.decide, rt, principal, po_id, "approved", reason)


@router.post(
    "/{po_id}/reject",
    response_model=Transition,
    responses=secured(404, 409, 422),
    openapi_extra=body_rule(),
)
async def reject(
    po_id: PoId,
    decision: Decision,
    rt: RuntimeDep,
    principal: Annotated[Principal, require("orders:approve")],
) -> Any:
    """Reject a PO; a reason is required."""
    return await run_in_threadpool(review.decide, rt, principal, po_id, "rejected", decision.reason)


@router.put(
    "/{po_id}/lines/{sku_id}",
    responses=secured(404, 409, 422),
    openapi_extra=body_rule(),
)
def edit_line(
    po_id: PoId,
    sku_id: Annotated[str, Path(max_length=64)],
    change: LineEdit,
    rt: RuntimeDep,
    principal: Annotated[Principal, require("orders:edit")],
) -> dict[str, Any]:
    """Change one line's quantity of a suggested PO (reason kept in the audit trail)."""
    return review.edit(rt, principal, po_id, sku_id, change.quantity, change.reason)
