"""The command line's identity: env credentials, or a session saved by ``replen login``
(a refresh token in a file only its owner may read)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from kernel.errors import Unauthorized
from replen.auth.policy import Principal
from replen.auth.store import IdentityStore
from replen.auth.tokens import TokenService
from replen.settings import Settings

__all__ = ["cli_principal", "login", "logout", "token_service"]


def token_service(settings: Settings) -> TokenService:
    from replen.db import connect

    return TokenService(
        IdentityStore(connect(settings.db_url)),
        issuer=settings.token_issuer,
        access_ttl=timedelta(minutes=settings.access_token_minutes),
        refresh_ttl=timedelta(days=settings.refresh_token_days),
    )


def cli_principal(settings: Settings, env: Mapping[str, str]) -> Principal | None:
    """Who the CLI acts as (see :func:`replen.cli._common.signed_in`); None if nobody."""
    tokens = token_service(settings)
    for kind, name_var, secret_var in (
        ("client", "REPLEN_CLIENT_ID", "REPLEN_CLIENT_SECRET"),
        ("user", "REPLEN_USERNAME", "REPLEN_PASSWORD"),
    ):
        name, secret = env.get(name_var), env.get(secret_var)
        if name and secret:
            principal = tokens.identities.verify_secret(kind, name, secret)
            if principal is None:
                raise Unauthorized(
                    f"{name_var}/{secret_var}: unknown {kind}, wrong secret, or disabled"
                )
            return principal
    path = settings.credentials_path
    if not path.exists():
        return None
    if path.stat().st_mode & 0o077:
        raise Unauthorized(
            f"{path} may be read by others; it holds a session",
            hint=f"chmod 600 {path}, or sign in again with `replen login`",
        )
    saved = json.loads(path.read_text())
    return tokens.principal_of_refresh(saved["refresh_token"])


def login(settings: Settings, username: str, password: str) -> Principal:
    """Check the password and save a session (refresh token) for the CLI, mode 0600."""
    tokens = token_service(settings)
    principal = tokens.identities.verify_secret("user", username, password)
    if principal is None:
        raise Unauthorized("unknown user, wrong password, or disabled")
    refresh = tokens.issue_refresh(principal, purpose="cli")
    _write_private(
        settings.credentials_path,
        json.dumps({"sub": principal.actor, "refresh_token": refresh}),
    )
    return principal


def logout(settings: Settings) -> bool:
    """Revoke and forget the saved session; False if there was none."""
    path = settings.credentials_path
    if not path.exists():
        return False
    try:
        token_service(settings).revoke_refresh(json.loads(path.read_text())["refresh_token"])
    finally:
        path.unlink(missing_ok=True)
    return True


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
