"""The Replen HTTP service: POS and inventory ingestion, the planner API and page,
monitoring, Prometheus metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

import replen.metrics  # chooses the Prometheus value backend before feast loads
from jobs.runtime import Runtime
from kernel.errors import InvalidInput, ReplenError
from replen.api.pusher import VelocityPusher
from replen.settings import Settings

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; one runtime and one velocity pusher per process."""
    settings = settings or Settings()
    runtime = Runtime(settings)
    replen.metrics.register_ledger(settings.db_url)
    replen.metrics.register_planner(runtime)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pusher = VelocityPusher(settings)
        import scipy.special  # noqa: F401  (the worklist's first answer should not wait for it)

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
        docs_url=None,  # served from local files by replen.web (no CDN)
        redoc_url=None,
    )
    app.state.runtime = runtime
    from replen.api.planner import router as planner_router
    from replen.api.pos import router as pos_router
    from replen.web import router as web_router

    for router in (pos_router, planner_router, web_router):
        app.include_router(router)

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

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x not in ("body", "query", "path"))
        problem = InvalidInput(
            f"{where or 'request'}: {first.get('msg', 'invalid')}",
            field=where or None,
            value=first.get("input") if not isinstance(first.get("input"), dict) else None,
            rule=str(first.get("type", "invalid")),
        )
        return JSONResponse(
            status_code=422,
            content=problem.problem(instance=request.url.path)
            | {"errors": jsonable_encoder(exc.errors())},
            media_type="application/problem+json",
        )

    @app.exception_handler(ValueError)
    async def bad_value(request: Request, exc: ValueError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    return app
