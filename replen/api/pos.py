"""POS and inventory ingestion over HTTP: JSON arrays or NDJSON, durable before acknowledged."""

from __future__ import annotations

import time
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from features.events import EVENT_SCHEMA, REJECT_SCHEMA
from jobs.refresh import IngestSummary, ingest_pos
from jobs.runtime import Runtime
from replen.api.bodies import ParsedBody, parse_body
from replen.api.deps import get_runtime
from replen.api.limits import JSON, NDJSON, body_rule, media_type
from replen.api.security import require, secured
from replen.auth.policy import Principal
from replen.metrics import INGEST_SECONDS, POS_LINES

router = APIRouter(prefix="/v1", tags=["ingest"])

RuntimeDep = Annotated[Runtime, Depends(get_runtime)]

_EVENT_EXAMPLE = {
    "event_id": "S001-R2-000123-1",
    "store_id": "S001",
    "sku_id": "4711",
    "sold_at": "2026-11-30T10:15:00+01:00",
    "quantity": 2,
    "unit_price": 1.99,
}
_LINE_SCHEMA = {
    "type": "object",
    "properties": {
        "event_id": {"type": "string", "maxLength": 64},
        "store_id": {"type": "string", "maxLength": 64},
        "sku_id": {"type": "string", "maxLength": 64},
        "sold_at": {"type": "string", "format": "date-time"},
        "quantity": {"type": "number"},
        "unit_price": {"type": "number"},
        "promo_id": {"type": ["string", "null"]},
        "register_id": {"type": ["string", "null"]},
        "currency": {"type": ["string", "null"]},
    },
    "example": _EVENT_EXAMPLE,
}
_SNAPSHOT_SCHEMA = {
    "type": "object",
    "required": ["store_id", "sku_id", "as_of", "on_hand"],
    "properties": {
        "store_id": {"type": "string"},
        "sku_id": {"type": "string"},
        "as_of": {"type": "string", "format": "date-time"},
        "on_hand": {"type": "number", "minimum": 0},
    },
}


def _request_body(item: dict[str, Any], ndjson: bool) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": {"type": "array", "items": item}}}
    if ndjson:
        for media in NDJSON:
            content[media] = {"schema": {"type": "string", "description": "one object a line"}}
    return {"requestBody": {"required": True, "content": content}}


class LineError(BaseModel):
    line: int | None
    event_id: str | None
    rule: str
    field: str | None
    value: str | None
    message: str


class BatchResponse(BaseModel):
    received: int
    accepted: int
    duplicates: int
    rejected: int
    batch_id: str | None
    rejected_by_rule: dict[str, int]
    errors: list[LineError]
    errors_omitted: int
    # Rejected lines that were in the quarantine already (sent before): listed in
    # ``errors`` like the others, not recorded twice.
    already_quarantined: int = 0


async def read_body(request: Request) -> bytearray:
    """The body, chunk by chunk (the BodyLimits middleware stops it at the route's limit)."""
    buffer = bytearray()
    async for chunk in request.stream():
        buffer += chunk
    return buffer


def _frame(parsed: ParsedBody) -> pl.DataFrame:
    columns: dict[str, list[str | None]] = {c: [] for c in EVENT_SCHEMA}
    for row in parsed.rows:
        for c in EVENT_SCHEMA:
            v = row.get(c)
            columns[c].append(None if v is None else str(v))
    return pl.DataFrame(columns, schema={c: pl.String for c in EVENT_SCHEMA}).with_columns(
        pl.Series("_json", parsed.raws, dtype=pl.String),
        pl.Series("_line", parsed.lines, dtype=pl.UInt32),
    )


@router.post(
    "/pos/events",
    response_model=BatchResponse,
    responses=secured(400, 422),
    openapi_extra={**body_rule("ingest", JSON + NDJSON), **_request_body(_LINE_SCHEMA, True)},
)
async def post_pos_events(
    request: Request,
    rt: RuntimeDep,
    principal: Annotated[Principal, require("pos:write")],
) -> BatchResponse:
    """Ingest POS events for the caller's stores; answers once they are durable in the lake.

    Send a JSON array or NDJSON (``Content-Type: application/x-ndjson``). Every line is
    counted: ``received = accepted + duplicates + rejected``; each rejected line (a line
    that is not JSON included, and a line for a store outside the caller's scope:
    ``store_id.scope``) is kept in quarantine and listed with its rule, up to
    ``REPLEN_MAX_RESPONSE_ERRORS`` of them (``rejected_by_rule`` counts them all). A
    rejected line sent before is listed again but kept once: ``already_quarantined``
    counts those.
    """
    started = time.perf_counter()
    s = rt.settings
    kind, _ = media_type(request.headers.get("content-type"))
    body = await read_body(request)
    parsed = await run_in_threadpool(parse_body, body, kind in NDJSON, s.max_lines_per_request)
    del body
    summary = await run_in_threadpool(_ingest, rt, parsed, principal)
    rejected = summary.rejected_frame()
    shown = rejected.head(s.max_response_errors)
    errors = [
        LineError(**{k: r[k] for k in LineError.model_fields}) for r in shown.iter_rows(named=True)
    ]
    POS_LINES.labels("accepted").inc(summary.accepted)
    POS_LINES.labels("duplicate").inc(summary.duplicates)
    POS_LINES.labels("rejected").inc(summary.rejected)
    INGEST_SECONDS.observe(time.perf_counter() - started)
    return BatchResponse(
        received=summary.received,
        accepted=summary.accepted,
        duplicates=summary.duplicates,
        rejected=summary.rejected,
        batch_id=summary.batch_ids[0] if summary.batch_ids else None,
        rejected_by_rule=summary.rejected_by_rule,
        errors=errors,
        errors_omitted=rejected.height - len(errors),
        already_quarantined=summary.already_quarantined,
    )


def _ingest(rt: Runtime, parsed: ParsedBody, principal: Principal) -> IngestSummary:
    frame = _frame(parsed)
    unparsed = pl.DataFrame(parsed.rejects, schema=REJECT_SCHEMA) if parsed.rejects else None
    if not frame.height and unparsed is None:
        return IngestSummary()
    return ingest_pos(
        rt,
        frame,
        push=False,
        chunk_rows=max(frame.height, 1),
        live=True,
        allowed_stores=principal.store_filter(),
        unparsed=unparsed,
        actor=principal.actor,
        keep_rejected=True,
    )


class InventoryResponse(BaseModel):
    rows: int


@router.post(
    "/inventory",
    response_model=InventoryResponse,
    responses=secured(400, 422),
    openapi_extra={**body_rule("ingest", JSON), **_request_body(_SNAPSHOT_SCHEMA, False)},
)
async def post_inventory(
    request: Request, rt: RuntimeDep, principal: Annotated[Principal, require("stock:write")]
) -> InventoryResponse:
    """Stock snapshots (``as_of`` ISO-8601 with offset) for the caller's stores; all or
    nothing: the first bad row is named with its field, value and rule."""
    body = await read_body(request)
    parsed = await run_in_threadpool(parse_body, body, False, rt.settings.max_lines_per_request)
    del body
    rows = await run_in_threadpool(_append_inventory, rt, parsed, principal)
    return InventoryResponse(rows=rows)


def _append_inventory(rt: Runtime, parsed: ParsedBody, principal: Principal) -> int:
    from datetime import timedelta

    from features.inventory import validate_inventory
    from kernel.errors import InvalidInput

    if parsed.rejects:
        bad = parsed.rejects[0]
        raise InvalidInput(
            f"row {bad['line']}: {bad['message']}", rule=bad["rule"], line=bad["line"] + 1
        )
    need = ["store_id", "sku_id", "as_of", "on_hand"]
    frame = pl.DataFrame(
        {c: [None if r.get(c) is None else str(r.get(c)) for r in parsed.rows] for c in need},
        schema={c: pl.String for c in need},
    )
    s = rt.settings
    typed = validate_inventory(
        frame,
        max_age=timedelta(days=s.pos_max_age_days),
        max_future_skew=timedelta(seconds=s.max_future_skew_seconds),
        max_on_hand=s.max_on_hand,
        allowed_stores=principal.store_filter(),
    )
    return rt.lake.append_inventory(typed) if typed.height else 0
