"""Who acts on the planner API, and what they may do: the one access decision of its routes.

Interim until sign-in lands (the access-control issue): the same names and semantics as
its policy — ``require(permission)`` is a route dependency returning the acting
:class:`Principal`; ``authorize(principal, permission, store=…, value=…)`` checks store
scope and the approver's value limit; ``public()`` marks open routes — so that swapping in
the real ones is a change of imports. Until then the caller is :func:`current_identity`:
the local operator of a one-box install, on loopback only (tests override it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from kernel.errors import Forbidden, Unauthorized

__all__ = ["Principal", "authorize", "current_identity", "public", "require"]

ALL_STORES = "*"
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset({"orders:read", "monitor:read"}),
    "planner": frozenset({"orders:read", "orders:edit", "monitor:read"}),
    "approver": frozenset({"orders:read", "orders:approve", "monitor:read"}),
    "admin": frozenset({"orders:read", "orders:edit", "orders:approve", "monitor:read"}),
}


@dataclass(frozen=True)
class Principal:
    """An authenticated user or machine client: roles, store scope, approval limit."""

    kind: str
    name: str
    roles: frozenset[str]
    stores: frozenset[str] = field(default_factory=frozenset)
    approve_limit: float | None = None

    @property
    def actor(self) -> str:
        """How audit records name this identity: ``user:alice``."""
        return f"{self.kind}:{self.name}"

    def may(self, permission: str) -> bool:
        return any(permission in ROLE_PERMISSIONS.get(r, ()) for r in self.roles)

    def covers(self, store_id: str) -> bool:
        return ALL_STORES in self.stores or store_id in self.stores

    def store_filter(self) -> set[str] | None:
        """The stores this identity may touch; None = every store."""
        return None if ALL_STORES in self.stores else set(self.stores)


def authorize(
    principal: Principal, permission: str, *, store: str | None = None, value: float | None = None
) -> None:
    """Raise :class:`Forbidden` unless ``principal`` may do ``permission`` (on ``store``;
    approving ``value`` within its limit)."""
    if not principal.may(permission):
        raise Forbidden(
            f"{principal.actor} (roles: {', '.join(sorted(principal.roles)) or 'none'}) may "
            f"not {permission}"
        )
    if store is not None and not principal.covers(store):
        raise Forbidden(f"{principal.actor} may not act on store {store!r}")
    if (
        permission == "orders:approve"
        and value is not None
        and principal.approve_limit is not None
        and "admin" not in principal.roles
        and value > principal.approve_limit
    ):
        raise Forbidden(
            f"{principal.actor} may approve up to {principal.approve_limit:,.2f}; this "
            f"purchase order is worth {value:,.2f}",
            hint="ask an approver with a higher limit",
        )


def current_identity(request: Request) -> Principal:
    """The caller. Interim: the local operator, from loopback only."""
    host = request.client.host if request.client else ""
    if host not in ("127.0.0.1", "::1", "localhost", "testclient"):
        raise Unauthorized("the planner API answers on loopback only until sign-in is set up")
    return Principal("user", "local", frozenset({"admin"}), frozenset({ALL_STORES}))


def require(permission: str) -> Any:
    """Route dependency: the acting :class:`Principal`, if it may ``permission``."""

    def door(principal: Annotated[Principal, Depends(current_identity)]) -> Principal:
        authorize(principal, permission)
        return principal

    return Depends(door)


def public() -> Any:
    """Route dependency marking a route anyone may call (the page's static assets)."""

    def open_door() -> None:
        return None

    return Depends(open_door)
