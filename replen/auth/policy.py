"""The one policy table: roles → permissions, store scopes and approval limits.

Every door (HTTP routes, CLI commands) asks :func:`authorize`; nothing else decides who may
do what. A permission is ``<resource>:<verb>``; a role is a set of permissions; an identity
has roles, a store scope (``*`` = every store) and, for approvers, a value limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from kernel.errors import Forbidden, InvalidInput

__all__ = [
    "ALL_STORES",
    "PERMISSIONS",
    "PUBLIC",
    "ROLES",
    "ROLE_PERMISSIONS",
    "Principal",
    "allowed_roles",
    "authorize",
    "check_roles",
    "check_stores",
]

ALL_STORES = "*"
PUBLIC = "public"  # the policy of routes anyone may call (health, token, JWKS, the schema)
AUTHENTICATED = "authenticated"  # any valid identity (who am I)

PERMISSIONS: dict[str, str] = {
    AUTHENTICATED: "any signed-in identity",
    "pos:write": "send POS lines for the identity's stores",
    "stock:write": "send stock positions (on hand) for the identity's stores",
    "receipts:write": "send goods receipts for the identity's stores",
    "erp:ack": "acknowledge exported purchase orders (the ERP)",
    "master:write": "send item and store names (master data: the ERP or an admin)",
    "orders:read": "read purchase orders of the identity's stores",
    "orders:edit": "change quantities of suggested purchase orders",
    "orders:approve": "approve or reject purchase orders, up to the approval limit",
    "orders:export": "export approved purchase orders to the ERP",
    "monitor:read": "read feed freshness and quality",
    "metrics:read": "scrape Prometheus metrics",
    "ops:admin": "operations endpoints (push latency)",
    "corrections:write": "void ingested POS events (audited)",
    "identities:admin": "manage users, machine clients and signing keys",
}

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "pos_ingest": frozenset({"pos:write", "stock:write", "receipts:write"}),
    "viewer": frozenset({"orders:read", "monitor:read", "metrics:read"}),
    "planner": frozenset({"orders:read", "orders:edit", "monitor:read"}),
    "approver": frozenset({"orders:read", "orders:approve", "monitor:read"}),
    "erp": frozenset(
        {"stock:write", "receipts:write", "erp:ack", "master:write", "orders:read", "orders:export"}
    ),
    "admin": frozenset(PERMISSIONS),
}
for _perms in ROLE_PERMISSIONS.values():
    assert _perms <= set(PERMISSIONS), _perms
ROLES = tuple(ROLE_PERMISSIONS)


@dataclass(frozen=True)
class Principal:
    """An authenticated user or machine client, as the policy sees it."""

    kind: str  # "user" or "client"
    name: str
    roles: frozenset[str]
    stores: frozenset[str] = field(default_factory=frozenset)
    approve_limit: float | None = None  # None: no limit

    @property
    def actor(self) -> str:
        """How audit records name this identity: ``user:alice``, ``client:till-s001``."""
        return f"{self.kind}:{self.name}"

    @property
    def all_stores(self) -> bool:
        return ALL_STORES in self.stores

    def may(self, permission: str) -> bool:
        if permission in (PUBLIC, AUTHENTICATED):
            return True
        return any(permission in ROLE_PERMISSIONS.get(r, ()) for r in self.roles)

    def covers(self, store_id: str) -> bool:
        return self.all_stores or store_id in self.stores

    def store_filter(self) -> set[str] | None:
        """The stores this identity may touch; None = every store."""
        return None if self.all_stores else set(self.stores)

    def to_dict(self) -> dict[str, object]:
        return {
            "sub": self.actor,
            "kind": self.kind,
            "name": self.name,
            "roles": sorted(self.roles),
            "stores": sorted(self.stores),
            "approve_limit": self.approve_limit,
            "permissions": sorted(p for p in PERMISSIONS if self.may(p)),
        }


def authorize(
    principal: Principal,
    permission: str,
    *,
    store: str | None = None,
    value: float | None = None,
) -> None:
    """Raise :class:`Forbidden` unless ``principal`` may do ``permission`` (on ``store``,
    for an amount of ``value`` when approving)."""
    if not principal.may(permission):
        raise Forbidden(
            f"{principal.actor} (roles: {', '.join(sorted(principal.roles)) or 'none'}) may "
            f"not {PERMISSIONS.get(permission, permission)} ({permission})",
            hint=f"roles that may: {', '.join(allowed_roles(permission))}",
        )
    if store is not None and not principal.covers(store):
        raise Forbidden(
            f"{principal.actor} may not act on store {store!r} (its stores: "
            f"{', '.join(sorted(principal.stores)) or 'none'})",
            hint="an admin can widen the scope with `replen users set` / `replen clients set`",
        )
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


def allowed_roles(permission: str) -> list[str]:
    return [r for r, perms in ROLE_PERMISSIONS.items() if permission in perms]


def check_roles(roles: Iterable[str]) -> list[str]:
    """Validate role names; returns them sorted and unique."""
    roles = sorted(set(roles))
    for role in roles:
        if role not in ROLE_PERMISSIONS:
            raise InvalidInput(
                f"unknown role {role!r}; roles: {', '.join(ROLES)}",
                field="roles",
                value=role,
                rule="roles.known",
            )
    return roles


def check_stores(stores: Iterable[str]) -> list[str]:
    """Validate a store scope: store ids, or ``*`` for every store."""
    from features.events import ID_PATTERN

    stores = sorted(set(stores))
    for store in stores:
        if store != ALL_STORES and not ID_PATTERN.fullmatch(store):
            raise InvalidInput(
                f"store {store!r} is not a valid store id (or * for every store)",
                field="stores",
                value=store,
                rule="stores.format",
            )
    return stores
