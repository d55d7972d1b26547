"""Shared fixtures: small synthetic chains, isolated settings, the shared real data."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import polars as pl
import pytest

from replen.synthetic import SyntheticRetail, generate

ROOT = Path(__file__).resolve().parents[1]
# ../shared/data beside the checkout; REPLEN_SHARED_DATA points elsewhere (e.g. a worktree).
SHARED_DATA = Path(os.environ.get("REPLEN_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def chain() -> SyntheticRetail:
    """Two stores × eight SKUs × 200 days: fast, yet every demand pattern appears."""
    return generate(stores=2, skus=8, days=200, seed=3)


@pytest.fixture(scope="session")
def daily(chain: SyntheticRetail) -> pl.DataFrame:
    from features.events import validate_events
    from features.sales import daily_sales

    events = validate_events(chain.pos).accepted
    return daily_sales(events, chain.inventory)


@pytest.fixture()
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Settings whose every path lies in a temporary directory."""
    from replen.settings import Settings

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    return Settings(data_dir=tmp_path / "data", mlflow_dir=tmp_path / "mlflow")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"real data not found at {SHARED_DATA} (../shared/data is absent)")
    return SHARED_DATA


@pytest.fixture()
def procs(tmp_path: Path):
    """Start processes with ``procs.start([...])``; every one is killed at teardown."""
    from support import Processes

    started = Processes(tmp_path / "_procs")
    try:
        yield started
    finally:
        started.close()


@pytest.fixture(scope="session")
def _migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from replen.db import upgrade

    path = tmp_path_factory.mktemp("db") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture()
def db_url(tmp_path: Path, _migrated_template: Path) -> str:
    """A SQLite database at the newest migration (a copy of one migrated once)."""
    target = tmp_path / "replen.db"
    shutil.copy(_migrated_template, target)
    return f"sqlite:///{target}"


@pytest.fixture()
def rt(settings, db_url: str):
    """A Runtime on temporary paths and a migrated database."""
    from jobs.runtime import Runtime

    return Runtime(settings.model_copy(update={"database_url": db_url}))


class AccessKit:
    """Identities in a test database and bearer headers for them (tokens issued directly)."""

    def __init__(self, db_url: str) -> None:
        from jobs.runtime import ensure_schema
        from replen.auth.store import IdentityStore
        from replen.auth.tokens import TokenService

        ensure_schema(db_url)
        self.identities = IdentityStore(db_url)
        self.tokens = TokenService(self.identities)
        self._n = 0

    def principal(
        self,
        roles: tuple[str, ...] = ("admin",),
        stores: tuple[str, ...] = ("*",),
        *,
        kind: str = "client",
        name: str | None = None,
        approve_limit: float | None = None,
    ):
        self._n += 1
        name = name or f"{'-'.join(roles) or 'none'}-{self._n}".replace("_", "-")
        issued = self.identities.create(
            kind,
            name,
            roles=list(roles),
            stores=list(stores),
            actor="test:setup",
            approve_limit=approve_limit,
            secret="test-secret-" + name,
        )
        principal = self.identities.principal(kind, name)
        assert principal is not None
        return principal, issued.secret

    def headers(self, roles: tuple[str, ...] = ("admin",), stores=("*",), **kw) -> dict[str, str]:
        principal, _ = self.principal(roles, stores, **kw)
        token, _ = self.tokens.issue_access(principal)
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture()
def access(settings, _migrated_template: Path) -> AccessKit:
    target = settings.data_dir / "replen.db"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(_migrated_template, target)
    return AccessKit(settings.db_url)
