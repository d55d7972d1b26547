"""The planner API: the PO queue by urgency, PO detail with explained lines, edit, approve,
reject and snooze (one or many), held POs, the store×SKU view, exceptions, job runs, data
health and forecast value added. Thin: the work is in ``jobs/review.py`` and friends."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from jobs.runtime import Runtime
from replen import review
from replen.api import planner_models as m
from replen.api.deps import get_runtime
from replen.api.limits import body_rule
from replen.api.security import require, secured
from replen.auth.policy import Principal

router = APIRouter(prefix="/v1", tags=["planner"])
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
PoId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Id = Annotated[str, Path(min_length=1, max_length=64)]
Reader = Annotated[Principal, require("orders:read")]
Editor = Annotated[Principal, require("orders:edit")]
Approver = Annotated[Principal, require("orders:approve")]
Monitor = Annotated[Principal, require("monitor:read")]
ItemReader = Annotated[Principal, require("orders:read", store_param="store_id")]
Many = Query(max_length=100)
READ = secured(404, 422)  # the problem documents a read may answer (401/403/413/415/429 too)
WRITE = secured(404, 409, 422)
BODY = body_rule()  # JSON, the small body limit


@router.get("/orders", response_model=m.QueuePage, responses=READ)
def list_orders(
    rt: RuntimeDep,
    principal: Reader,
    status: Annotated[list[str], Many] = ["suggested"],  # noqa: B006
    store_id: Annotated[list[str] | None, Many] = None,
    supplier_id: Annotated[list[str] | None, Many] = None,
    plan_date: date | None = None,
    exception: Annotated[list[str] | None, Many] = None,
    urgency: Annotated[list[str] | None, Many] = None,
    include_snoozed: bool = False,
    sort: Annotated[str, Query(max_length=32)] = "urgency",
    descending: bool = False,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """The PO queue of your stores: most urgent first — lines projected to run out before
    the next possible delivery, then least days of cover, then most value at risk.

    Repeat a filter to allow several values (``?supplier_id=A&supplier_id=B``);
    ``exception`` keeps POs with a line of that exception type; snoozed POs are hidden
    until their day unless ``include_snoozed``.
    """
    from jobs.review import QueueQuery, queue

    q = QueueQuery(
        status=status,
        store_id=store_id,
        supplier_id=supplier_id,
        plan_date=plan_date,
        exception=exception,
        urgency=urgency,
        include_snoozed=include_snoozed,
        sort=sort,
        descending=descending,
        page=page,
        page_size=page_size,
    )
    return queue(rt, q, principal.store_filter())


# Declared before /orders/{po_id}/…: Starlette takes the first path that matches.
def _bulk(rt: Runtime, principal: Principal, action: str, body: m.Bulk) -> dict[str, Any]:
    return review.bulk(rt, principal, action, body.po_ids, body.reason, body.until)


@router.post(
    "/orders/bulk/approve", response_model=m.BulkResult, responses=WRITE, openapi_extra=BODY
)
def bulk_approve(body: m.Bulk, rt: RuntimeDep, principal: Approver) -> dict[str, Any]:
    """Approve many POs; each succeeds or fails on its own (state, store, value limit)."""
    return _bulk(rt, principal, "approve", body)


@router.post(
    "/orders/bulk/reject", response_model=m.BulkResult, responses=WRITE, openapi_extra=BODY
)
def bulk_reject(body: m.Bulk, rt: RuntimeDep, principal: Approver) -> dict[str, Any]:
    """Reject many POs (a reason is required); each succeeds or fails on its own."""
    return _bulk(rt, principal, "reject", body)


@router.post(
    "/orders/bulk/snooze", response_model=m.BulkResult, responses=WRITE, openapi_extra=BODY
)
def bulk_snooze(body: m.Bulk, rt: RuntimeDep, principal: Editor) -> dict[str, Any]:
    """Put many suggested POs aside until ``until``; each succeeds or fails on its own."""
    return _bulk(rt, principal, "snooze", body)


@router.get("/orders/{po_id}", response_model=m.OrderDetail, responses=READ)
def get_order(po_id: PoId, rt: RuntimeDep, principal: Reader) -> dict[str, Any]:
    """One PO: every line with its explanation in steps and in words, its urgency, the
    quantity of the plan before, and the audit trail."""
    from jobs.review import po_detail

    return po_detail(rt, po_id, principal.store_filter())


@router.post(
    "/orders/{po_id}/approve", response_model=m.Transition, responses=WRITE, openapi_extra=BODY
)
def approve(
    po_id: PoId, rt: RuntimeDep, principal: Approver, decision: m.Decision | None = None
) -> dict[str, Any]:
    """Approve a suggested PO, if its value is within your approval limit."""
    return review.decide(rt, principal, po_id, "approved", decision.reason if decision else None)


@router.post(
    "/orders/{po_id}/reject", response_model=m.Transition, responses=WRITE, openapi_extra=BODY
)
def reject(
    po_id: PoId, decision: m.Rejection, rt: RuntimeDep, principal: Approver
) -> dict[str, Any]:
    """Reject a PO; a reason is required."""
    return review.decide(rt, principal, po_id, "rejected", decision.reason)


@router.post(
    "/orders/{po_id}/snooze", response_model=m.SnoozeResult, responses=WRITE, openapi_extra=BODY
)
def snooze(po_id: PoId, body: m.Snooze, rt: RuntimeDep, principal: Editor) -> dict[str, Any]:
    """Put a suggested PO aside until a day (it leaves the queue until then)."""
    return review.snooze(rt, principal, po_id, body.until, body.reason)


@router.put(
    "/orders/{po_id}/lines/{sku_id}",
    response_model=m.LineChange,
    responses=WRITE,
    openapi_extra=BODY,
)
def edit_line(
    po_id: PoId, sku_id: Id, change: m.LineEdit, rt: RuntimeDep, principal: Editor
) -> dict[str, Any]:
    """Change one line's quantity of a suggested PO; the reason is kept in the audit trail
    and the suggestion beside the new quantity (forecast value added)."""
    return review.edit(rt, principal, po_id, sku_id, change.quantity, change.reason)


@router.get("/held-orders", response_model=list[m.HeldOrder], responses=READ)
def held_orders(
    rt: RuntimeDep, principal: Reader, plan_date: date | None = None
) -> list[dict[str, Any]]:
    """POs the plan held back under their supplier's minimum order value, with their lines
    and what it takes to release them (newest plan that held any, or ``plan_date``)."""
    from jobs.review import held_orders as held

    return held(rt, plan_date, principal.store_filter())


@router.get("/items/{store_id}/{sku_id}", response_model=m.ItemView, responses=READ)
def item(
    store_id: Id,
    sku_id: Id,
    rt: RuntimeDep,
    principal: ItemReader,
    days: Annotated[int, Query(ge=7, le=366)] = 56,
) -> dict[str, Any]:
    """One store×SKU: recent sales and stockout days, demand class, the forecast (mean and
    band, model and version) and the stock projected until the next delivery."""
    from jobs.item_view import item_view

    return item_view(rt, store_id, sku_id, days=days, stores=principal.store_filter())


@router.get("/exceptions", response_model=list[m.ExceptionItem], responses=READ)
def exceptions(
    rt: RuntimeDep,
    principal: Reader,
    type: Annotated[list[str] | None, Many] = None,
    state: Annotated[str, Query(pattern="^(open|confirmed|snoozed|all)$")] = "open",
) -> list[dict[str, Any]]:
    """Exceptions to clear today: stockout risk, overstock, large change against the
    previous plan, held POs, stale plans and data problems (stale POS feed per store,
    missing stock position or rule, unknown store or SKU in POS)."""
    from jobs.exceptions import exceptions as listing

    return listing(rt, types=type, state=state, stores=principal.store_filter())


def _mark(rt: Runtime, principal: Principal, body: m.ExceptionMarks, state: str) -> dict[str, Any]:
    from jobs.exceptions import mark_exception
    from kernel.errors import InvalidInput, ReplenError

    if state == "snoozed" and body.until is None:
        raise InvalidInput("snoozing needs until=<day>", field="until", rule="until.required")
    done, errors = 0, []
    for key in dict.fromkeys(body.keys):
        try:
            mark_exception(
                rt,
                key,
                state=state,
                actor=principal.actor,
                until=body.until,
                note=body.note,
                stores=principal.store_filter(),
            )
            done += 1
        except ReplenError as exc:
            errors.append({"key": key, **exc.problem()})
    return {"marked": done, "errors": errors}


@router.post(
    "/exceptions/confirm", response_model=m.MarkResult, responses=WRITE, openapi_extra=BODY
)
def confirm_exceptions(body: m.ExceptionMarks, rt: RuntimeDep, principal: Editor) -> dict[str, Any]:
    """Confirm exceptions (seen, handled) for their day; they leave today's list."""
    return _mark(rt, principal, body, "confirmed")


@router.post("/exceptions/snooze", response_model=m.MarkResult, responses=WRITE, openapi_extra=BODY)
def snooze_exceptions(body: m.ExceptionMarks, rt: RuntimeDep, principal: Editor) -> dict[str, Any]:
    """Snooze exceptions until a day (inclusive); they come back after it if still true."""
    return _mark(rt, principal, body, "snoozed")


@router.get("/jobs/runs", response_model=list[m.JobRunRecord], responses=READ)
def job_runs(
    rt: RuntimeDep,
    principal: Monitor,
    job: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[dict[str, Any]]:
    """The newest job runs from the run ledger (refresh, retrain, replenish, monitor)."""
    from jobs.ledger import RunLedger

    return RunLedger(rt.orders.engine).history(job, limit)


@router.get("/data-health", response_model=m.DataHealth, responses=READ)
def data_health(rt: RuntimeDep, principal: Monitor) -> dict[str, Any]:
    """POS freshness per store, data problems by type, and what the plan rests on."""
    from jobs.exceptions import data_health as health

    return health(rt)


@router.get("/value-added", response_model=m.ValueAdded, responses=READ)
def value_added(rt: RuntimeDep, principal: Reader) -> dict[str, Any]:
    """Forecast value added: planners' changes against the suggestions, scored on what
    sold, per planner, store and model version (periods that have ended)."""
    from jobs.review import value_added_report

    return value_added_report(rt, principal.store_filter())


@router.get("/what-if", response_model=m.WhatIf, responses=READ)
def what_if(rt: RuntimeDep, principal: Reader) -> dict[str, Any]:
    """The latest what-if (`replen simulate`): current against candidate rules replayed on
    the retailer's own history — fill rate, stock value, POs, units, stockout days per
    supplier and overall; 404 before the first run."""
    from jobs.simulation import latest_what_if

    return latest_what_if(rt)
