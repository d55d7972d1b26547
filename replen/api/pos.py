"""POS and inventory ingestion over HTTP: JSON arrays or NDJSON, durable before acknowledged."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel

from features.events import EVENT_SCHEMA
from jobs.refresh import IngestSummary, ingest_pos
from jobs.runtime import Runtime
from replen.api.deps import get_runtime
from replen.metrics import INGEST_SECONDS, POS_LINES

router = APIRouter(prefix="/v1", tags=["ingest"])

RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


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
    errors: list[LineError]


async def _body(request: Request, rt: Runtime) -> bytes:
    limit = rt.settings.max_request_bytes
    declared = request.headers.get("content-length")
    if declared and int(declared) > limit:
        raise HTTPException(
            413,
            f"body of {declared} bytes exceeds the limit of {limit} bytes "
            "(REPLEN_MAX_REQUEST_BYTES); send smaller batches",
        )
    body = await request.body()
    if len(body) > limit:
        raise HTTPException(413, f"body exceeds the limit of {limit} bytes; send smaller batches")
    return body


def parse_lines(body: bytes, content_type: str) -> tuple[pl.DataFrame, list[LineError]]:
    """JSON array or NDJSON → a frame of text columns (+ ``_json``, the line as received).

    An NDJSON line that is not a JSON object is a per-line error; a malformed JSON array
    is refused whole (HTTP 400), since its lines cannot be told apart.
    """
    text = body.decode("utf-8", errors="replace").strip()
    errors: list[LineError] = []
    rows: list[Any]
    raws: list[str]
    if text.startswith("[") and "ndjson" not in content_type:
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise HTTPException(
                400,
                f"body is not valid JSON: {exc}; send a JSON array of "
                "events or NDJSON (one event per line)",
            ) from None
        raws = [json.dumps(r) for r in rows]
    else:
        rows, raws = [], []
        for i, line in enumerate(text.splitlines()):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
                raws.append(line)
            except json.JSONDecodeError as exc:
                errors.append(
                    LineError(
                        line=i,
                        event_id=None,
                        rule="line.json",
                        field=None,
                        value=line[:200],
                        message=f"not JSON: {exc}",
                    )
                )
    good = [(r, raw) for r, raw in zip(rows, raws, strict=True) if isinstance(r, dict)]
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            errors.append(
                LineError(
                    line=i,
                    event_id=None,
                    rule="line.object",
                    field=None,
                    value=str(r)[:200],
                    message="each event must be an object",
                )
            )
    columns: dict[str, list[str | None]] = {c: [] for c in EVENT_SCHEMA}
    for r, _ in good:
        for c in EVENT_SCHEMA:
            v = r.get(c)
            columns[c].append(None if v is None else str(v))
    frame = pl.DataFrame(columns, schema={c: pl.String for c in EVENT_SCHEMA}).with_columns(
        pl.Series("_json", [raw for _, raw in good], dtype=pl.String)
    )
    return frame, errors


@router.post("/pos/events", response_model=BatchResponse)
async def post_pos_events(request: Request, rt: RuntimeDep) -> BatchResponse:
    """Ingest POS events; answers once they are durable in the lake.

    Send a JSON array or NDJSON (``Content-Type: application/x-ndjson``). Every line is
    counted: ``received = accepted + duplicates + rejected``; each rejected line is listed
    with the rule it broke and kept in quarantine.
    """
    started = time.perf_counter()
    body = await _body(request, rt)
    frame, parse_errors = parse_lines(body, request.headers.get("content-type", ""))
    summary = IngestSummary()
    errors = list(parse_errors)
    if frame.height:
        from starlette.concurrency import run_in_threadpool

        summary = await run_in_threadpool(_ingest, rt, frame)
        rejected = rt.lake.quarantine_of(summary.batch_ids)
        errors += [
            LineError(**{k: r[k] for k in LineError.model_fields})
            for r in rejected.iter_rows(named=True)
        ]
    received = summary.received + len(parse_errors)
    POS_LINES.labels("accepted").inc(summary.accepted)
    POS_LINES.labels("duplicate").inc(summary.duplicates)
    POS_LINES.labels("rejected").inc(summary.rejected + len(parse_errors))
    INGEST_SECONDS.observe(time.perf_counter() - started)
    return BatchResponse(
        received=received,
        accepted=summary.accepted,
        duplicates=summary.duplicates,
        rejected=summary.rejected + len(parse_errors),
        batch_id=summary.batch_ids[0] if summary.batch_ids else None,
        errors=errors,
    )


def _ingest(rt: Runtime, frame: pl.DataFrame) -> IngestSummary:
    return ingest_pos(rt, frame, push=False, chunk_rows=max(frame.height, 1))


class Snapshot(BaseModel):
    store_id: str
    sku_id: str
    as_of: str
    on_hand: float


@router.post("/inventory")
def post_inventory(snapshots: list[Snapshot], rt: RuntimeDep) -> dict[str, int]:
    """Stock snapshots (``as_of`` ISO-8601 with offset); all or nothing."""
    from features.inventory import validate_inventory

    frame = pl.DataFrame(
        [s.model_dump() for s in snapshots],
        schema={
            "store_id": pl.String,
            "sku_id": pl.String,
            "as_of": pl.String,
            "on_hand": pl.Float64,
        },
    )
    typed = validate_inventory(frame)  # InvalidInput → 422 problem+json naming the field
    return {"rows": rt.lake.append_inventory(typed)}
