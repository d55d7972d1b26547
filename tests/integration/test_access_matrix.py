"""Role × route × store: every forbidden combination refused, every allowed one works.

The matrix is generated from the app's routes and the policy table, so a route added
later without a policy (or without a request below) fails here.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from replen.api.security import check_routes, public, require
from replen.app import create_app
from replen.auth.policy import PUBLIC, ROLE_PERMISSIONS, ROLES

pytestmark = pytest.mark.slow

NOW = datetime.now(UTC)
STORES = ("S1", "S2")  # every principal below may act on S1 only


def _seed_orders(db_url: str) -> dict[str, int]:
    """One suggested PO per store, worth 100."""
    from sqlalchemy.orm import Session

    from replenishment.orders import OrderStore, PoLine, PurchaseOrder

    store = OrderStore(db_url)
    ids = {}
    with Session(store.engine) as session, session.begin():
        for s in STORES:
            po = PurchaseOrder(
                plan_date=date.today(),
                supplier_id="SUP1",
                store_id=s,
                order_date=date.today(),
                expected_delivery=date.today() + timedelta(days=3),
                status="suggested",
                currency="EUR",
                value=100.0,
                model_version="1",
                created_at=NOW,
            )
            po.lines.append(
                PoLine(
                    sku_id="A",
                    quantity=10,
                    suggested_quantity=10,
                    unit_cost=10.0,
                    value=100.0,
                    explanation={},
                )
            )
            session.add(po)
            session.flush()
            ids[s] = po.id
    return ids


def _reset_orders(db_url: str) -> None:
    """Every PO suggested again, as seeded: nothing delivered, received or revised."""
    from sqlalchemy import delete, update

    from kernel.sql import write_session
    from replenishment.models import Delivery, Receipt
    from replenishment.orders import OrderStore, PoLine, PurchaseOrder

    with write_session(OrderStore(db_url).engine) as session:
        session.execute(delete(Delivery))
        session.execute(delete(Receipt))
        session.execute(
            update(PurchaseOrder).values(
                status="suggested", value=100.0, revision=1, snoozed_until=None
            )
        )
        session.execute(update(PoLine).values(quantity=10, value=100.0))


_n = itertools.count()


def _event(store: str) -> dict[str, Any]:
    return {
        "event_id": f"m-{next(_n)}",
        "store_id": store,
        "sku_id": "A",
        "sold_at": (NOW - timedelta(hours=1)).isoformat(),
        "quantity": 1,
        "unit_price": 2.5,
    }


def requests_for(pos: dict[str, int], secret: str) -> dict[tuple[str, str], Any]:
    """(method, path) → store → keyword arguments of one request that should work."""
    snap = lambda s: [  # noqa: E731
        {"store_id": s, "sku_id": "A", "as_of": NOW.isoformat(), "on_hand": 4}
    ]
    return {
        ("POST", "/v1/pos/events"): lambda s: {"url": "/v1/pos/events", "json": [_event(s)]},
        ("POST", "/v1/inventory"): lambda s: {"url": "/v1/inventory", "json": snap(s)},
        ("POST", "/v1/stock-positions"): lambda s: {"url": "/v1/stock-positions", "json": snap(s)},
        ("POST", "/v1/receipts"): lambda s: {
            "url": "/v1/receipts",
            "json": [
                {
                    "receipt_id": f"GR-{next(_n)}",
                    "po_id": pos[s],
                    "sku_id": "A",
                    "store_id": s,
                    "quantity": 1,
                    "received_at": (NOW - timedelta(minutes=5)).isoformat(),
                }
            ],
        },
        ("POST", "/v1/acknowledgements"): lambda s: {
            "url": "/v1/acknowledgements",
            "json": [{"po_id": pos[s]}],
        },
        ("POST", "/v1/items"): lambda s: {
            "url": "/v1/items",
            "json": [{"sku_id": "A", "name": "Apples"}],
        },
        ("POST", "/v1/stores"): lambda s: {
            "url": "/v1/stores",
            "json": [{"store_id": s, "name": f"Store {s}"}],
        },
        ("GET", "/v1/orders"): lambda s: {"url": "/v1/orders"},
        ("GET", "/v1/orders/{po_id}"): lambda s: {"url": f"/v1/orders/{pos[s]}"},
        ("POST", "/v1/orders/{po_id}/approve"): lambda s: {"url": f"/v1/orders/{pos[s]}/approve"},
        ("POST", "/v1/orders/{po_id}/reject"): lambda s: {
            "url": f"/v1/orders/{pos[s]}/reject",
            "json": {"reason": "too many"},
        },
        ("PUT", "/v1/orders/{po_id}/lines/{sku_id}"): lambda s: {
            "url": f"/v1/orders/{pos[s]}/lines/A",
            "json": {"quantity": 5, "reason": "shelf full"},
        },
        ("POST", "/v1/orders/{po_id}/snooze"): lambda s: {
            "url": f"/v1/orders/{pos[s]}/snooze",
            "json": {"until": (date.today() + timedelta(days=3)).isoformat(), "reason": "wait"},
        },
        ("POST", "/v1/orders/bulk/approve"): lambda s: {
            "url": "/v1/orders/bulk/approve",
            "json": {"po_ids": [pos[s]]},
        },
        ("POST", "/v1/orders/bulk/reject"): lambda s: {
            "url": "/v1/orders/bulk/reject",
            "json": {"po_ids": [pos[s]], "reason": "too many"},
        },
        ("POST", "/v1/orders/bulk/snooze"): lambda s: {
            "url": "/v1/orders/bulk/snooze",
            "json": {"po_ids": [pos[s]], "until": (date.today() + timedelta(days=3)).isoformat()},
        },
        ("GET", "/v1/held-orders"): lambda s: {"url": "/v1/held-orders"},
        ("GET", "/v1/items/{store_id}/{sku_id}"): lambda s: {"url": f"/v1/items/{s}/A"},
        ("GET", "/v1/exceptions"): lambda s: {"url": "/v1/exceptions"},
        ("POST", "/v1/exceptions/confirm"): lambda s: {
            "url": "/v1/exceptions/confirm",
            "json": {"keys": [f"stockout_risk|{s}/A|{date.today().isoformat()}"]},
        },
        ("POST", "/v1/exceptions/snooze"): lambda s: {
            "url": "/v1/exceptions/snooze",
            "json": {
                "keys": [f"stockout_risk|{s}/A|{date.today().isoformat()}"],
                "until": (date.today() + timedelta(days=3)).isoformat(),
            },
        },
        ("GET", "/v1/jobs/runs"): lambda s: {"url": "/v1/jobs/runs"},
        ("GET", "/v1/data-health"): lambda s: {"url": "/v1/data-health"},
        ("GET", "/v1/value-added"): lambda s: {"url": "/v1/value-added"},
        ("GET", "/v1/what-if"): lambda s: {"url": "/v1/what-if"},
        ("POST", "/v1/corrections/voids"): lambda s: {
            "url": "/v1/corrections/voids",
            "json": {"event_ids": ["never-sent"], "reason": "test"},
        },
        ("GET", "/v1/corrections/voids"): lambda s: {"url": "/v1/corrections/voids"},
        ("GET", "/v1/me"): lambda s: {"url": "/v1/me"},
        ("GET", "/v1/monitor"): lambda s: {"url": "/v1/monitor"},
        ("GET", "/metrics"): lambda s: {"url": "/metrics"},
        ("GET", "/v1/ops/push-latency"): lambda s: {"url": "/v1/ops/push-latency"},
        ("GET", "/healthz"): lambda s: {"url": "/healthz"},
        ("GET", "/.well-known/jwks.json"): lambda s: {"url": "/.well-known/jwks.json"},
        ("POST", "/v1/oauth/token"): lambda s: {
            "url": "/v1/oauth/token",
            "data": {
                "grant_type": "client_credentials",
                "client_id": "matrix-client",
                "client_secret": secret,
            },
        },
        ("POST", "/v1/oauth/revoke"): lambda s: {
            "url": "/v1/oauth/revoke",
            "data": {"token": "not-a-token"},
        },
        ("GET", "/"): lambda s: {"url": "/"},
        ("GET", "/static/{name}"): lambda s: {"url": "/static/app.js"},
        ("GET", "/docs-assets/{name}"): lambda s: {"url": "/docs-assets/swagger-ui.css"},
        ("GET", "/openapi.json"): lambda s: {"url": "/openapi.json"},
        ("GET", "/docs"): lambda s: {"url": "/docs"},
        ("GET", "/redoc"): lambda s: {"url": "/redoc"},
        ("GET", "/docs/oauth2-redirect"): lambda s: {"url": "/docs/oauth2-redirect"},
    }


# Routes whose target belongs to a store: out of scope is refused (403), or for ingest
# each line is rejected with its rule and quarantined.
STORE_SCOPED = {
    ("POST", "/v1/pos/events"): "line",
    ("POST", "/v1/inventory"): "request",
    ("POST", "/v1/stock-positions"): "line",
    ("POST", "/v1/receipts"): "line",
    ("GET", "/v1/orders/{po_id}"): "403",
    ("POST", "/v1/orders/{po_id}/approve"): "403",
    ("POST", "/v1/orders/{po_id}/reject"): "403",
    ("PUT", "/v1/orders/{po_id}/lines/{sku_id}"): "403",
    ("POST", "/v1/orders/{po_id}/snooze"): "403",
    ("GET", "/v1/items/{store_id}/{sku_id}"): "403",
    # Bulk actions answer per PO: one outside the scope is refused on its own (403 inside).
    ("POST", "/v1/orders/bulk/approve"): "item",
    ("POST", "/v1/orders/bulk/reject"): "item",
    ("POST", "/v1/orders/bulk/snooze"): "item",
}


def _seed_what_if(settings) -> None:
    """A kept what-if, so that GET /v1/what-if has one to answer with."""
    from jobs.runtime import Runtime
    from jobs.simulation import save_what_if

    row = {
        "supplier_id": "all",
        "fill_rate": 0.95,
        "avg_on_hand_value": 100.0,
        "orders": 3,
        "units_ordered": 40.0,
        "stockout_days": 1,
        "held": 0,
        "waste_units": 0.0,
    }
    run = {"total": row, "suppliers": [row | {"supplier_id": "SUP1"}]}
    doc = {"start": "2024-01-01", "end": "2024-02-25", "days": 56, "series": 1}
    doc |= {"unplanned_series": 0, "initial_stock": "history", "current": run}
    save_what_if(Runtime(settings), doc)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from replen.settings import Settings
    from tests.conftest import AccessKit

    root = tmp_path_factory.mktemp("matrix")
    settings = Settings(data_dir=root / "data", mlflow_dir=root / "mlflow")
    app = create_app(settings)
    kit = AccessKit(settings.db_url)
    pos = _seed_orders(settings.db_url)
    _seed_what_if(settings)
    _, secret = kit.principal(("erp",), name="matrix-client")
    headers = {role: kit.headers((role,), ("S1",)) for role in ROLES}
    with TestClient(app) as client:
        yield client, settings, pos, secret, headers


def test_every_route_declares_a_policy_and_has_a_matrix_request(world) -> None:
    client, _, pos, secret, _ = world
    policies = client.app.state.policies
    assert set(policies) == set(requests_for(pos, secret)), (
        "a route was added or removed: give it a request in requests_for()"
    )
    public_routes = {k for k, v in policies.items() if v == PUBLIC}
    assert public_routes == {
        ("GET", "/"),  # the page itself: it signs in through the token endpoint
        ("GET", "/static/{name}"),
        ("GET", "/docs-assets/{name}"),
        ("GET", "/healthz"),
        ("POST", "/v1/oauth/token"),
        ("POST", "/v1/oauth/revoke"),
        ("GET", "/.well-known/jwks.json"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/redoc"),
        ("GET", "/docs/oauth2-redirect"),
    }


def test_an_app_with_an_undeclared_route_refuses_to_start() -> None:
    app = FastAPI()
    router = APIRouter()

    @router.get("/declared", dependencies=[require("orders:read")])
    def declared() -> None: ...

    @router.get("/open", dependencies=[public()])
    def open_() -> None: ...

    app.include_router(router)
    assert check_routes(app)[("GET", "/declared")] == "orders:read"

    @app.get("/forgotten")
    def forgotten() -> None: ...

    with pytest.raises(RuntimeError, match="GET /forgotten"):
        check_routes(app)


def test_no_token_is_401_on_every_protected_route(world) -> None:
    client, _settings, pos, secret, _ = world
    for (method, path), policy in client.app.state.policies.items():
        kwargs = requests_for(pos, secret)[(method, path)]("S1")
        for auth in ({}, {"Authorization": "Bearer not.a.jwt"}, {"Authorization": "Basic x"}):
            if policy == PUBLIC and auth:
                continue  # the token endpoint reads Authorization as client credentials
            r = client.request(method, headers=auth, **kwargs)
            if policy == PUBLIC:
                assert r.status_code == 200, (method, path, r.text)
            else:
                assert r.status_code == 401, (method, path, auth, r.text)
                assert r.headers["content-type"] == "application/problem+json"
                assert r.headers["www-authenticate"].startswith("Bearer")


def test_role_by_route_by_store_matrix(world) -> None:
    client, settings, pos, secret, headers = world
    table = requests_for(pos, secret)
    forbidden = refused = allowed = worked = 0
    failures: list[str] = []
    for (method, path), policy in sorted(client.app.state.policies.items()):
        if policy == PUBLIC:
            continue
        for role, store in itertools.product(ROLES, STORES):
            _reset_orders(settings.db_url)
            r = client.request(method, headers=headers[role], **table[(method, path)](store))
            may = policy == "authenticated" or policy in ROLE_PERMISSIONS[role]
            scoped = STORE_SCOPED.get((method, path))
            where = f"{role} {method} {path} {store}: {r.status_code} {r.text[:160]}"
            if not may or (scoped == "403" and store == "S2"):
                forbidden += 1
                refused += r.status_code == 403
                if r.status_code != 403:
                    failures.append("NOT REFUSED " + where)
            elif scoped == "line" and store == "S2":
                forbidden += 1
                body = r.json()
                ok = r.status_code == 200 and body["rejected_by_rule"] == {"store_id.scope": 1}
                refused += ok
                if not ok:
                    failures.append("LINE NOT REJECTED " + where)
            elif scoped == "item" and store == "S2":
                forbidden += 1
                body = r.json()
                ok = (
                    r.status_code == 200
                    and body["failed"] == 1
                    and body["results"][0]["error"]["status"] == 403
                )
                refused += ok
                if not ok:
                    failures.append("PO NOT REFUSED " + where)
            elif scoped == "request" and store == "S2":
                forbidden += 1
                ok = r.status_code == 422 and r.json()["rule"] == "store_id.scope"
                refused += ok
                if not ok:
                    failures.append("SNAPSHOT NOT REFUSED " + where)
            else:
                allowed += 1
                worked += 200 <= r.status_code < 300
                if not 200 <= r.status_code < 300:
                    failures.append("DID NOT WORK " + where)
    print(f"forbidden {forbidden}, refused {refused}; allowed {allowed}, worked {worked}")
    assert not failures, "\n".join(failures)
    assert refused == forbidden >= 100 and worked == allowed >= 30


def test_a_reader_scoped_to_one_store_sees_only_its_purchase_orders(world) -> None:
    client, _, _, _, headers = world
    rows = client.get("/v1/orders", headers=headers["viewer"]).json()["items"]
    assert {r["store_id"] for r in rows} == {"S1"}


def test_an_approver_cannot_approve_past_the_value_limit(world) -> None:
    from tests.conftest import AccessKit

    client, settings, pos, _, _ = world
    _reset_orders(settings.db_url)
    kit = AccessKit(settings.db_url)
    low = kit.headers(("approver",), ("*",), kind="user", approve_limit=99.99)
    high = kit.headers(("approver",), ("*",), kind="user", name="high", approve_limit=100)
    r = client.post(f"/v1/orders/{pos['S1']}/approve", headers=low)
    assert r.status_code == 403 and "up to 99.99" in r.json()["detail"]
    r = client.post(f"/v1/orders/{pos['S1']}/approve", headers=high)
    assert r.status_code == 200 and r.json()["to"] == "approved"
    trail = client.get(f"/v1/orders/{pos['S1']}", headers=high).json()["audit"]
    assert trail[-1]["actor"] == "user:high"
