"""ERP and store-system feeds over HTTP: stock positions, goods receipts, acknowledgements, item
and store names. JSON arrays or NDJSON read by the hostile-input-proof parser; each row
checked alone, durable before answered; every route behind its permission."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Depends, Request
from fastapi.types import DecoratedCallable
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from features.feeds import FEEDS, REJECT_COLUMNS
from jobs.erp import ingest_feed
from jobs.runtime import Runtime
from replen.api.bodies import ParsedBody, parse_body
from replen.api.deps import get_runtime
from replen.api.limits import JSON, NDJSON, body_rule, media_type
from replen.api.pos import read_body
from replen.api.security import require, secured
from replen.auth.policy import Principal

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["erp"])

RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


class RowError(BaseModel):
    line: int | None
    rule: str
    field: str | None
    value: str | None
    message: str


class FeedResponse(BaseModel):
    """``received = accepted + updated + duplicates + rejected``; every rejected row is
    listed with its rule (and kept: ``replen quarantine list --feed …``)."""

    received: int
    accepted: int
    updated: int
    duplicates: int
    rejected: int
    batch_id: str
    rejected_by_rule: dict[str, int] = {}
    errors: list[RowError]
    errors_omitted: int = 0
    notes: list[str] = []
    # Rejected rows kept from an earlier delivery of the same row: listed in ``errors``
    # like the others, not kept twice.
    already_quarantined: int = 0


def _request_body(kind: str) -> dict[str, Any]:
    item = {
        "type": "object",
        "properties": {c.name: {"type": ["string", "number", "null"]} for c in FEEDS[kind].columns},
    }
    content: dict[str, Any] = {"application/json": {"schema": {"type": "array", "items": item}}}
    for media in NDJSON:
        content[media] = {"schema": {"type": "string", "description": "one object a line"}}
    return {"requestBody": {"required": True, "content": content}}


def _post_feed(path: str, kind: str) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """The route of a feed: POST ``path``, a body of ``kind`` rows, a :class:`FeedResponse`."""
    return router.post(
        path,
        response_model=FeedResponse,
        responses=secured(400, 422),
        openapi_extra={**body_rule("ingest", JSON + NDJSON), **_request_body(kind)},
    )


def rows_frame(parsed: ParsedBody) -> pl.DataFrame:
    """The JSON objects of a body as text columns, with ``_line`` (1-based element or line
    number) and ``_json`` (the row as received)."""
    columns = sorted({k for r in parsed.rows for k in r})
    data: dict[str, list[Any]] = {c: [] for c in columns}
    for r in parsed.rows:
        for c in columns:
            v = r.get(c)
            data[c].append(None if v is None else v if isinstance(v, str) else json.dumps(v))
    data["_line"] = [i + 1 for i in parsed.lines]
    data["_json"] = list(parsed.raws)
    schema = {c: pl.String for c in columns} | {"_line": pl.Int64, "_json": pl.String}
    return pl.DataFrame(data, schema=schema)


def _unparsed(parsed: ParsedBody) -> pl.DataFrame | None:
    """Lines that are not JSON objects, as feed rejects (kept in the quarantine)."""
    if not parsed.rejects:
        return None
    rows = [
        {
            "line": r["line"] + 1,
            "key": None,
            "rule": r["rule"],
            "field": r["field"],
            "value": r["value"],
            "message": r["message"],
            "payload": r["payload"],
        }
        for r in parsed.rejects
    ]
    return pl.DataFrame(rows, schema=REJECT_COLUMNS)


async def _ingest(kind: str, request: Request, rt: Runtime, principal: Principal) -> FeedResponse:
    s = rt.settings
    media, _ = media_type(request.headers.get("content-type"))
    body = await read_body(request)
    parsed = await run_in_threadpool(parse_body, body, media in NDJSON, s.max_lines_per_request)
    del body
    scoped = kind in ("stock", "receipts")  # rows of a store: only the sender's stores
    report = await run_in_threadpool(
        lambda: ingest_feed(
            rt,
            kind,
            rows_frame(parsed),
            source=f"POST {request.url.path}",
            actor=principal.actor,
            allowed_stores=principal.store_filter() if scoped else None,
            unparsed=_unparsed(parsed),
        )
    )
    rejected = report.rejected_lines
    if rejected is None:
        rejected = pl.DataFrame(schema=REJECT_COLUMNS)
    shown = rejected.head(s.max_response_errors)
    return FeedResponse(
        received=report.received,
        accepted=report.accepted,
        updated=report.updated,
        duplicates=report.duplicates,
        rejected=report.rejected,
        batch_id=report.batch_id,
        rejected_by_rule=report.rejected_by_rule,
        errors=[
            RowError(**{k: r[k] for k in RowError.model_fields})
            for r in shown.iter_rows(named=True)
        ],
        errors_omitted=rejected.height - shown.height,
        notes=report.notes,
        already_quarantined=report.already_quarantined,
    )


@_post_feed("/stock-positions", "stock")
async def post_stock_positions(
    request: Request, rt: RuntimeDep, principal: Annotated[Principal, require("stock:write")]
) -> FeedResponse:
    """Stock positions of your stores: ``store_id, sku_id, as_of`` (ISO-8601 with offset),
    ``on_hand``; optional ``on_order, in_transit, backorders``. The plan uses each
    store×SKU's latest. A row for another store is rejected (``store_id.scope``)."""
    return await _ingest("stock", request, rt, principal)


@_post_feed("/receipts", "receipts")
async def post_receipts(
    request: Request, rt: RuntimeDep, principal: Annotated[Principal, require("receipts:write")]
) -> FeedResponse:
    """Goods receipts of your stores: ``receipt_id``, ``po_id`` or ``erp_po_number``,
    ``sku_id``, ``quantity``, ``received_at``, ``store_id`` (required unless you may send
    for every store; another store's row is rejected: ``store_id.scope``)."""
    return await _ingest("receipts", request, rt, principal)


@_post_feed("/acknowledgements", "acks")
async def post_acknowledgements(
    request: Request, rt: RuntimeDep, principal: Annotated[Principal, require("erp:ack")]
) -> FeedResponse:
    """PO acknowledgements from the ERP: ``po_id`` or ``erp_po_number``; optional
    ``sku_id``, ``confirmed_quantity``, ``confirmed_delivery``, ``acknowledged_at``."""
    return await _ingest("acks", request, rt, principal)


@_post_feed("/items", "items")
async def post_items(
    request: Request, rt: RuntimeDep, principal: Annotated[Principal, require("master:write")]
) -> FeedResponse:
    """Item names: ``sku_id, name``; optional ``description, unit, department, category``."""
    return await _ingest("items", request, rt, principal)


@_post_feed("/stores", "stores")
async def post_stores(
    request: Request, rt: RuntimeDep, principal: Annotated[Principal, require("master:write")]
) -> FeedResponse:
    """Store names: ``store_id, name``; optional ``region, timezone``."""
    return await _ingest("stores", request, rt, principal)
