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
