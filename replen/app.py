"""The Replen HTTP service: POS, inventory and ERP feeds, monitoring, Prometheus metrics."""

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


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; one runtime and one velocity pusher per process."""
    settings = settings or Settings()
    runtime = Runtime(settings)
    replen.metrics.register_ledger(settings.db_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pusher = VelocityPusher(settings)
        app.state.runtime = runtime
        app.state.pusher = pusher
        pusher.start()
        try:
            yield
        finally:
            pusher.drain()
            pusher.stop()

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
    def push_latency(request: Request, reset: bool = False) -> dict[str, Any]:
        """Seconds from POS acknowledgement to online visibility of velocity (this process).

        Waits for pending pushes first; ``reset`` clears the samples after answering.
        """
        import numpy as np

        pusher = request.app.state.pusher
        pusher.drain()
        lat = np.array(pusher.latencies) if pusher.latencies else np.array([np.nan])
        if reset:
            pusher.latencies = []
        return {
            "samples": len(pusher.latencies),
            "pushed_rows": pusher.pushed,
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
