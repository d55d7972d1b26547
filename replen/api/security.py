"""The one door check of the HTTP service: every route declares its policy here.

``require(permission)`` is a route dependency that reads the bearer token, verifies it
(:class:`~replen.auth.tokens.TokenService`), applies the per-identity rate limit and asks
the policy table (:func:`~replen.auth.policy.authorize`); it returns the
:class:`~replen.auth.policy.Principal`, on which a route checks store scopes and values
with ``authorize(principal, permission, store=…, value=…)``. ``public()`` marks the few
routes anyone may call. :func:`check_routes` refuses to build an app with a route that
declares neither, so a route added later cannot slip through unprotected.
"""

from __future__ import annotations

import threading
import time
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlowPassword, OAuthFlows
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security import OAuth2

from kernel.errors import Unauthorized
from replen.api.problems import RateLimited, problem_responses
from replen.auth.policy import PERMISSIONS, PUBLIC, Principal, authorize
from replen.auth.store import IdentityStore
from replen.auth.tokens import TokenService

__all__ = [
    "FRAMEWORK_PUBLIC",
    "AccessControl",
    "RateLimiter",
    "check_routes",
    "policy_of",
    "public",
    "require",
    "routes",
]

TOKEN_URL = "/v1/oauth/token"
# Routes FastAPI itself adds: the schema and its viewers, readable by anyone.
FRAMEWORK_PUBLIC = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
POLICY_ATTR = "__replen_policy__"

oauth2 = OAuth2(
    flows=OAuthFlows(
        clientCredentials=OAuthFlowClientCredentials(tokenUrl=TOKEN_URL),
        password=OAuthFlowPassword(tokenUrl=TOKEN_URL),
    ),
    scheme_name="oauth2",
    description="Machines: client credentials; people: password (or refresh_token). "
    "Send the access token as `Authorization: Bearer …`.",
    auto_error=False,
)


class RateLimiter:
    """Token buckets per key, in this process: ``per_minute`` requests, as a burst too.

    Per process by design: with N server workers an identity gets up to N × the limit.
    """

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, cost: float = 1.0) -> float:
        """0 if allowed, else seconds until it would be."""
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - at) * self.rate)
            if tokens >= cost:
                self._buckets[key] = (tokens - cost, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > 100_000:  # forget idle keys (full buckets)
                self._buckets = {k: v for k, v in self._buckets.items() if v[0] < self.capacity}
            return (cost - tokens) / self.rate

    def exhausted(self, key: str) -> float:
        """Seconds until ``key`` may act again (0: now), without spending anything."""
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.rate)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate


class AccessControl:
    """What the door check needs, built once per app: tokens, identities, rate limits."""

    def __init__(
        self, tokens: TokenService, *, per_minute: int, sign_in_failures_per_minute: int
    ) -> None:
        self.tokens = tokens
        self.identities: IdentityStore = tokens.identities
        self.requests = RateLimiter(per_minute)
        self.sign_in_failures = RateLimiter(sign_in_failures_per_minute)

    def principal(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Unauthorized(
                "this route needs a bearer token",
                hint=f"get one from {TOKEN_URL} and send `Authorization: Bearer <token>`",
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized(
                "the Authorization header must be `Bearer <access token>`",
                hint=f"get a token from {TOKEN_URL}",
            )
        principal = self.tokens.verify_access(token.strip())
        wait = self.requests.take(principal.actor)
        if wait:
            raise RateLimited(
                f"{principal.actor} sent more than {self.requests.capacity:.0f} requests a minute",
                retry_after=wait,
                hint="batch lines into fewer requests, or ask for a higher "
                "REPLEN_RATE_LIMIT_PER_MINUTE",
            )
        return principal


def require(permission: str, *, store_param: str | None = None) -> Any:
    """Route dependency: the calling :class:`Principal`, if the policy lets it ``permission``.

    Missing or bad token → 401; known identity without the permission → 403. With
    ``store_param``, the store named by that path or query parameter must be in the
    identity's scope too (403 otherwise). Routes that find the store only in the body or in
    a stored record check it with ``authorize(principal, permission, store=…, value=…)``.
    """
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}; known: {sorted(PERMISSIONS)}")

    def door(request: Request, authorization: Annotated[str | None, Security(oauth2)]) -> Principal:
        access: AccessControl = request.app.state.access
        principal = access.principal(authorization)
        store = None
        if store_param is not None:
            store = request.path_params.get(store_param) or request.query_params.get(store_param)
        authorize(principal, permission, store=store)
        request.state.principal = principal
        return principal

    setattr(door, POLICY_ATTR, permission)
    door.__name__ = f"require_{permission.replace(':', '_')}"
    return Depends(door)


def public() -> Any:
    """Route dependency marking a route anyone may call (health, token, JWKS)."""

    def open_door() -> None:
        return None

    setattr(open_door, POLICY_ATTR, PUBLIC)
    return Depends(open_door)


def policy_of(route: Any) -> str | None:
    """The permission a route declared (``public`` for open routes), None if it has none."""
    found: list[str] = []

    def walk(dependant: Any) -> None:
        for dep in dependant.dependencies:
            policy = getattr(dep.call, POLICY_ATTR, None)
            if policy is not None:
                found.append(policy)
            walk(dep)

    walk(route.dependant)
    if len(set(found)) > 1:
        raise RuntimeError(f"{route.path} declares several policies: {sorted(set(found))}")
    return found[0] if found else None


def routes(app: FastAPI) -> list[Any]:
    """Every route of ``app`` with its full path (included routers flattened)."""
    return list(iter_route_contexts(app.routes))


def check_routes(app: FastAPI) -> dict[tuple[str, str], str]:
    """(method, path) → policy for every route; raises if any route declares none."""
    table: dict[tuple[str, str], str] = {}
    missing: list[str] = []
    for route in routes(app):
        path = route.path or ""
        methods = sorted(route.methods or {"GET"})
        if isinstance(route.original_route, APIRoute):
            policy = policy_of(route)
            if policy is None:
                missing.append(f"{','.join(methods)} {path}")
                continue
        elif path in FRAMEWORK_PUBLIC:
            policy = PUBLIC
        else:
            missing.append(f"{','.join(methods)} {path} (not an APIRoute)")
            continue
        for method in methods:
            if method != "HEAD":
                table[(method, path)] = policy
    if missing:
        raise RuntimeError(
            "routes without an access policy (add `dependencies=[require('<permission>')]` "
            f"or `public()` from replen.api.security): {missing}"
        )
    return table


def secured(*extra: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses of a route behind ``require``: 401, 403, 413, 415, 429 + ``extra``."""
    return problem_responses(401, 403, 413, 415, 429, *extra)
