"""OAuth2 token endpoint (RFC 6749: client credentials, password, refresh token), token
revocation (RFC 7009), the JWKS of the signing keys, and who-am-I."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from replen.api.limits import FORM, body_rule
from replen.api.problems import RateLimited, problem_responses
from replen.api.security import AccessControl, public, require, secured
from replen.auth.policy import Principal

router = APIRouter(tags=["access"])

_OAUTH_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "string",
            "enum": [
                "invalid_request",
                "invalid_client",
                "invalid_grant",
                "unsupported_grant_type",
                "unauthorized_client",
            ],
        },
        "error_description": {"type": "string"},
    },
}


class TokenResponse(BaseModel):
    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str | None = None


class OAuthError(Exception):
    """An RFC 6749 §5.2 error answer (``error`` code + description)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status

    def response(self) -> JSONResponse:
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="replen"'
        return JSONResponse(
            {"error": self.error, "error_description": self.description},
            status_code=self.status,
            headers=headers,
        )


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        raw = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError("invalid_client", "malformed Basic credentials", 401) from None
    client_id, sep, secret = raw.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "malformed Basic credentials", 401)
    return unquote(client_id), unquote(secret)


@router.post(
    "/v1/oauth/token",
    response_model=TokenResponse,
    dependencies=[public()],
    responses={
        400: {
            "description": "RFC 6749 error",
            "content": {"application/json": {"schema": _OAUTH_ERROR}},
        },
        401: {
            "description": "bad client credentials",
            "content": {"application/json": {"schema": _OAUTH_ERROR}},
        },
        **problem_responses(413, 415, 422, 429),
    },
    openapi_extra=body_rule("small", FORM),
)
async def token(
    request: Request,
    grant_type: Annotated[str, Form(max_length=64)],
    client_id: Annotated[str | None, Form(max_length=64)] = None,
    client_secret: Annotated[str | None, Form(max_length=256)] = None,
    username: Annotated[str | None, Form(max_length=64)] = None,
    password: Annotated[str | None, Form(max_length=256)] = None,
    refresh_token: Annotated[str | None, Form(max_length=256)] = None,
    scope: Annotated[str | None, Form(max_length=256)] = None,
) -> Any:
    """Issue tokens (form-encoded, RFC 6749).

    - ``client_credentials``: machines (tills, POS integrators, the ERP) with their client
      id and secret, as HTTP Basic or form fields; an access token only.
    - ``password``: people, with ``username`` and ``password``; an access token and a
      refresh token.
    - ``refresh_token``: a new access token and a new refresh token; the old one is used
      up, and presenting it again revokes every token of that sign-in.
    """
    access: AccessControl = request.app.state.access
    if request.query_params:
        return OAuthError(
            "invalid_request", "send credentials in the body, never in the URL"
        ).response()
    try:
        return await run_in_threadpool(
            _grant,
            access,
            request,
            grant_type,
            client_id,
            client_secret,
            username,
            password,
            refresh_token,
        )
    except OAuthError as exc:
        return exc.response()


def _grant(
    access: AccessControl,
    request: Request,
    grant_type: str,
    client_id: str | None,
    client_secret: str | None,
    username: str | None,
    password: str | None,
    refresh_token: str | None,
) -> Any:
    from kernel.errors import Unauthorized

    where = request.client.host if request.client else "?"
    if grant_type == "client_credentials":
        basic = _basic(request.headers.get("authorization"))
        name, secret = basic or (client_id, client_secret)
        if not name or not secret:
            raise OAuthError("invalid_client", "client_id and client_secret are required", 401)
        principal = _sign_in(access, "client", name, secret, where)
        pair = access.tokens.grant(principal, with_refresh=False)
    elif grant_type == "password":
        if not username or not password:
            raise OAuthError("invalid_request", "username and password are required")
        principal = _sign_in(access, "user", username, password, where)
        pair = access.tokens.grant(principal, with_refresh=True)
    elif grant_type == "refresh_token":
        if not refresh_token:
            raise OAuthError("invalid_request", "refresh_token is required")
        try:
            pair = access.tokens.refresh(refresh_token)
        except Unauthorized as exc:
            raise OAuthError("invalid_grant", exc.message) from None
    else:
        raise OAuthError(
            "unsupported_grant_type",
            "grant_type must be client_credentials, password or refresh_token",
        )
    return JSONResponse(dict(pair), headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _sign_in(access: AccessControl, kind: str, name: str, secret: str, where: str) -> Principal:
    failures = access.sign_in_failures
    key = f"{kind}:{name}@{where}"
    wait = failures.exhausted(key)
    if wait:
        raise RateLimited(
            f"too many failed sign-ins for {kind} {name!r}; wait before trying again",
            retry_after=wait,
        )
    principal = access.identities.verify_secret(kind, name, secret)
    if principal is None:
        failures.take(key)
        if kind == "client":
            raise OAuthError("invalid_client", "unknown client, wrong secret, or disabled", 401)
        raise OAuthError("invalid_grant", "unknown user, wrong password, or disabled")
    return principal


@router.post(
    "/v1/oauth/revoke",
    dependencies=[public()],
    status_code=200,
    responses=problem_responses(413, 415, 422, 429),
    openapi_extra=body_rule("small", FORM),
)
async def revoke(request: Request, token: Annotated[str, Form(max_length=256)]) -> dict[str, str]:
    """Revoke a refresh token and every token of its sign-in (RFC 7009: always 200)."""
    access: AccessControl = request.app.state.access
    await run_in_threadpool(access.tokens.revoke_refresh, token)
    return {"status": "revoked"}


class Jwks(BaseModel):
    keys: list[dict[str, Any]]


@router.get("/.well-known/jwks.json", response_model=Jwks, dependencies=[public()])
def jwks(request: Request) -> dict[str, Any]:
    """The public keys that verify access tokens (by ``kid``); rotated with `replen keys rotate`."""
    access: AccessControl = request.app.state.access
    return access.tokens.jwks()


class Me(BaseModel):
    sub: str
    kind: str
    name: str
    roles: list[str]
    stores: list[str]
    approve_limit: float | None
    permissions: list[str]


@router.get("/v1/me", response_model=Me, responses=secured())
def me(principal: Annotated[Principal, require("authenticated")]) -> dict[str, Any]:
    """Who the token belongs to: roles, stores, approval limit, permissions."""
    return principal.to_dict()
