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
