"""Corrections: an admin voids ingested POS events by id or by batch (audited, never an
edit of history); velocity is pushed again for the store×SKUs touched."""

from __future__ import annotations

from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from jobs.runtime import Runtime
from replen.api.deps import get_runtime
from replen.api.limits import body_rule
from replen.api.security import require, secured
from replen.auth.policy import Principal

router = APIRouter(prefix="/v1/corrections", tags=["corrections"])

_Id = Annotated[str, Field(min_length=1, max_length=64)]


class VoidRequest(BaseModel):
    event_ids: list[_Id] = Field(default_factory=list, max_length=100_000)
    batch_ids: list[_Id] = Field(default_factory=list, max_length=1_000)
    reason: str = Field(min_length=1, max_length=500)


class VoidResponse(BaseModel):
    batch_id: str
    actor: str
    reason: str
    voided: int
    already_void: int
    not_found: list[str]
    batches: list[str]
    keys: int


def void_events(
    rt: Runtime, principal: Principal, request: VoidRequest
) -> tuple[dict[str, Any], pl.DataFrame]:
    """Void as ``principal``; returns the record and the store×SKUs whose velocity changed."""
    report = rt.lake.void(
        actor=principal.actor,
        reason=request.reason,
        event_ids=request.event_ids,
        batch_ids=request.batch_ids,
    )
    from replen.auth.store import IdentityStore

    IdentityStore(rt.engine).record(
        principal.actor,
        "void",
        f"lake:{report.batch_id}",
        {"voided": report.voided, "batches": report.batches, "reason": report.reason},
    )
    keys = pl.DataFrame(report.keys, schema=["store_id", "sku_id"], orient="row")
    return report.to_dict(), keys


@router.post(
    "/voids",
    response_model=VoidResponse,
    responses=secured(404, 422),
    openapi_extra=body_rule(),
)
async def post_void(
    request: VoidRequest,
    rt: Annotated[Runtime, Depends(get_runtime)],
    principal: Annotated[Principal, require("corrections:write")],
) -> Any:
    """Void POS events by ``event_ids`` and/or whole ``batch_ids``, with a reason.

    The lake keeps them; every reader (history, features, the next plan) leaves them out.
    """
    record, _ = await run_in_threadpool(void_events, rt, principal, request)
    return record  # the velocity pusher sees the void batch and folds the lake again


@router.get("/voids", responses=secured())
def list_voids(
    rt: Annotated[Runtime, Depends(get_runtime)],
    principal: Annotated[Principal, require("corrections:write")],
) -> list[dict[str, Any]]:
    """Every correction: when, who, why, how many events."""
    return [
        {"batch_id": m["batch_id"], "committed_at": m["committed_at"], **m["summary"]}
        for m in rt.lake.voids()
    ]
