"""FastAPI dependencies: the runtime lives on the app state."""

from __future__ import annotations

from fastapi import Request

from jobs.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime
