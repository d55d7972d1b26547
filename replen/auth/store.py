"""Identities in the database: people and machine clients, hashed secrets, refresh tokens,
signing keys, and an audit trail of every change to them (migrations own the tables)."""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from kernel.errors import Conflict, InvalidInput, NotFound
from kernel.sql import engine_for, write_session
from replen.auth.policy import Principal, check_roles, check_stores

__all__ = [
    "KINDS",
    "AuthAudit",
    "Base",
    "Identity",
    "IdentityStore",
    "IssuedSecret",
    "RefreshToken",
    "SigningKey",
    "hash_token",
]

KINDS = ("user", "client")
_NAME_RULE = "1–64 characters: letters, digits and . _ - @"
# argon2id with OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): ~0.1 s a check on
# one core, so sign-ins stay cheap for us and expensive to guess at.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)


@functools.cache
def _dummy_hash() -> str:
    """Verified against when an unknown name signs in, so both paths cost the same time."""
    return _HASHER.hash(secrets.token_urlsafe(16))


class Base(DeclarativeBase):
    pass


class Identity(Base):
    __tablename__ = "auth_identities"
    __table_args__ = (UniqueConstraint("kind", "name", name="uq_auth_identities_kind_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(64))
    secret_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    roles: Mapped[list] = mapped_column(JSON)
    stores: Mapped[list] = mapped_column(JSON)
    approve_limit: Mapped[float | None] = mapped_column(Float, nullable=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Access tokens issued before this moment are refused (rotation, disable, sign-out).
    tokens_valid_after: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RefreshToken(Base):
    __tablename__ = "auth_refresh_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    identity_id: Mapped[int] = mapped_column(
        ForeignKey("auth_identities.id", ondelete="CASCADE"), index=True
    )
    family: Mapped[str] = mapped_column(String(32), index=True)
    purpose: Mapped[str] = mapped_column(String(16))  # "oauth" or "cli"
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SigningKey(Base):
    __tablename__ = "auth_signing_keys"

    kid: Mapped[str] = mapped_column(String(32), primary_key=True)
    alg: Mapped[str] = mapped_column(String(8))
    private_pem: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The newest key that is not retired signs; retired keys stop verifying at retire_at.
    retire_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AuthAudit(Base):
    __tablename__ = "auth_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(80))
    detail: Mapped[dict] = mapped_column(JSON)


@dataclass(frozen=True)
class IssuedSecret:
    """A secret shown once (a generated password or client secret); only its hash is kept."""

    actor: str
    name: str
    secret: str

    def __repr__(self) -> str:  # never print the secret by accident
        return f"IssuedSecret(actor={self.actor!r}, secret=***)"


def hash_token(token: str) -> str:
    """Refresh tokens are 256-bit random: a plain SHA-256 is enough to store them."""
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class IdentityStore:
    """Users and machine clients in the Replen database (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine | str) -> None:
        # A URL gets the process's one engine for it; the schema is the migrations' job
        # (replen.db.connect), never this constructor's.
        self.engine = engine_for(engine)

    # Changes -------------------------------------------------------------------------------
    def create(
        self,
        kind: str,
        name: str,
        *,
        roles: list[str],
        stores: list[str],
        actor: str,
        secret: str | None = None,
        approve_limit: float | None = None,
    ) -> IssuedSecret:
        """Create a user or client; a secret is generated when none is given."""
        _check_kind(kind)
        _check_name(name)
        roles, stores = check_roles(roles), check_stores(stores)
        if not roles:
            raise InvalidInput("give at least one role", field="roles", rule="roles.required")
        _check_limit(approve_limit)
        secret = secret or secrets.token_urlsafe(24)
        _check_secret(secret)
        now = _now()
        with write_session(self.engine) as session:
            if self._find(session, kind, name) is not None:
                raise Conflict(f"{kind} {name!r} already exists", hint=f"use `replen {kind}s set`")
            session.add(
                Identity(
                    kind=kind,
                    name=name,
                    secret_hash=_HASHER.hash(secret),
                    roles=roles,
                    stores=stores,
                    approve_limit=approve_limit,
                    disabled=False,
                    tokens_valid_after=now,
                    created_at=now,
                    updated_at=now,
                )
            )
            self._audit(
                session,
                actor,
                "create",
                f"{kind}:{name}",
                {"roles": roles, "stores": stores, "approve_limit": approve_limit},
            )
        return IssuedSecret(f"{kind}:{name}", name, secret)

    def update(
        self,
        kind: str,
        name: str,
        *,
        actor: str,
        roles: list[str] | None = None,
        stores: list[str] | None = None,
        approve_limit: float | None = None,
        clear_limit: bool = False,
        disabled: bool | None = None,
    ) -> dict[str, Any]:
        """Change roles, stores, limit or the disabled flag; tokens issued before are refused
        when anything narrows (so a change takes effect at once, not at token expiry)."""
        changes: dict[str, Any] = {}
        with write_session(self.engine) as session:
            ident = self._get(session, kind, name)
            if roles is not None:
                ident.roles = changes["roles"] = check_roles(roles)
            if stores is not None:
                ident.stores = changes["stores"] = check_stores(stores)
            if approve_limit is not None or clear_limit:
                _check_limit(approve_limit)
                ident.approve_limit = changes["approve_limit"] = approve_limit
            if disabled is not None:
                ident.disabled = changes["disabled"] = disabled
            if changes:
                now = _now()
                ident.updated_at = now
                ident.tokens_valid_after = now
                self._revoke_refresh(session, ident.id, now)
                self._audit(session, actor, "update", f"{kind}:{name}", changes)
        return changes

    def set_secret(
        self, kind: str, name: str, *, actor: str, secret: str | None = None
    ) -> IssuedSecret:
        """New password or client secret (generated when not given); old tokens refused."""
        secret = secret or secrets.token_urlsafe(24)
        _check_secret(secret)
        with write_session(self.engine) as session:
            ident = self._get(session, kind, name)
            now = _now()
            ident.secret_hash = _HASHER.hash(secret)
            ident.tokens_valid_after = ident.updated_at = now
            self._revoke_refresh(session, ident.id, now)
            self._audit(session, actor, "rotate_secret", f"{kind}:{name}", {})
        return IssuedSecret(f"{kind}:{name}", name, secret)

    def revoke_tokens(self, kind: str, name: str, *, actor: str) -> None:
        """Refuse every token issued so far (sign out everywhere)."""
        with write_session(self.engine) as session:
            ident = self._get(session, kind, name)
            now = _now()
            ident.tokens_valid_after = now
            self._revoke_refresh(session, ident.id, now)
            self._audit(session, actor, "revoke_tokens", f"{kind}:{name}", {})

    # Reading -------------------------------------------------------------------------------
    def verify_secret(self, kind: str, name: str, secret: str) -> Principal | None:
        """The principal if ``secret`` is right and the identity enabled, else None."""
        with Session(self.engine) as session:
            ident = self._find(session, kind, name)
            stored = ident.secret_hash if ident is not None else None
            try:
                _HASHER.verify(stored or _dummy_hash(), secret)
            except (VerificationError, InvalidHashError):
                return None
            if ident is None or stored is None or ident.disabled:
                return None
            if _HASHER.check_needs_rehash(stored):
                with session.begin():
                    ident.secret_hash = _HASHER.hash(secret)
            return _principal(ident)

    def principal(
        self, kind: str, name: str, issued_at: datetime | None = None
    ) -> Principal | None:
        """The current principal, or None if unknown, disabled, or the token is older than
        the identity's last revocation."""
        with Session(self.engine) as session:
            ident = self._find(session, kind, name)
            if ident is None or ident.disabled:
                return None
            if issued_at is not None and issued_at < _aware(ident.tokens_valid_after):
                return None
            return _principal(ident)

    def identity_id(self, kind: str, name: str) -> int:
        with Session(self.engine) as session:
            return self._get(session, kind, name).id

    def describe(self, kind: str | None = None) -> list[dict[str, Any]]:
        stmt = select(Identity).order_by(Identity.kind, Identity.name)
        if kind:
            stmt = stmt.where(Identity.kind == kind)
        with Session(self.engine) as session:
            return [
                {
                    "kind": i.kind,
                    "name": i.name,
                    "roles": list(i.roles),
                    "stores": list(i.stores),
                    "approve_limit": i.approve_limit,
                    "disabled": i.disabled,
                    "created_at": _aware(i.created_at).isoformat(),
                }
                for i in session.scalars(stmt)
            ]

    def count(self) -> int:
        with Session(self.engine) as session:
            return len(session.scalars(select(Identity.id)).all())

    def audit(self, limit: int = 200) -> list[dict[str, Any]]:
        with Session(self.engine) as session:
            rows = session.scalars(select(AuthAudit).order_by(AuthAudit.id.desc()).limit(limit))
            return [
                {
                    "at": _aware(a.at).isoformat(),
                    "actor": a.actor,
                    "action": a.action,
                    "subject": a.subject,
                    "detail": a.detail,
                }
                for a in rows
            ]

    def record(self, actor: str, action: str, subject: str, detail: dict[str, Any]) -> None:
        """Add an entry to the security audit trail (corrections, key rotation …)."""
        with write_session(self.engine) as session:
            self._audit(session, actor, action, subject, detail)

    # Internals -----------------------------------------------------------------------------
    @staticmethod
    def _find(session: Session, kind: str, name: str) -> Identity | None:
        return session.scalars(
            select(Identity).where(Identity.kind == kind, Identity.name == name)
        ).one_or_none()

    def _get(self, session: Session, kind: str, name: str) -> Identity:
        _check_kind(kind)
        ident = self._find(session, kind, name)
        if ident is None:
            raise NotFound(f"no {kind} named {name!r}", hint=f"see `replen {kind}s list`")
        return ident

    @staticmethod
    def _revoke_refresh(session: Session, identity_id: int, now: datetime) -> None:
        for token in session.scalars(
            select(RefreshToken).where(
                RefreshToken.identity_id == identity_id, RefreshToken.revoked_at.is_(None)
            )
        ):
            token.revoked_at = now

    @staticmethod
    def _audit(session: Session, actor: str, action: str, subject: str, detail: dict) -> None:
        session.add(
            AuthAudit(at=_now(), actor=actor, action=action, subject=subject, detail=detail)
        )


def _principal(ident: Identity) -> Principal:
    return Principal(
        kind=ident.kind,
        name=ident.name,
        roles=frozenset(ident.roles),
        stores=frozenset(ident.stores),
        approve_limit=ident.approve_limit,
    )


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InvalidInput(f"kind must be user or client, got {kind!r}", field="kind", value=kind)


def _check_name(name: str) -> None:
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}", name):
        raise InvalidInput(
            f"name {name!r} is not valid: {_NAME_RULE}",
            field="name",
            value=name,
            rule="name.format",
        )


def _check_secret(secret: str) -> None:
    if not 12 <= len(secret) <= 256:
        raise InvalidInput(
            "a password or secret needs 12 to 256 characters",
            field="password",
            rule="password.length",
        )


def _check_limit(limit: float | None) -> None:
    if limit is not None and not (limit >= 0):
        raise InvalidInput(
            f"approve limit must be >= 0, got {limit}",
            field="approve_limit",
            value=limit,
            rule="approve_limit.nonnegative",
        )
