"""The one policy table: roles, store scopes and approval limits."""

from __future__ import annotations

import pytest

from kernel.errors import Forbidden, InvalidInput
from replen.auth.policy import (
    PERMISSIONS,
    ROLE_PERMISSIONS,
    Principal,
    authorize,
    check_roles,
    check_stores,
)


def _p(*roles: str, stores=("S1",), limit=None) -> Principal:
    return Principal("user", "ana", frozenset(roles), frozenset(stores), limit)


def test_every_role_grants_only_known_permissions_and_admin_grants_all() -> None:
    assert set(ROLE_PERMISSIONS) == {"pos_ingest", "viewer", "planner", "approver", "erp", "admin"}
    assert ROLE_PERMISSIONS["admin"] == set(PERMISSIONS)
    assert "orders:approve" not in ROLE_PERMISSIONS["planner"]
    assert "pos:write" not in ROLE_PERMISSIONS["viewer"]


def test_forbidden_names_the_identity_the_permission_and_the_roles_that_may() -> None:
    with pytest.raises(Forbidden, match=r"user:ana .* may not .*orders:approve") as err:
        authorize(_p("planner"), "orders:approve")
    assert "approver, admin" in str(err.value)


def test_store_scope_is_checked() -> None:
    authorize(_p("viewer"), "orders:read", store="S1")
    with pytest.raises(Forbidden, match="store 'S2'"):
        authorize(_p("viewer"), "orders:read", store="S2")
    authorize(_p("viewer", stores=("*",)), "orders:read", store="S2")


def test_approvers_approve_up_to_their_limit_admins_without() -> None:
    authorize(_p("approver", limit=500), "orders:approve", store="S1", value=500)
    with pytest.raises(Forbidden, match=r"up to 500\.00"):
        authorize(_p("approver", limit=500), "orders:approve", store="S1", value=500.01)
    authorize(_p("admin", limit=1), "orders:approve", store="S1", value=10**6)


def test_unknown_roles_and_malformed_stores_are_invalid_input() -> None:
    assert check_roles(["viewer", "viewer", "admin"]) == ["admin", "viewer"]
    with pytest.raises(InvalidInput, match="unknown role 'root'"):
        check_roles(["root"])
    assert check_stores(["*", "S1"]) == ["*", "S1"]
    with pytest.raises(InvalidInput):
        check_stores(["S1\n"])


def test_require_checks_a_store_named_in_the_path(tmp_path) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from replen.api.security import AccessControl, require
    from replen.app import install_problem_handlers
    from replen.auth.store import IdentityStore
    from replen.auth.tokens import TokenService
    from replen.db import upgrade

    url = f"sqlite:///{tmp_path / 'a.db'}"
    upgrade(url)
    ids = IdentityStore(url)
    ids.create("user", "ana", roles=["viewer"], stores=["S1"], actor="test", secret="x" * 12)
    tokens = TokenService(ids)
    app = FastAPI()
    app.state.access = AccessControl(tokens, per_minute=100, sign_in_failures_per_minute=5)
    install_problem_handlers(app)

    @app.get(
        "/stores/{store_id}/orders", dependencies=[require("orders:read", store_param="store_id")]
    )
    def orders(store_id: str) -> dict:
        return {"store_id": store_id}

    principal = ids.principal("user", "ana")
    assert principal is not None
    auth = {"Authorization": f"Bearer {tokens.issue_access(principal)[0]}"}
    client = TestClient(app)
    assert client.get("/stores/S1/orders", headers=auth).status_code == 200
    assert client.get("/stores/S2/orders", headers=auth).status_code == 403
