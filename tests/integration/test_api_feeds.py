"""ERP and store-system feeds over HTTP: each row checked alone, exact counts, problem+json for
a request that cannot be read as the feed."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from replen.app import create_app
from tests.conftest import AccessKit

pytestmark = pytest.mark.slow


@pytest.fixture()
def client(settings, db_url):
    """The ERP's client (every store) sending feeds with a real bearer token."""
    with TestClient(create_app(settings.model_copy(update={"database_url": db_url}))) as c:
        c.kit = AccessKit(db_url)  # type: ignore[attr-defined]
        c.headers.update(c.kit.headers(("erp",), ("*",)))
        yield c


def _positions() -> list[dict]:
    return [
        {"store_id": "S1", "sku_id": "a", "as_of": "2024-01-10T22:00:00+01:00", "on_hand": 4},
        {"store_id": "S1", "sku_id": "b", "as_of": "2024-01-10T22:00:00+01:00", "on_hand": "x"},
        {
            "store_id": "S2",
            "sku_id": "a",
            "as_of": "2024-01-10T22:00:00",
            "on_hand": 1,
            "on_order": 12,
        },
    ]


def test_stock_positions_are_counted_row_by_row_and_a_resend_is_idempotent(client) -> None:
    r = client.post("/v1/stock-positions", json=_positions())
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["received"], body["accepted"], body["duplicates"], body["rejected"]) == (
        3,
        1,
        0,
        2,
    )
    assert [(e["line"], e["rule"], e["value"]) for e in body["errors"]] == [
        (2, "on_hand.number", "x"),
        (3, "as_of.timezone", "2024-01-10T22:00:00"),
    ]
    again = client.post("/v1/stock-positions", json=_positions()).json()
    assert (again["accepted"], again["duplicates"]) == (0, 1)
    # The rejected rows are answered again, and kept once.
    assert (again["rejected"], again["already_quarantined"]) == (2, 2)
    assert [e["rule"] for e in again["errors"]] == ["on_hand.number", "as_of.timezone"]
    assert client.app.state.runtime.positions.rejects("stock").height == 2


def test_ndjson_rows_are_numbered_by_their_line(client) -> None:
    lines = [json.dumps(p) for p in _positions()]
    body = "\n".join([lines[0], "", lines[1]]).encode()
    r = client.post(
        "/v1/stock-positions", content=body, headers={"Content-Type": "application/x-ndjson"}
    )
    assert [e["line"] for e in r.json()["errors"]] == [3]


def test_an_unknown_field_is_a_422_problem_naming_the_closest_known_one(client) -> None:
    rows = [{"store_id": "S1", "sku_id": "a", "as_of": "2024-01-10T22:00:00Z", "onhand": 4}]
    r = client.post("/v1/stock-positions", json=rows)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["rule"] == "column.known" and problem["field"] == "onhand"
    assert "did you mean 'on_hand'" in problem["detail"]


def test_receipts_and_names_arrive_over_http(client) -> None:
    items = [{"sku_id": "a", "name": "Apples"}, {"sku_id": "b", "name": ""}]
    body = client.post("/v1/items", json=items).json()
    assert (body["accepted"], [e["rule"] for e in body["errors"]]) == (1, ["name.required"])
    receipt = [
        {
            "receipt_id": "GR1",
            "po_id": 404,
            "sku_id": "a",
            "quantity": 1,
            "received_at": "2024-01-10T10:00:00Z",
        }
    ]
    body = client.post("/v1/receipts", json=receipt).json()
    assert [e["rule"] for e in body["errors"]] == ["po_id.unknown"]
    ack = client.post("/v1/acknowledgements", json=[{"po_id": 404}]).json()
    assert [e["rule"] for e in ack["errors"]] == ["po_id.unknown"]


def test_a_till_sends_stock_and_receipts_for_its_own_stores_only(client) -> None:
    till = client.kit.headers(("pos_ingest",), ("S1",))
    rows = [
        {"store_id": "S1", "sku_id": "a", "as_of": "2024-01-10T22:00:00Z", "on_hand": 4},
        {"store_id": "S2", "sku_id": "a", "as_of": "2024-01-10T22:00:00Z", "on_hand": 7},
    ]
    body = client.post("/v1/stock-positions", json=rows, headers=till).json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert [(e["line"], e["rule"], e["value"]) for e in body["errors"]] == [
        (2, "store_id.scope", "S2")
    ]
    receipt = {"receipt_id": "GR9", "po_id": 404, "sku_id": "a", "quantity": 1}
    receipt["received_at"] = "2024-01-10T10:00:00Z"  # no store named: refused for a till
    body = client.post("/v1/receipts", json=[receipt], headers=till).json()
    assert [e["rule"] for e in body["errors"]] == ["store_id.scope"]
    # Master data and acknowledgements are not a till's to send.
    assert client.post("/v1/items", json=[], headers=till).status_code == 403
    assert client.post("/v1/acknowledgements", json=[], headers=till).status_code == 403


def test_a_line_that_is_not_a_json_object_is_a_counted_rejection(client) -> None:
    good = json.dumps(_positions()[0])
    body = "\n".join([good, "{not json", "[1, 2]"]).encode()
    r = client.post(
        "/v1/stock-positions", content=body, headers={"Content-Type": "application/x-ndjson"}
    )
    body = r.json()
    assert (body["received"], body["accepted"], body["rejected"]) == (3, 1, 2)
    assert [e["line"] for e in body["errors"]] == [2, 3]
