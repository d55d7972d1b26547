"""FastAPI dependencies: the runtime and the velocity pusher live on the app state."""

from __future__ import annotations

from fastapi import Request

from jobs.runtime import Runtime
from replen.api.pusher import VelocityPusher


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_pusher(request: Request) -> VelocityPusher:
    pusher: VelocityPusher = request.app.state.pusher
    return pusher
