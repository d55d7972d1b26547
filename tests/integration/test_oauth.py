"""The OAuth2 token endpoint as clients use it: client credentials, password, refresh
rotation with reuse detection, revocation, sign-in throttling, JWKS."""

from __future__ import annotations

import jwt
import pytest
from fastapi.testclient import TestClient

from replen.app import create_app

pytestmark = pytest.mark.slow


@pytest.fixture()
def client(settings, access):
    return TestClient(create_app(settings))  # no lifespan: no route here needs the pusher


def _token(client, **form) -> dict:
    r = client.post("/v1/oauth/token", data=form)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    return r.json()


def test_a_till_gets_an_access_token_with_basic_auth_and_it_verifies_with_the_jwks(
    client, access
) -> None:
    _, secret = access.principal(("pos_ingest",), ("S1",), name="till-s1")
    r = client.post(
        "/v1/oauth/token", data={"grant_type": "client_credentials"}, auth=("till-s1", secret)
    )
    assert r.status_code == 200 and "refresh_token" not in r.json()
    token = r.json()["access_token"]
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(k for k in client.get("/.well-known/jwks.json").json()["keys"] if k["kid"] == kid)
    claims = jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["ES256"], audience="replen-api")
    assert claims["sub"] == "client:till-s1" and claims["exp"] - claims["iat"] <= 600
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert (me["roles"], me["stores"]) == (["pos_ingest"], ["S1"])


def test_a_person_signs_in_refreshes_and_a_replayed_refresh_token_ends_the_session(
    client, access
) -> None:
    _, password = access.principal(("planner",), kind="user", name="ana")
    first = _token(client, grant_type="password", username="ana", password=password)
    second = _token(client, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert second["refresh_token"] != first["refresh_token"]
    replay = client.post(
        "/v1/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    dead = client.post(
        "/v1/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]},
    )
    assert dead.status_code == 400


def test_revoked_refresh_tokens_stop_working(client, access) -> None:
    _, password = access.principal(("viewer",), kind="user", name="vi")
    pair = _token(client, grant_type="password", username="vi", password=password)
    assert client.post("/v1/oauth/revoke", data={"token": pair["refresh_token"]}).status_code == 200
    r = client.post(
        "/v1/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]},
    )
    assert r.status_code == 400


def test_bad_requests_get_rfc6749_errors(client, access) -> None:
    _, secret = access.principal(("erp",), name="erp")
    cases = [
        (
            {
                "grant_type": "client_credentials",
                "client_id": "erp",
                "client_secret": "nope-nope-nope",
            },
            401,
            "invalid_client",
        ),
        ({"grant_type": "password", "username": "erp"}, 400, "invalid_request"),
        ({"grant_type": "implicit"}, 400, "unsupported_grant_type"),
        ({"grant_type": "password", "username": "erp", "password": secret}, 400, "invalid_grant"),
    ]
    for form, status, error in cases:
        r = client.post("/v1/oauth/token", data=form)
        assert (r.status_code, r.json()["error"]) == (status, error), form
    in_url = client.post(
        f"/v1/oauth/token?client_secret={secret}", data={"grant_type": "client_credentials"}
    )
    assert in_url.status_code == 400  # secrets never in a URL (they end up in access logs)
    as_json = client.post("/v1/oauth/token", json={"grant_type": "client_credentials"})
    assert as_json.status_code == 415


def test_repeated_failed_sign_ins_are_throttled(settings, access) -> None:
    strict = settings.model_copy(update={"sign_in_failures_per_minute": 3})
    client = TestClient(create_app(strict))
    _, password = access.principal(("viewer",), kind="user", name="target")
    wrong = {"grant_type": "password", "username": "target", "password": "guess-guess-guess"}
    codes = [client.post("/v1/oauth/token", data=wrong).status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]
    right = client.post("/v1/oauth/token", data={**wrong, "password": password})
    assert right.status_code == 429 and int(right.headers["retry-after"]) >= 1
