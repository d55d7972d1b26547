"""HTTP-only problems (413, 415, 429) and the problem+json responses every route documents."""

from __future__ import annotations

from typing import Any, ClassVar

from kernel.errors import InvalidInput, ReplenError

__all__ = [
    "PROBLEM_MEDIA",
    "MalformedBody",
    "PayloadTooLarge",
    "RateLimited",
    "UnsupportedMediaType",
    "problem_responses",
]

PROBLEM_MEDIA = "application/problem+json"


class MalformedBody(InvalidInput):
    """The body cannot be split into lines: not UTF-8, not JSON, nested too deep (400)."""

    status = 400
    kind = "malformed-body"
    title = "Malformed body"


class PayloadTooLarge(InvalidInput):
    """The body or its number of lines is over the limit: send smaller batches."""

    status = 413
    kind = "payload-too-large"
    title = "Payload too large"


class UnsupportedMediaType(InvalidInput):
    """The body's Content-Type is not one the route accepts."""

    status = 415
    kind = "unsupported-media-type"
    title = "Unsupported media type"


class RateLimited(ReplenError):
    """Too many requests from one identity (or failed sign-ins from one place)."""

    exit_code: ClassVar[int] = 7
    status = 429
    kind = "rate-limited"
    title = "Too many requests"

    def __init__(self, message: str, *, retry_after: float, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = max(1, int(retry_after + 0.999))

    def extensions(self) -> dict[str, Any]:
        return super().extensions() | {"retry_after": self.retry_after}


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "hint": {"type": "string"},
        "field": {"type": "string"},
        "value": {"type": "string"},
        "rule": {"type": "string"},
        "line": {"type": "integer"},
        "retry_after": {"type": "integer"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
    "additionalProperties": True,
}

_WHY = {
    400: "The body is not valid JSON / NDJSON / UTF-8, or a request is malformed",
    401: "No bearer token, or it is invalid, expired or revoked",
    403: "The identity may not do this (role, store scope or approval limit)",
    404: "Not found",
    409: "The current state does not allow this",
    413: "The body, or its number of lines, is over the limit",
    415: "The Content-Type is not accepted here",
    422: "The input breaks a rule (field, value and rule named)",
    429: "Too many requests; retry after the Retry-After header's seconds",
}


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these status codes, each an RFC 9457 problem document."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        entry: dict[str, Any] = {
            "description": _WHY[code],
            "content": {PROBLEM_MEDIA: {"schema": PROBLEM_SCHEMA}},
        }
        if code == 429:
            entry["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
        if code == 401:
            entry["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        out[code] = entry
    return out
