"""The exception tree of Replen, in domain terms; mapped to exit codes and HTTP at the edges.

Every error a user may see derives from :class:`ReplenError` and carries a message and,
where it helps, a ``hint`` saying what to do first. Stages raise these; only the front
door (CLI, HTTP app) turns them into exit codes or problem+json responses, through
:attr:`ReplenError.exit_code`, :attr:`ReplenError.status` and :meth:`ReplenError.problem`.

::

    ReplenError
    ├── InvalidInput      bad input: names the field, the value and the rule  (exit 2, 422)
    ├── NotFound          the thing asked for does not exist                  (exit 3, 404)
    ├── Conflict          the current state does not allow the action         (exit 4, 409)
    ├── NotReady          a prerequisite is missing: says which, and how      (exit 5, 409)
    ├── StorageError      the disk is full or read-only, a file is unreadable (exit 6, 503/507)
    ├── Unauthorized      no identity, or a bad or expired credential         (exit 7, 401)
    └── Forbidden         the identity may not do this                        (exit 7, 403)

A bug is none of these: it stays a plain exception (a 500, a traceback in the log).
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from typing import Any, ClassVar

__all__ = [
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "NotReady",
    "ReplenError",
    "StorageError",
    "Unauthorized",
    "storage_error",
]


class ReplenError(Exception):
    """A failure Replen explains to its user; ``hint`` says how to get past it."""

    exit_code: ClassVar[int] = 1
    status: ClassVar[int] = 500
    kind: ClassVar[str] = "error"
    title: ClassVar[str] = "Replen error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message

    def http_status(self) -> int:
        return self.status

    def extensions(self) -> dict[str, Any]:
        """Fields added to the problem document beside type, title, status and detail."""
        return {"hint": self.hint} if self.hint else {}

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        """An RFC 9457 problem document (``application/problem+json``)."""
        doc: dict[str, Any] = {
            "type": f"/problems/{self.kind}",
            "title": self.title,
            "status": self.http_status(),
            "detail": self.message,
        }
        if instance:
            doc["instance"] = instance
        return doc | self.extensions()


class InvalidInput(ReplenError, ValueError):
    """Input breaks a rule. Names the field, the value and the rule, and where it was
    (``source`` a file or request, ``line`` 1-based) when known."""

    exit_code = 2
    status = 422
    kind = "invalid-input"
    title = "Invalid input"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        value: Any = None,
        rule: str | None = None,
        source: str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        where = f"{source}:{line}: " if source and line else (f"{source}: " if source else "")
        super().__init__(f"{where}{message}", hint=hint)
        self.reason = message  # the message without its location
        self.field = field
        self.value = value
        self.rule = rule
        self.source = source
        self.line = line

    def extensions(self) -> dict[str, Any]:
        extra = {
            "field": self.field,
            "value": None if self.value is None else str(self.value)[:200],
            "rule": self.rule,
            "source": self.source,
            "line": self.line,
        }
        return super().extensions() | {k: v for k, v in extra.items() if v is not None}


class NotFound(ReplenError, LookupError):
    """The thing asked for (a PO, a job, a file, a model) does not exist."""

    exit_code = 3
    status = 404
    kind = "not-found"
    title = "Not found"


class Conflict(ReplenError):
    """The current state does not allow the action (a PO already approved, a busy lock)."""

    exit_code = 4
    status = 409
    kind = "conflict"
    title = "Conflict"


class NotReady(ReplenError):
    """A prerequisite is missing (no rules loaded, no champion model, an empty lake)."""

    exit_code = 5
    status = 409
    kind = "not-ready"
    title = "Not ready"


class StorageError(ReplenError, OSError):
    """Storage refused a write or a read: full disk (507), read-only or unreadable (503)."""

    exit_code = 6
    status = 503
    kind = "storage"
    title = "Storage unavailable"

    def __init__(self, message: str, *, full: bool = False, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.full = full

    def http_status(self) -> int:
        return 507 if self.full else 503


class Unauthorized(ReplenError):
    """No identity was presented, or its credential is bad, expired or revoked."""

    exit_code = 7
    status = 401
    kind = "unauthorized"
    title = "Unauthorized"


class Forbidden(ReplenError):
    """The identity is known but may not do this (role, store scope or value limit)."""

    exit_code = 7
    status = 403
    kind = "forbidden"
    title = "Forbidden"


_FULL = {errno.ENOSPC, errno.EDQUOT}
_UNWRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM}
# The same conditions as reported by libraries that do not raise OSError (SQLite, polars'
# Rust writers, PostgreSQL).
_FULL_TEXT = ("no space left on device", "database or disk is full", "os error 28", "disk full")
_UNWRITABLE_TEXT = (
    "read-only file system",
    "readonly database",
    "os error 30",
    "unable to open database file",
    "permission denied",
    "os error 13",
)


def storage_error(exc: BaseException) -> StorageError | None:
    """The storage failure behind ``exc`` — a full disk, read-only or unwritable storage —
    as a :class:`StorageError`, or None if ``exc`` is something else.

    The edges call this for exceptions that are not already a :class:`ReplenError`, so that
    a full or read-only disk anywhere (a lake part, the database, an output file) reads as
    one clear line (CLI) or a 507/503 (HTTP), while a bug still surfaces as a bug.
    """
    for cause in _chain(exc):
        if isinstance(cause, StorageError):
            return cause
        code = getattr(cause, "errno", None) if isinstance(cause, OSError) else None
        text = str(cause).lower()
        where = getattr(cause, "filename", None)
        what = f" ({where})" if where else ""
        if code in _FULL or any(t in text for t in _FULL_TEXT):
            return StorageError(
                f"no space left on the storage{what}: {_first_line(cause)}",
                full=True,
                hint="free some space or move REPLEN_DATA_DIR to a larger volume, then retry",
            )
        if code in _UNWRITABLE or any(t in text for t in _UNWRITABLE_TEXT):
            return StorageError(
                f"storage is read-only or not accessible{what}: {_first_line(cause)}",
                hint="check that REPLEN_DATA_DIR (and the database) exist and are writable "
                "by this user, then retry",
            )
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
