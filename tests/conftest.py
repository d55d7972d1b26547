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


def _stop_server(proc) -> None:  # type: ignore[no-untyped-def]
    """Stop a server process started by a fixture, whatever state it is in."""
    import subprocess

    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(20)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory):
    """A Redis server on loopback: REPLEN_TEST_REDIS_URL (`.ci/run` starts one) or a
    redis-server started here; the tests that need it skip, saying why, without one."""
    import os
    import shutil
    import subprocess
    import time

    url = os.environ.get("REPLEN_TEST_REDIS_URL")
    if url:
        yield url
        return
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server)")
    import redis
    from support import free_port

    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + 30
        while True:
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.skip(f"redis-server did not start on 127.0.0.1:{port}")
                time.sleep(0.05)
        yield url
    finally:
        _stop_server(proc)


@pytest.fixture()
def redis_url(redis_server: str) -> str:
    """The Redis server, emptied for this test."""
    import redis

    redis.Redis.from_url(redis_server).flushdb()
    return redis_server


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory):
    """An MLflow tracking server on loopback: runs in a fresh PostgreSQL database (on the
    REPLEN_TEST_POSTGRES_URL server that `.ci/run` starts), artifacts in a folder. Yields
    its URL; skips, saying why, without PostgreSQL."""
    import os
    import shutil
    import signal
    import subprocess
    import time
    import uuid

    import httpx
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = os.environ.get("REPLEN_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("REPLEN_TEST_POSTGRES_URL is not set (no PostgreSQL for the MLflow server)")
    exe = shutil.which("mlflow")
    assert exe, "mlflow is a dependency: its console script must exist"
    name = f"mlflow_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    backend = make_url(base).set(database=name).render_as_string(hide_password=False)
    folder = tmp_path_factory.mktemp("mlflow-server")
    from support import free_port

    port = free_port()
    log = open(folder / "server.log", "wb")  # noqa: SIM115  (closed below)
    proc = subprocess.Popen(
        [
            exe,
            "server",
            "--backend-store-uri",
            backend,
            "--artifacts-destination",
            str(folder / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the server forks workers: stop the whole group
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # first start migrates the database
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited: {(folder / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("mlflow server did not answer /health within 180 s")
            time.sleep(0.2)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
        log.close()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
