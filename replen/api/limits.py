"""Body limits enforced while the body streams in, and the media types each route accepts.

An ASGI middleware in front of every route: it refuses a declared Content-Length over the
route's limit before reading anything, counts the bytes of every chunk as they arrive
(chunked bodies included) and answers 413 the moment the count passes the limit, so a
hostile body never sits whole in memory. A body whose Content-Type the route does not
accept is refused with 415 unread. Each route declares its rule in ``openapi_extra``
(:func:`body_rule`); a route without one gets the small limit and JSON only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.routing import compile_path

from replen.api.problems import (
    PROBLEM_MEDIA,
    MalformedBody,
    PayloadTooLarge,
    UnsupportedMediaType,
)

__all__ = ["FORM", "JSON", "NDJSON", "BodyLimits", "body_rule", "media_type"]

JSON = ("application/json",)
NDJSON = ("application/x-ndjson", "application/ndjson", "application/jsonl")
FORM = ("application/x-www-form-urlencoded",)
RULE_KEY = "x-replen-body"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def body_rule(size: str = "small", media: tuple[str, ...] = JSON) -> dict[str, Any]:
    """``openapi_extra`` declaring a route's body limit (``small`` or ``ingest``) and the
    media types it accepts (also shown in the OpenAPI schema)."""
    return {RULE_KEY: {"size": size, "media": list(media)}}


def media_type(content_type: str | None) -> tuple[str, str | None]:
    """(``type/subtype`` lowercased, charset or None)."""
    if not content_type:
        return "", None
    main, *params = content_type.split(";")
    charset = None
    for p in params:
        key, _, value = p.strip().partition("=")
        if key.lower() == "charset":
            charset = value.strip().strip('"').lower()
    return main.strip().lower(), charset


class _TooLarge(Exception):
    pass


class BodyLimits:
    """ASGI middleware: per-route byte limits counted while streaming, and media types."""

    def __init__(self, app: Callable[..., Awaitable[None]], *, sizes: dict[str, int]) -> None:
        self.app = app
        self.sizes = sizes  # "small" / "ingest" → bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = self._rule(scope)
        limit = self.sizes[rule.get("size", "small")]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length")
        has_body = "transfer-encoding" in headers or (declared not in (None, "0"))
        if declared is not None:
            if not declared.isdigit():
                await _problem(
                    send,
                    MalformedBody("Content-Length is not a number", rule="body.length"),
                    scope,
                )
                return
            if int(declared) > limit:
                await _problem(send, _too_large(limit, f"{declared} bytes declared"), scope)
                return
        if has_body and scope["method"] in ("POST", "PUT", "PATCH"):
            kind, charset = media_type(headers.get("content-type"))
            accepted = rule.get("media", list(JSON))
            if kind not in accepted or (charset is not None and charset not in ("utf-8", "utf8")):
                exc = UnsupportedMediaType(
                    f"Content-Type {headers.get('content-type')!r} is not accepted here; send "
                    f"{' or '.join(accepted)} (UTF-8)",
                    field="content-type",
                    value=headers.get("content-type"),
                    rule="content_type.accepted",
                )
                await _problem(send, exc, scope)
                return

        received = 0
        exceeded = False
        replied = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal replied
            if exceeded:  # whatever the app makes of the interruption, the answer is 413
                if not replied:
                    replied = True
                    await _problem(send, _too_large(limit, "the body streamed past it"), scope)
                return
            if message["type"] == "http.response.start":
                replied = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _TooLarge:
            pass
        except Exception:
            if not exceeded:
                raise
        if exceeded and not replied:
            await _problem(send, _too_large(limit, "the body streamed past it"), scope)

    def _rule(self, scope: Scope) -> dict[str, Any]:
        app: Any = scope.get("app")
        table = getattr(getattr(app, "state", None), "body_rules", None)
        if table is None:
            table = app.state.body_rules = body_rules(app)
        path, method = scope["path"], scope["method"]
        for regex, methods, rule in table:
            if method in methods and regex.match(path):
                return rule
        return {}


def body_rules(app: Any) -> list[tuple[re.Pattern[str], set[str], dict[str, Any]]]:
    """(path regex, methods, rule) of every route, from their ``openapi_extra``."""
    from fastapi.routing import iter_route_contexts

    table = []
    for route in iter_route_contexts(app.routes):
        extra = getattr(route, "openapi_extra", None) or {}
        if route.path and RULE_KEY in extra:
            regex, _, _ = compile_path(route.path)
            table.append((regex, set(route.methods or ()), extra[RULE_KEY]))
    return table


def _too_large(limit: int, what: str) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the body is over this route's limit of {limit:,} bytes ({what}); send smaller batches",
        field="body",
        rule="body.size",
        hint="REPLEN_MAX_REQUEST_BYTES sets the ingest limit, "
        "REPLEN_MAX_SMALL_REQUEST_BYTES the others",
    )


async def _problem(send: Send, exc: Any, scope: Scope) -> None:
    body = json.dumps(exc.problem(instance=scope.get("path"))).encode()
    await send(
        {
            "type": "http.response.start",
            "status": exc.http_status(),
            "headers": [
                (b"content-type", PROBLEM_MEDIA.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
