"""The Replen HTTP service: POS and inventory ingestion, the planner API, corrections,
monitoring, Prometheus metrics; every route behind the one access policy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

import replen.metrics  # chooses the Prometheus value backend before feast loads
from jobs.runtime import Runtime
from kernel.errors import InvalidInput, ReplenError, Unauthorized
from replen.api.limits import BodyLimits
from replen.api.problems import PROBLEM_MEDIA, RateLimited
from replen.api.pusher import VelocityPusher
from replen.api.security import AccessControl, check_routes, public, require, secured
from replen.settings import Settings

__all__ = ["create_app"]


class Health(BaseModel):
    status: str


class PushLatency(BaseModel):
    samples: int
    pushed_rows: int
    p50: float | None
    p99: float | None
    max: float | None


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; one runtime, one velocity pusher and one access control per process."""
    settings = settings or Settings()
    runtime = Runtime(settings)
    replen.metrics.register_ledger(settings.db_url)
    access = build_access(runtime)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pusher = VelocityPusher(settings)
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
        description="Every route but /healthz, the token endpoint and the JWKS needs a bearer "
        "token from `POST /v1/oauth/token`; what it may do follows its roles and stores.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.access = access
    app.add_middleware(
        BodyLimits,
        sizes={"small": settings.max_small_request_bytes, "ingest": settings.max_request_bytes},
    )
    from replen.api.corrections import router as corrections_router
    from replen.api.oauth import router as oauth_router
    from replen.api.orders import router as orders_router
    from replen.api.pos import router as pos_router

    for router in (oauth_router, pos_router, orders_router, corrections_router):
        app.include_router(router)

    @app.get("/healthz", tags=["ops"], response_model=Health, dependencies=[public()])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # /metrics names stores and jobs: behind `metrics:read` unless the operator opts out
    # for a private network (Prometheus scrapes with its oauth2 client-credentials config).
    metrics_policy = public() if settings.metrics_public else require("metrics:read")

    @app.get(
        "/metrics",
        tags=["ops"],
        dependencies=[metrics_policy],
        responses={
            200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
            **secured(),
        },
        response_class=Response,
    )
    def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get(
        "/v1/monitor",
        tags=["ops"],
        dependencies=[require("monitor:read")],
        responses=secured(),
    )
    def monitor(request: Request) -> dict[str, Any]:
        """Freshness per store and the reject ratio; updates the Prometheus gauges."""
        from jobs.monitor import run_monitor

        return run_monitor(request.app.state.runtime, record=False).to_dict()

    @app.get(
        "/v1/ops/push-latency",
        tags=["ops"],
        response_model=PushLatency,
        dependencies=[require("ops:admin")],
        responses=secured(422),
    )
    def push_latency(request: Request, reset: Annotated[bool, Query()] = False) -> dict[str, Any]:
        """Seconds from POS acknowledgement to online visibility of velocity (this process).

        Waits for pending pushes first; ``reset`` clears the samples after answering.
        """
        import numpy as np

        pusher = request.app.state.pusher
        pusher.drain()
        lat = np.array(pusher.latencies) if pusher.latencies else None
        if reset:
            pusher.latencies = []
        return {
            "samples": 0 if lat is None else len(lat),
            "pushed_rows": pusher.pushed,
            "p50": None if lat is None else float(np.percentile(lat, 50)),
            "p99": None if lat is None else float(np.percentile(lat, 99)),
            "max": None if lat is None else float(np.max(lat)),
        }

    install_problem_handlers(app)
    app.state.policies = check_routes(app)
    return app


def build_access(runtime: Runtime) -> AccessControl:
    from replen.auth.store import IdentityStore
    from replen.auth.tokens import TokenService

    s = runtime.settings
    runtime.schema  # noqa: B018  (migrate before use)
    tokens = TokenService(
        IdentityStore(s.db_url),
        issuer=s.token_issuer,
        access_ttl=timedelta(minutes=s.access_token_minutes),
        refresh_ttl=timedelta(days=s.refresh_token_days),
    )
    return AccessControl(
        tokens,
        per_minute=s.rate_limit_per_minute,
        sign_in_failures_per_minute=s.sign_in_failures_per_minute,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Every error the service answers is an RFC 9457 problem document."""

    def problem(request: Request, exc: ReplenError) -> JSONResponse:
        headers: dict[str, str] = {}
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, Unauthorized):
            headers["WWW-Authenticate"] = 'Bearer realm="replen"'
        return JSONResponse(
            status_code=exc.http_status(),
            content=exc.problem(instance=request.url.path),
            media_type=PROBLEM_MEDIA,
            headers=headers,
        )

    @app.exception_handler(ReplenError)
    async def replen_error(request: Request, exc: ReplenError) -> JSONResponse:
        return problem(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        field = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
        error = InvalidInput(
            f"{field or 'request'}: {first.get('msg', 'invalid')}",
            field=field or None,
            rule=f"{field or 'request'}.{first.get('type', 'invalid')}",
        )
        response = problem(request, error)
        doc = error.problem(instance=request.url.path)
        doc["errors"] = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg"), "type": e.get("type")}
            for e in errors[:50]
        ]
        response.body = response.render(doc)
        response.headers["content-length"] = str(len(response.body))
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        doc = {
            "type": f"/problems/http-{exc.status_code}",
            "title": str(exc.detail) if exc.status_code < 500 else "Server error",
            "status": exc.status_code,
            "detail": str(exc.detail),
            "instance": request.url.path,
        }
        return JSONResponse(
            doc, status_code=exc.status_code, media_type=PROBLEM_MEDIA, headers=exc.headers
        )
