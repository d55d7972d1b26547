"""Access tokens and refresh tokens: only ours, only fresh, only unrevoked are accepted."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from sqlalchemy.orm import Session

from kernel.errors import Unauthorized
from replen.auth.store import Identity, IdentityStore, RefreshToken
from replen.auth.tokens import AUDIENCE, TokenService


@pytest.fixture()
def svc(db_url) -> TokenService:
    store = IdentityStore(db_url)
    store.create("user", "ana", roles=["approver"], stores=["S1"], actor="test", secret="a" * 16)
    store.create("client", "till-1", roles=["pos_ingest"], stores=["S1"], actor="test")
    return TokenService(store, access_ttl=timedelta(minutes=5))


def _ana(svc: TokenService):
    principal = svc.identities.principal("user", "ana")
    assert principal is not None
    return principal


def _claims(svc: TokenService, **changes) -> dict:
    token, _ = svc.issue_access(_ana(svc))
    claims = jwt.decode(token, options={"verify_signature": False})
    return claims | changes


def _sign(claims: dict, key, kid: str, alg: str = "ES256") -> str:
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def _our_key(svc: TokenService):
    return svc._signing_key()


def test_a_fresh_token_names_its_identity_with_current_roles_and_stores(svc) -> None:
    token, ttl = svc.issue_access(_ana(svc))
    assert ttl == 300
    principal = svc.verify_access(token)
    assert (principal.actor, set(principal.roles), set(principal.stores)) == (
        "user:ana",
        {"approver"},
        {"S1"},
    )
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256" and header["kid"] in {k["kid"] for k in svc.jwks()["keys"]}


def test_expired_token_is_refused(svc) -> None:
    kid, key = _our_key(svc)
    past = int(time.time()) - 3600
    token = _sign(_claims(svc, iat=past, nbf=past, exp=past + 60), key, kid)
    with pytest.raises(Unauthorized, match="expired"):
        svc.verify_access(token)


def test_forged_claims_break_the_signature(svc) -> None:
    token, _ = svc.issue_access(_ana(svc))
    head, _payload, sig = token.split(".")
    forged = jwt.utils.base64url_encode(
        jwt.api_jws.json.dumps(_claims(svc, roles=["admin"], stores=["*"])).encode()
    ).decode()
    with pytest.raises(Unauthorized, match="invalid"):
        svc.verify_access(f"{head}.{forged}.{sig}")


def test_token_signed_by_another_key_under_our_kid_is_refused(svc) -> None:
    kid, _ = _our_key(svc)
    stranger = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(Unauthorized, match="invalid"):
        svc.verify_access(_sign(_claims(svc), stranger, kid))


def test_token_with_an_unknown_kid_is_refused(svc) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(Unauthorized, match="unknown or retired key"):
        svc.verify_access(_sign(_claims(svc), stranger, "not-ours"))


@pytest.mark.parametrize("alg", ["HS256", "none"])
def test_other_algorithms_are_refused(svc, alg) -> None:
    kid, _ = _our_key(svc)
    key = None if alg == "none" else "public-key-as-hmac-secret"
    with pytest.raises(Unauthorized):
        svc.verify_access(_sign(_claims(svc), key, kid, alg))


def test_wrong_audience_or_issuer_is_refused(svc) -> None:
    kid, key = _our_key(svc)
    for change in ({"aud": "someone-else"}, {"iss": "evil"}):
        with pytest.raises(Unauthorized, match="invalid"):
            svc.verify_access(_sign(_claims(svc, **change), key, kid))
    assert svc.verify_access(_sign(_claims(svc, aud=AUDIENCE), key, kid)).name == "ana"


def test_revoking_or_disabling_an_identity_refuses_tokens_already_issued(svc) -> None:
    token, _ = svc.issue_access(_ana(svc))
    svc.identities.revoke_tokens("user", "ana", actor="test")
    with pytest.raises(Unauthorized, match="revoked"):
        svc.verify_access(token)
    fresh, _ = svc.issue_access(_ana(svc))
    assert svc.verify_access(fresh).name == "ana"
    svc.identities.update("user", "ana", actor="test", disabled=True)
    with pytest.raises(Unauthorized):
        svc.verify_access(fresh)


def test_narrowing_roles_applies_at_once(svc) -> None:
    token, _ = svc.issue_access(_ana(svc))
    svc.identities.update("user", "ana", actor="test", roles=["viewer"])
    with pytest.raises(Unauthorized):
        svc.verify_access(token)  # issued before the change


def test_key_rotation_keeps_old_tokens_valid_for_the_grace_then_refuses_them(svc) -> None:
    old, _ = svc.issue_access(_ana(svc))
    new_kid = svc.rotate_key("test", grace=timedelta(seconds=1))
    assert svc.verify_access(old).name == "ana"
    fresh, _ = svc.issue_access(_ana(svc))
    assert jwt.get_unverified_header(fresh)["kid"] == new_kid
    time.sleep(1.1)  # the grace is wall-clock time by definition
    with pytest.raises(Unauthorized, match="retired"):
        TokenService(svc.identities).verify_access(old)
    assert [k["kid"] for k in svc.jwks()["keys"]] == [new_kid]


def test_refresh_tokens_rotate_and_a_reused_one_revokes_the_whole_sign_in(svc) -> None:
    first = svc.issue_refresh(_ana(svc))
    second = svc.refresh(first)["refresh_token"]
    third = svc.refresh(second)["refresh_token"]
    with pytest.raises(Unauthorized, match="reused"):
        svc.refresh(first)  # a thief replays an old one
    with pytest.raises(Unauthorized):
        svc.refresh(third)  # and the legitimate chain is dead too


def test_refresh_tokens_are_stored_hashed_and_secrets_with_argon2(svc) -> None:
    token = svc.issue_refresh(_ana(svc))
    with Session(svc.engine) as session:
        stored = session.scalars(select(RefreshToken.token_hash)).all()
        hashes = session.scalars(select(Identity.secret_hash)).all()
    assert token not in stored and len(stored[0]) == 64
    assert all(h.startswith("$argon2id$") for h in hashes)


def test_wrong_secret_unknown_name_and_disabled_identity_cannot_sign_in(svc) -> None:
    ids = svc.identities
    assert ids.verify_secret("user", "ana", "a" * 16) is not None
    assert ids.verify_secret("user", "ana", "b" * 16) is None
    assert ids.verify_secret("user", "nobody", "a" * 16) is None
    ids.update("user", "ana", actor="test", disabled=True)
    assert ids.verify_secret("user", "ana", "a" * 16) is None


def test_no_secret_reaches_the_logs_or_the_audit_trail(svc, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)  # even every SQL statement
    try:
        issued = svc.identities.create("client", "erp", roles=["erp"], stores=["*"], actor="test")
        rotated = svc.identities.set_secret("client", "erp", actor="test")
        principal = svc.identities.verify_secret("client", "erp", rotated.secret)
        assert principal is not None
        pair = svc.grant(principal, with_refresh=True)
        svc.refresh(pair["refresh_token"])
        svc.identities.verify_secret("user", "ana", "wrong-password-123")
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    text = caplog.text + repr(svc.identities.audit()) + repr(issued)
    for secret in (issued.secret, rotated.secret, pair["refresh_token"], "wrong-password-123"):
        assert secret not in text
    assert "IssuedSecret" in repr(issued) and "***" in repr(issued)
