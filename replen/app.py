"""The Replen HTTP service: POS, inventory and ERP feeds, monitoring, Prometheus metrics."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from polars.exceptions import PolarsError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

import replen.metrics  # chooses the Prometheus value backend before feast loads
from jobs.runtime import Runtime
from kernel.errors import ReplenError, storage_error
from replen.api.pusher import VelocityPusher
from replen.settings import Settings

__all__ = ["create_app"]

log = logging.getLogger("replen.app")
PROBLEM = "application/problem+json"


def create_app(settings: Settings | None = None, *, pusher: bool = True) -> FastAPI:
    """Build the app: one runtime per process, and (``pusher``) the velocity pusher
    process. With several API workers, one pusher serves them all: see `replen serve`."""
    settings = settings or Settings()
    runtime = Runtime(settings)
    replen.metrics.register_ledger(settings.db_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.runtime = runtime
        app.state.pusher = VelocityPusher(settings) if pusher else None
        if app.state.pusher is not None:
            app.state.pusher.start()
        try:
            yield
        finally:
            if app.state.pusher is not None:
                app.state.pusher.stop()

    app = FastAPI(
        title="Replen",
        summary="Demand forecasting and auto-replenishment for retailers.",
        version="0.1.0",
        lifespan=lifespan,
    )
    from replen.api.feeds import router as feeds_router
    from replen.api.pos import router as pos_router

    app.include_router(pos_router)
    app.include_router(feeds_router)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", tags=["ops"])
    def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/monitor", tags=["ops"])
    def monitor(request: Request) -> dict[str, Any]:
        """Freshness per store and the reject ratio; updates the Prometheus gauges."""
        from jobs.monitor import run_monitor

        return run_monitor(request.app.state.runtime, record=False).to_dict()

    @app.get("/v1/ops/push-latency", tags=["ops"])
    def push_latency(request: Request, since: int = 0, wait: float = 60.0) -> dict[str, Any]:
        """Seconds from a POS batch's commit (its acknowledgement) to its velocity being
        online, as the velocity pusher measured them.

        Waits up to ``wait`` seconds for the batches committed so far to be pushed; counts
        only the samples after the first ``since`` (pass ``samples_total`` of an earlier
        answer to measure an interval).
        """
        import numpy as np

        from jobs.velocity import read_stats, wait_pushed

        rt = request.app.state.runtime
        drained = wait_pushed(rt, wait)
        stats = read_stats(rt)
        total = int(stats.get("samples", 0))
        recent: list[float] = stats.get("latencies", [])
        fresh = recent[-(total - since) :] if total > since else []
        lat = np.array(fresh) if fresh else np.array([np.nan])
        return {
            "drained": drained,
            "samples": len(fresh),
            "samples_total": total,
            "pushed_rows": int(stats.get("pushed_rows", 0)),
            "errors": stats.get("errors", []),
            "p50": float(np.nanpercentile(lat, 50)),
            "p99": float(np.nanpercentile(lat, 99)),
            "max": float(np.nanmax(lat)),
        }

    _map_errors(app)
    return app


def _map_errors(app: FastAPI) -> None:
    """The HTTP error edge: every failure is an ``application/problem+json`` document with
    the right status — domain errors by their kind, request validation 422, unknown routes
    404, wrong methods 405, a full or read-only disk 507/503 — and a bug a plain 500 whose
    traceback goes to the log, never to the client."""

    def problem(request: Request, doc: dict[str, Any], headers: Any = None) -> JSONResponse:
        doc.setdefault("instance", request.url.path)
        return JSONResponse(doc, status_code=doc["status"], media_type=PROBLEM, headers=headers)

    @app.exception_handler(ReplenError)
    async def replen_error(request: Request, exc: ReplenError) -> JSONResponse:
        return problem(request, exc.problem())

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ())),
                "rule": e.get("type"),
                "message": e.get("msg"),
            }
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "?", "message": "invalid request"}
        return problem(
            request,
            {
                "type": "/problems/invalid-input",
                "title": "Invalid input",
                "status": 422,
                "detail": f"{first['field']}: {first['message']}",
                "errors": errors,
            },
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: "Not found", 405: "Method not allowed", 413: "Content too large"}
        return problem(
            request,
            {
                "type": f"/problems/http-{exc.status_code}",
                "title": titles.get(exc.status_code, "Request refused"),
                "status": exc.status_code,
                "detail": str(exc.detail),
            },
            headers=getattr(exc, "headers", None),
        )

    async def storage(request: Request, exc: Exception) -> JSONResponse:
        found = storage_error(exc)
        if found is None:
            raise exc  # not a storage failure: a bug, answered by the 500 handler below
        log.error("%s %s: %s", request.method, request.url.path, found)
        return problem(request, found.problem())

    for kind in (OSError, DBAPIError, PolarsError):  # where a full disk surfaces
        app.add_exception_handler(kind, storage)

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return problem(
            request,
            {
                "type": "/problems/internal",
                "title": "Internal error",
                "status": 500,
                "detail": "the server failed on this request; its log has the details",
            },
        )


def create_worker_app() -> FastAPI:
    """One of several API workers (`replen serve --workers N`): settings from the
    environment, no pusher of its own (the serve command runs one for all workers)."""
    return create_app(Settings(), pusher=False)
