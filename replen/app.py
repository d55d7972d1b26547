"""The Replen HTTP service: POS, inventory and ERP feeds, the planner API and page,
corrections, monitoring, Prometheus metrics; every route behind the one access policy."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from polars.exceptions import PolarsError
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

import replen.metrics  # chooses the Prometheus value backend before feast loads
from jobs.runtime import Runtime
from kernel.errors import ReplenError, Unauthorized, storage_error
from replen.api.limits import BodyLimits
from replen.api.problems import PROBLEM_MEDIA, RateLimited
from replen.api.pusher import VelocityPusher
from replen.api.security import AccessControl, check_routes, public, require, secured
from replen.settings import Settings

__all__ = ["create_app"]

log = logging.getLogger("replen.app")


class Health(BaseModel):
    status: str


class PushLatency(BaseModel):
    drained: bool
    samples: int
    samples_total: int
    pushed_rows: int
    errors: list[Any]
    p50: float | None
    p99: float | None
    max: float | None


def create_app(settings: Settings | None = None, *, pusher: bool = True) -> FastAPI:
    """Build the app: one runtime and one access control per process, and (``pusher``) the
    velocity pusher process. With several API workers, one pusher serves them all: see
    `replen serve`."""
    settings = settings or Settings()
    runtime = Runtime(settings)
    replen.metrics.register_ledger(settings.db_url)
    access = build_access(runtime)
    replen.metrics.register_planner(runtime)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.runtime = runtime
        app.state.pusher = VelocityPusher(settings) if pusher else None
        import scipy.special  # noqa: F401  (the worklist's first answer should not wait for it)

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
        description="Every route but /healthz, the token endpoint and the JWKS needs a bearer "
        "token from `POST /v1/oauth/token`; what it may do follows its roles and stores.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served from local files by replen.web (no CDN)
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.access = access
    app.add_middleware(
        BodyLimits,
        sizes={"small": settings.max_small_request_bytes, "ingest": settings.max_request_bytes},
    )
    from replen.api.corrections import router as corrections_router
    from replen.api.feeds import router as feeds_router
    from replen.api.oauth import router as oauth_router
    from replen.api.planner import router as planner_router
    from replen.api.pos import router as pos_router
    from replen.web import router as web_router

    routers = (oauth_router, pos_router, feeds_router, planner_router, corrections_router)
    for router in (*routers, web_router):
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
    def push_latency(
        request: Request,
        since: Annotated[int, Query(ge=0)] = 0,
        wait: Annotated[float, Query(ge=0, le=600)] = 60.0,
    ) -> dict[str, Any]:
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
        lat = np.array(fresh)
        return {
            "drained": drained,
            "samples": len(fresh),
            "samples_total": total,
            "pushed_rows": int(stats.get("pushed_rows", 0)),
            "errors": stats.get("errors", []),
            "p50": float(np.percentile(lat, 50)) if fresh else None,
            "p99": float(np.percentile(lat, 99)) if fresh else None,
            "max": float(np.max(lat)) if fresh else None,
        }

    install_problem_handlers(app)
    app.state.policies = check_routes(app)
    return app


def build_access(runtime: Runtime) -> AccessControl:
    from replen.auth.store import IdentityStore
    from replen.auth.tokens import TokenService

    s = runtime.settings
    tokens = TokenService(
        IdentityStore(runtime.engine),
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
    """The HTTP error edge: every failure is an ``application/problem+json`` document with
    the right status — domain errors by their kind, request validation 422, unknown routes
    404, wrong methods 405, a full or read-only disk 507/503 — and a bug a plain 500 whose
    traceback goes to the log, never to the client."""

    def problem(request: Request, doc: dict[str, Any], headers: Any = None) -> JSONResponse:
        doc.setdefault("instance", request.url.path)
        return JSONResponse(
            doc, status_code=doc["status"], media_type=PROBLEM_MEDIA, headers=headers
        )

    @app.exception_handler(ReplenError)
    async def replen_error(request: Request, exc: ReplenError) -> JSONResponse:
        headers: dict[str, str] = {}
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, Unauthorized):
            headers["WWW-Authenticate"] = 'Bearer realm="replen"'
        return problem(request, exc.problem(), headers=headers or None)

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
        # The field as the client named it (without FastAPI's body/query/path prefix).
        loc = exc.errors()[0].get("loc", ()) if exc.errors() else ()
        field = ".".join(str(p) for p in loc if p not in ("body", "query", "path")) or None
        doc: dict[str, Any] = {
            "type": "/problems/invalid-input",
            "title": "Invalid input",
            "status": 422,
            "detail": f"{first['field']}: {first['message']}",
            "rule": f"{field or 'request'}.{first.get('rule') or 'invalid'}",
            "errors": errors,
        }
        if field:
            doc["field"] = field
        return problem(request, doc)

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
