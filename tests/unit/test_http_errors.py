"""The HTTP error edge: problem+json with the right status for each kind of failure, and a bug
stays a 500 with nothing of its traceback in the answer (no ValueError turned into a 422)."""

from __future__ import annotations

import errno

import pytest
from fastapi.testclient import TestClient

from kernel.errors import Conflict, InvalidInput, NotFound, NotReady, StorageError


def _raise(exc: BaseException):
    def route() -> None:
        raise exc

    return route


CASES = [
    (InvalidInput("bad", field="on_hand", value="x", rule="on_hand.number"), 422, "invalid-input"),
    (NotFound("no PO 7", hint="see `replen orders list`"), 404, "not-found"),
    (Conflict("already approved"), 409, "conflict"),
    (NotReady("no champion", hint="run `replen train` first"), 409, "not-ready"),
    (StorageError("disk full", full=True), 507, "storage"),
    (OSError(errno.ENOSPC, "No space left on device"), 507, "storage"),
    (OSError(errno.EROFS, "Read-only file system"), 503, "storage"),
    (ValueError("a bug, not bad input"), 500, "internal"),
    (KeyError("column"), 500, "internal"),
    (OSError(errno.ECONNREFUSED, "Connection refused"), 500, "internal"),
]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from replen.app import create_app
    from replen.settings import Settings

    home = tmp_path_factory.mktemp("http")
    app = create_app(Settings(data_dir=home / "data", mlflow_dir=home / "mlflow"))
    for i, (exc, _, _) in enumerate(CASES):
        app.add_api_route(f"/test/{i}", _raise(exc), methods=["GET"])
    # No lifespan (no velocity pusher): these routes need nothing from it.
    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(("i", "status", "kind"), [(i, c[1], c[2]) for i, c in enumerate(CASES)])
def test_each_failure_has_its_status_and_a_problem_document(client, i, status, kind) -> None:
    r = client.get(f"/test/{i}")
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert (body["status"], body["type"], body["instance"]) == (
        status,
        f"/problems/{kind}",
        f"/test/{i}",
    )
    if status == 500:
        assert "bug" not in r.text and "column" not in r.text and "Traceback" not in r.text


def test_invalid_input_carries_field_value_and_rule(client) -> None:
    body = client.get("/test/0").json()
    assert (body["field"], body["value"], body["rule"]) == ("on_hand", "x", "on_hand.number")


def test_unknown_route_and_wrong_method_are_problems_too(client) -> None:
    assert client.get("/nowhere").json()["status"] == 404
    r = client.post("/test/0")
    assert r.status_code == 405 and r.json()["type"] == "/problems/http-405"
    assert "GET" in r.headers["allow"]
