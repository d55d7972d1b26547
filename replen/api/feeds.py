"""ERP and store-system feeds over HTTP: stock positions, goods receipts, acknowledgements, item
and store names. JSON arrays or NDJSON; each row checked alone, durable before answered."""

from __future__ import annotations

import json
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from jobs.erp import ingest_feed
from jobs.runtime import Runtime
from replen.api.deps import get_runtime
from replen.api.pos import _body

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
    errors: list[RowError]
    notes: list[str] = []


def parse_rows(body: bytes, content_type: str) -> pl.DataFrame:
    """A JSON array or NDJSON → text columns, with ``_line`` (1-based element or line
    number) and ``_json`` (the row as received)."""
    text = body.decode("utf-8", errors="replace").strip()
    numbered: list[tuple[int, Any, str]] = []
    if text.startswith("[") and "ndjson" not in content_type:
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise HTTPException(400, f"body is not valid JSON: {exc}") from None
        numbered = [(i + 1, r, json.dumps(r)) for i, r in enumerate(rows)]
    else:
        for i, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    numbered.append((i, json.loads(line), line))
                except json.JSONDecodeError as exc:
                    raise HTTPException(400, f"line {i} is not JSON: {exc}") from None
    bad = next((n for n, r, _ in numbered if not isinstance(r, dict)), None)
    if bad is not None:
        raise HTTPException(400, f"row {bad} is not a JSON object")
    columns = sorted({k for _, r, _ in numbered for k in r})
    data: dict[str, list[Any]] = {c: [] for c in columns}
    for _, r, _ in numbered:
        for c in columns:
            v = r.get(c)
            data[c].append(None if v is None else v if isinstance(v, str) else json.dumps(v))
    return pl.DataFrame(data, schema={c: pl.String for c in columns}).with_columns(
        pl.Series("_line", [n for n, _, _ in numbered], dtype=pl.Int64),
        pl.Series("_json", [raw for _, _, raw in numbered], dtype=pl.String),
    )


def stores_of(rows: pl.DataFrame) -> set[str]:
    """The stores a request touches, one per row (for a per-store access check)."""
    return set(rows["store_id"].drop_nulls().to_list()) if "store_id" in rows.columns else set()


async def _ingest(kind: str, request: Request, rt: Runtime) -> FeedResponse:
    body = await _body(request, rt)
    rows = await run_in_threadpool(parse_rows, body, request.headers.get("content-type", ""))
    report = await run_in_threadpool(
        ingest_feed, rt, kind, rows, source=f"POST {request.url.path}", actor="erp-api"
    )
    rejected = rt.positions.rejects(kind).filter(pl.col("batch_id") == report.batch_id)
    return FeedResponse(
        received=report.received,
        accepted=report.accepted,
        updated=report.updated,
        duplicates=report.duplicates,
        rejected=report.rejected,
        batch_id=report.batch_id,
        errors=[
            RowError(**{k: r[k] for k in RowError.model_fields})
            for r in rejected.iter_rows(named=True)
        ],
        notes=report.notes,
    )


@router.post("/stock-positions", response_model=FeedResponse)
async def post_stock_positions(request: Request, rt: RuntimeDep) -> FeedResponse:
    """Stock positions: ``store_id, sku_id, as_of`` (ISO-8601 with offset), ``on_hand``;
    optional ``on_order, in_transit, backorders``. The plan uses each store×SKU's latest."""
    return await _ingest("stock", request, rt)


@router.post("/receipts", response_model=FeedResponse)
async def post_receipts(request: Request, rt: RuntimeDep) -> FeedResponse:
    """Goods receipts: ``receipt_id``, ``po_id`` or ``erp_po_number``, ``sku_id``,
    ``quantity``, ``received_at``; optional ``store_id``."""
    return await _ingest("receipts", request, rt)


@router.post("/acknowledgements", response_model=FeedResponse)
async def post_acknowledgements(request: Request, rt: RuntimeDep) -> FeedResponse:
    """PO acknowledgements: ``po_id`` or ``erp_po_number``; optional ``sku_id``,
    ``confirmed_quantity``, ``confirmed_delivery``, ``acknowledged_at``."""
    return await _ingest("acks", request, rt)


@router.post("/items", response_model=FeedResponse)
async def post_items(request: Request, rt: RuntimeDep) -> FeedResponse:
    """Item names: ``sku_id, name``; optional ``description, unit, department, category``."""
    return await _ingest("items", request, rt)


@router.post("/stores", response_model=FeedResponse)
async def post_stores(request: Request, rt: RuntimeDep) -> FeedResponse:
    """Store names: ``store_id, name``; optional ``region, timezone``."""
    return await _ingest("stores", request, rt)
