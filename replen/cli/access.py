"""Access commands: people (users) and machines (clients), signing keys, signing in."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from replen.cli._common import JsonOpt, app, emit, errors, load_settings, out, signed_in, sub_app

users_app = sub_app("users", "People: planners, approvers, viewers, admins (roles × stores).")
clients_app = sub_app("clients", "Machines: tills / POS integrators, the ERP (client credentials).")
keys_app = sub_app("keys", "Token signing keys: list, rotate.")

RolesOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--role",
        help="Role (repeat): pos_ingest, viewer, planner, approver, erp, admin.",
    ),
]
StoresOpt = Annotated[
    list[str] | None, typer.Option("--store", help="Store id it may act on (repeat); * = all.")
]
LimitOpt = Annotated[
    float | None, typer.Option(help="Approvers: largest PO value they may approve.")
]
SecretStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]


def _store_and_admin(bootstrap_roles: list[str] | None = None) -> tuple[Any, str]:
    """The identity store and the acting admin; the very first identity may be created
    without signing in, and must then be an admin (the local admin of a one-box install)."""
    from jobs.runtime import Runtime
    from kernel.errors import InvalidInput
    from replen.auth.session import token_service

    rt = Runtime(load_settings())
    identities = token_service(rt.settings).identities
    if bootstrap_roles is not None and identities.count() == 0:
        if "admin" not in bootstrap_roles:
            raise InvalidInput(
                "the first identity must be an admin (--role admin)",
                field="roles",
                rule="roles.first_admin",
            )
        return identities, "system:bootstrap"
    return identities, signed_in(rt, "identities:admin").actor


def _secret(password_stdin: bool, prompt: bool) -> str | None:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if prompt:
        return typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return None


def _create(
    kind: str,
    name: str,
    roles: list[str] | None,
    stores: list[str] | None,
    limit: float | None,
    secret: str | None,
    as_json: bool,
) -> None:
    with errors():
        identities, actor = _store_and_admin(roles or [])
        issued = identities.create(
            kind,
            name,
            roles=roles or [],
            stores=stores or ["*"],
            actor=actor,
            secret=secret,
            approve_limit=limit,
        )
    shown = None if secret else issued.secret
    label = "client secret" if kind == "client" else "password"
    emit(
        {"sub": issued.actor, "name": name, label.replace(" ", "_"): shown},
        as_json,
        lambda: out.print(
            f"created {issued.actor}"
            + (f"\n{label} (shown once, keep it safe): [bold]{shown}[/]" if shown else "")
        ),
    )


def _table(rows: list[dict[str, Any]], as_json: bool, title: str) -> None:
    if as_json:
        print(json.dumps(rows))
        return
    table = Table(title=title, title_justify="left")
    for col in ("name", "roles", "stores", "limit", "disabled"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["name"],
            ",".join(r["roles"]),
            ",".join(r["stores"]),
            "" if r["approve_limit"] is None else f"{r['approve_limit']:,.0f}",
            "yes" if r["disabled"] else "",
        )
    out.print(table)


def _update(kind: str, name: str, as_json: bool, **changes: Any) -> None:
    with errors():
        identities, actor = _store_and_admin()
        done = identities.update(kind, name, actor=actor, **changes)
    emit({"sub": f"{kind}:{name}", **done}, as_json, lambda: out.print(f"{kind}:{name}: {done}"))


# users ---------------------------------------------------------------------------------------
@users_app.command("create")
def users_create(
    name: str,
    role: RolesOpt = None,
    store: StoresOpt = None,
    approve_limit: LimitOpt = None,
    password_stdin: SecretStdin = False,
    generate: Annotated[bool, typer.Option(help="Generate a password and show it once.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a person with roles and stores (default: every store); asks for a password
    (or --generate / --password-stdin). The first identity of a database must be an admin."""
    _create(
        "user",
        name,
        role,
        store,
        approve_limit,
        _secret(password_stdin, prompt=not generate),
        as_json,
    )


@users_app.command("list")
def users_list(as_json: JsonOpt = False) -> None:
    """People, their roles, stores and approval limits."""
    with errors():
        identities, _ = _store_and_admin()
        rows = identities.describe("user")
    _table(rows, as_json, "Users")


@users_app.command("set")
def users_set(
    name: str,
    role: RolesOpt = None,
    store: StoresOpt = None,
    approve_limit: LimitOpt = None,
    no_limit: Annotated[bool, typer.Option(help="Remove the approval limit.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Replace a person's roles, stores or approval limit (their tokens are revoked)."""
    _update(
        "user",
        name,
        as_json,
        roles=role,
        stores=store,
        approve_limit=approve_limit,
        clear_limit=no_limit,
    )


@users_app.command("disable")
def users_disable(name: str, as_json: JsonOpt = False) -> None:
    """Disable a person at once (tokens refused)."""
    _update("user", name, as_json, disabled=True)


@users_app.command("enable")
def users_enable(name: str, as_json: JsonOpt = False) -> None:
    """Enable a disabled person again."""
    _update("user", name, as_json, disabled=False)


@users_app.command("password")
def users_password(
    name: str,
    password_stdin: SecretStdin = False,
    generate: Annotated[bool, typer.Option(help="Generate a password and show it once.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Set a person's password (admins for anyone; a person for themself)."""
    from jobs.runtime import Runtime

    with errors():
        rt = Runtime(load_settings())
        me = signed_in(rt, "authenticated")
        if me.actor != f"user:{name}":
            signed_in(rt, "identities:admin")
        from replen.auth.session import token_service

        secret = _secret(password_stdin, prompt=not generate)
        issued = token_service(rt.settings).identities.set_secret(
            "user", name, actor=me.actor, secret=secret
        )
    shown = None if secret else issued.secret
    emit(
        {"sub": issued.actor, "password": shown},
        as_json,
        lambda: out.print(
            f"password of {issued.actor} changed"
            + (f": [bold]{shown}[/] (shown once)" if shown else "")
        ),
    )


# clients -------------------------------------------------------------------------------------
@clients_app.command("create")
def clients_create(
    client_id: str, role: RolesOpt = None, store: StoresOpt = None, as_json: JsonOpt = False
) -> None:
    """Create a machine client (e.g. `till-s001 --role pos_ingest --store S001`); its secret
    is shown once. It gets tokens with grant_type=client_credentials."""
    _create("client", client_id, role, store, None, None, as_json)


@clients_app.command("list")
def clients_list(as_json: JsonOpt = False) -> None:
    """Machine clients, their roles and stores."""
    with errors():
        identities, _ = _store_and_admin()
        rows = identities.describe("client")
    _table(rows, as_json, "Clients")


@clients_app.command("set")
def clients_set(
    client_id: str, role: RolesOpt = None, store: StoresOpt = None, as_json: JsonOpt = False
) -> None:
    """Replace a client's roles or stores (its tokens are revoked)."""
    _update("client", client_id, as_json, roles=role, stores=store)


@clients_app.command("rotate")
def clients_rotate(client_id: str, as_json: JsonOpt = False) -> None:
    """A new secret for a client (shown once); the old secret and its tokens stop working."""
    with errors():
        identities, actor = _store_and_admin()
        issued = identities.set_secret("client", client_id, actor=actor)
    emit(
        {"sub": issued.actor, "client_secret": issued.secret},
        as_json,
        lambda: out.print(f"new secret of {issued.actor} (shown once): [bold]{issued.secret}[/]"),
    )


@clients_app.command("disable")
def clients_disable(client_id: str, as_json: JsonOpt = False) -> None:
    """Disable a client at once (tokens refused)."""
    _update("client", client_id, as_json, disabled=True)


# keys ----------------------------------------------------------------------------------------
@keys_app.command("rotate")
def keys_rotate(
    grace_minutes: Annotated[
        float | None,
        typer.Option(help="How long old keys keep verifying (default 2 token lifetimes)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Start signing with a new key; old keys verify tokens already out until the grace ends."""
    from datetime import timedelta

    from jobs.runtime import Runtime
    from replen.auth.session import token_service

    with errors():
        rt = Runtime(load_settings())
        actor = signed_in(rt, "identities:admin").actor
        grace = timedelta(minutes=grace_minutes) if grace_minutes is not None else None
        kid = token_service(rt.settings).rotate_key(actor, grace)
    emit({"kid": kid}, as_json, lambda: out.print(f"signing with key {kid}"))


@keys_app.command("list")
def keys_list(as_json: JsonOpt = False) -> None:
    """Signing keys: which signs, which still verify."""
    from jobs.runtime import Runtime
    from replen.auth.session import token_service

    with errors():
        rt = Runtime(load_settings())
        signed_in(rt, "identities:admin")
        keys = token_service(rt.settings).keys()
    if as_json:
        print(json.dumps(keys))
        return
    for k in keys:
        state = "signing" if k["signing"] else ("verifying" if k["verifying"] else "retired")
        out.print(f"{k['kid']}  {k['alg']}  {state}  created {k['created_at']}")


# signing in ----------------------------------------------------------------------------------
@app.command()
def login(
    username: Annotated[str, typer.Option(prompt=True, help="Your user name.")],
    password_stdin: SecretStdin = False,
    as_json: JsonOpt = False,
) -> None:
    """Sign in: later commands act as you (a session saved in a file only you may read)."""
    from replen.auth.session import login as do_login

    password = (
        _secret(password_stdin, prompt=False)
        if password_stdin
        else typer.prompt("Password", hide_input=True)
    )
    settings = load_settings()
    with errors():
        principal = do_login(settings, username, str(password))
    emit(
        {"sub": principal.actor, "credentials": str(settings.credentials_path)},
        as_json,
        lambda: out.print(
            f"signed in as {principal.actor} (session in {settings.credentials_path})"
        ),
    )


@app.command()
def logout() -> None:
    """Sign out: revoke and forget the saved session."""
    from replen.auth.session import logout as do_logout

    with errors():
        had = do_logout(load_settings())
    out.print("signed out" if had else "no saved session")


@app.command()
def whoami(as_json: JsonOpt = False) -> None:
    """Who commands act as: identity, roles, stores, approval limit."""
    from jobs.runtime import Runtime

    with errors():
        principal = signed_in(Runtime(load_settings()), "authenticated")
    data = principal.to_dict()
    emit(
        data,
        as_json,
        lambda: out.print(
            f"{data['sub']}: roles {', '.join(data['roles'])}; stores {', '.join(data['stores'])}"
            + (
                ""
                if data["approve_limit"] is None
                else f"; approves up to {data['approve_limit']:,.2f}"
            )
        ),
    )
