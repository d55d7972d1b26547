"""The Replen HTTP service: POS and inventory ingestion, monitoring, Prometheus metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

import replen.metrics  # chooses the Prometheus value backend before feast loads
from jobs.runtime import Runtime
from kernel.errors import ReplenError
from replen.api.pusher import VelocityPusher
from replen.settings import Settings

__all__ = ["create_app"]


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
    from replen.api.pos import router as pos_router

    app.include_router(pos_router)

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

    @app.exception_handler(ReplenError)
    async def replen_error(request: Request, exc: ReplenError) -> JSONResponse:
        return JSONResponse(
            status_code=exc.http_status(),
            content=exc.problem(instance=request.url.path),
            media_type="application/problem+json",
        )

    @app.exception_handler(ValueError)
    async def bad_value(request: Request, exc: ValueError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    return app


def create_worker_app() -> FastAPI:
    """One of several API workers (`replen serve --workers N`): settings from the
    environment, no pusher of its own (the serve command runs one for all workers)."""
    return create_app(Settings(), pusher=False)
