"""Short-lived signed access tokens (JWT, ES256, ``kid``), rotating refresh tokens with reuse
detection, and the signing keys behind them (rotated, published as a JWKS)."""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from sqlalchemy import select
from sqlalchemy.orm import Session

from kernel.errors import Unauthorized
from kernel.sql import write_session
from replen.auth.policy import Principal
from replen.auth.store import (
    Identity,
    IdentityStore,
    RefreshToken,
    SigningKey,
    _aware,
    _principal,
    hash_token,
)

__all__ = ["ALGORITHM", "AUDIENCE", "TokenPair", "TokenService"]

ALGORITHM = "ES256"
AUDIENCE = "replen-api"


class TokenPair(dict[str, Any]):
    """The OAuth2 token response (RFC 6749 §5.1)."""


class TokenService:
    """Issues and verifies tokens for the identities of one database.

    Signing keys live in the database so that every process (workers, CLI) shares them;
    each process caches the public keys by ``kid`` and reloads on an unknown ``kid``.
    """

    def __init__(
        self,
        identities: IdentityStore,
        *,
        issuer: str = "replen",
        access_ttl: timedelta = timedelta(minutes=10),
        refresh_ttl: timedelta = timedelta(days=30),
    ) -> None:
        self.identities = identities
        self.engine = identities.engine
        self.issuer = issuer
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self._keys: dict[str, Any] = {}
        self._retire: dict[str, datetime | None] = {}
        self._lock = threading.Lock()

    # Keys ----------------------------------------------------------------------------------
    def rotate_key(self, actor: str, grace: timedelta | None = None) -> str:
        """A new signing key; the previous ones keep verifying for ``grace`` (default: two
        access-token lifetimes, so tokens already out stay valid until they expire)."""
        grace = grace if grace is not None else 2 * self.access_ttl
        now = datetime.now(UTC)
        private = ec.generate_private_key(ec.SECP256R1())
        kid = f"{now:%Y%m%d%H%M%S}-{uuid.uuid4().hex[:8]}"
        jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
        jwk |= {"kid": kid, "alg": ALGORITHM, "use": "sig"}
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        with write_session(self.engine) as session:
            for old in session.scalars(select(SigningKey).where(SigningKey.retire_at.is_(None))):
                old.retire_at = now + grace
            session.add(
                SigningKey(kid=kid, alg=ALGORITHM, private_pem=pem, public_jwk=jwk, created_at=now)
            )
        self.identities.record(
            actor, "rotate_key", f"key:{kid}", {"grace_seconds": grace.total_seconds()}
        )
        with self._lock:
            self._keys.clear()
        return kid

    def keys(self) -> list[dict[str, Any]]:
        """Every signing key: kid, created, retire time, whether it signs."""
        now = datetime.now(UTC)
        with Session(self.engine) as session:
            rows = session.scalars(select(SigningKey).order_by(SigningKey.created_at)).all()
            return [
                {
                    "kid": k.kid,
                    "alg": k.alg,
                    "created_at": _aware(k.created_at).isoformat(),
                    "retire_at": _aware(k.retire_at).isoformat() if k.retire_at else None,
                    "signing": k.retire_at is None,
                    "verifying": k.retire_at is None or _aware(k.retire_at) > now,
                }
                for k in rows
            ]

    def jwks(self) -> dict[str, Any]:
        """The public keys that verify tokens now (RFC 7517 JWK Set)."""
        now = datetime.now(UTC)
        with Session(self.engine) as session:
            rows = session.scalars(select(SigningKey).order_by(SigningKey.created_at)).all()
            return {
                "keys": [
                    dict(k.public_jwk)
                    for k in rows
                    if k.retire_at is None or _aware(k.retire_at) > now
                ]
            }

    def _signing_key(self) -> tuple[str, Any]:
        with Session(self.engine) as session:
            key = session.scalars(
                select(SigningKey)
                .where(SigningKey.retire_at.is_(None))
                .order_by(SigningKey.created_at.desc())
            ).first()
            if key is None:
                session.close()
                self.rotate_key("system:bootstrap")
                return self._signing_key()
            private = serialization.load_pem_private_key(key.private_pem.encode(), password=None)
            return key.kid, private

    def _public_key(self, kid: str) -> Any | None:
        with self._lock:
            if kid not in self._keys:
                self._load_public_keys()
            key = self._keys.get(kid)
            retire = self._retire.get(kid)
        if key is None or (retire is not None and retire <= datetime.now(UTC)):
            return None
        return key

    def _load_public_keys(self) -> None:
        with Session(self.engine) as session:
            for k in session.scalars(select(SigningKey)):
                self._keys[k.kid] = ECAlgorithm.from_jwk(k.public_jwk)
                self._retire[k.kid] = _aware(k.retire_at) if k.retire_at else None

    # Access tokens -------------------------------------------------------------------------
    def issue_access(self, principal: Principal) -> tuple[str, int]:
        """A signed access token for ``principal`` and its lifetime in seconds."""
        kid, private = self._signing_key()
        now = time.time()
        ttl = int(self.access_ttl.total_seconds())
        claims = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": principal.actor,
            "iat": round(now, 3),
            "nbf": int(now) - 1,
            "exp": int(now) + ttl,
            "jti": uuid.uuid4().hex,
            "roles": sorted(principal.roles),
            "stores": sorted(principal.stores),
        }
        return jwt.encode(claims, private, algorithm=ALGORITHM, headers={"kid": kid}), ttl

    def verify_access(self, token: str) -> Principal:
        """The principal behind a valid access token; :class:`Unauthorized` otherwise.

        Checked: signature by a known, unretired key (``kid``), algorithm, issuer, audience,
        expiry, and that the identity still exists, is enabled and revoked nothing since.
        Roles and stores come from the database, so a change applies at once.
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _bad("the bearer token is not a JWT") from None
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or not isinstance(kid, str):
            raise _bad(f"the bearer token must be signed with {ALGORITHM} and name its key (kid)")
        key = self._public_key(kid)
        if key is None:
            raise _bad("the bearer token is signed by an unknown or retired key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
                leeway=5,
            )
        except jwt.ExpiredSignatureError:
            raise _bad("the access token has expired; get a new one from /v1/oauth/token") from None
        except jwt.PyJWTError as exc:
            raise _bad(f"the bearer token is invalid ({type(exc).__name__})") from None
        kind, _, name = str(claims["sub"]).partition(":")
        issued = datetime.fromtimestamp(float(claims["iat"]), UTC)
        principal = self.identities.principal(kind, name, issued_at=issued)
        if principal is None:
            raise _bad("the token's identity is unknown, disabled or its tokens were revoked")
        return principal

    # Refresh tokens ------------------------------------------------------------------------
    def issue_refresh(
        self, principal: Principal, purpose: str = "oauth", family: str | None = None
    ) -> str:
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with write_session(self.engine) as session:
            ident = self._identity(session, principal)
            session.add(
                RefreshToken(
                    token_hash=hash_token(token),
                    identity_id=ident.id,
                    family=family or uuid.uuid4().hex,
                    purpose=purpose,
                    issued_at=now,
                    expires_at=now + self.refresh_ttl,
                )
            )
        return token

    def grant(self, principal: Principal, *, with_refresh: bool) -> TokenPair:
        access, ttl = self.issue_access(principal)
        pair = TokenPair(access_token=access, token_type="Bearer", expires_in=ttl)
        if with_refresh:
            pair["refresh_token"] = self.issue_refresh(principal)
        return pair

    def refresh(self, token: str) -> TokenPair:
        """Exchange a refresh token for new tokens; the old one is used up (rotation).

        Presenting a used refresh token again means it leaked: the whole family (every
        token descended from the same sign-in) is revoked.
        """
        now = datetime.now(UTC)
        reused = False
        with write_session(self.engine) as session:
            row = self._refresh_row(session, token)
            if row.used_at is not None:
                reused = True
                for sibling in session.scalars(
                    select(RefreshToken).where(RefreshToken.family == row.family)
                ):
                    sibling.revoked_at = sibling.revoked_at or now
            else:
                row.used_at = now
                family = row.family
                principal = self._principal_of(session, row.identity_id)
        if reused:
            raise _bad("refresh token reused: every token of this sign-in is revoked")
        pair = self.grant(principal, with_refresh=False)
        pair["refresh_token"] = self.issue_refresh(principal, family=family)
        return pair

    def principal_of_refresh(self, token: str) -> Principal:
        """The principal of a valid refresh token, without using it up (the CLI's session)."""
        with Session(self.engine) as session:
            row = self._refresh_row(session, token)
            if row.used_at is not None:
                raise _bad("this session was replaced; sign in again with `replen login`")
            return self._principal_of(session, row.identity_id)

    def revoke_refresh(self, token: str) -> bool:
        """Revoke a refresh token and its family (RFC 7009); False if it was unknown."""
        now = datetime.now(UTC)
        with write_session(self.engine) as session:
            row = session.scalars(
                select(RefreshToken).where(RefreshToken.token_hash == hash_token(token))
            ).one_or_none()
            if row is None:
                return False
            for sibling in session.scalars(
                select(RefreshToken).where(RefreshToken.family == row.family)
            ):
                sibling.revoked_at = sibling.revoked_at or now
        return True

    def _refresh_row(self, session: Session, token: str) -> RefreshToken:
        row = session.scalars(
            select(RefreshToken).where(RefreshToken.token_hash == hash_token(token))
        ).one_or_none()
        now = datetime.now(UTC)
        if row is None or row.revoked_at is not None or _aware(row.expires_at) <= now:
            raise _bad("the refresh token is unknown, expired or revoked; sign in again")
        return row

    @staticmethod
    def _principal_of(session: Session, identity_id: int) -> Principal:
        ident = session.get(Identity, identity_id)
        if ident is None or ident.disabled:
            raise _bad("the identity of this refresh token is disabled or gone")
        return _principal(ident)

    @staticmethod
    def _identity(session: Session, principal: Principal) -> Identity:
        ident = session.scalars(
            select(Identity).where(Identity.kind == principal.kind, Identity.name == principal.name)
        ).one()
        return ident


def _bad(message: str) -> Unauthorized:
    return Unauthorized(message, hint="send `Authorization: Bearer <access token>`")
