"""The Replen database schema under Alembic: one upgrade path for SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine, inspect
from sqlalchemy.engine import Engine

from kernel.sql import engine_for

__all__ = [
    "connect",
    "current",
    "engine",
    "exists",
    "head",
    "include_object",
    "metadata",
    "upgrade",
]

_MIGRATIONS = Path(__file__).parent / "migrations"
BASELINE = "0001"  # the schema databases had before migrations existed


def metadata() -> MetaData:
    """Every table Replen owns, from the stages that own them."""
    from jobs.ledger import Base as LedgerBase
    from jobs.lock import LockRow  # noqa: F401  (registers the lock table on LedgerBase)
    from replen.auth.store import Base as AuthBase
    from replenishment.models import Base as OrdersBase
    from replenishment.review_store import Base as ReviewBase
    from replenishment.rules_store import _meta as rules_meta

    combined = MetaData()
    for source in (
        OrdersBase.metadata,
        LedgerBase.metadata,
        rules_meta,
        AuthBase.metadata,
        ReviewBase.metadata,
    ):
        for table in source.tables.values():
            table.to_metadata(combined)
    return combined


_MIGRATED: dict[str, str] = {}
_GUARD = threading.Lock()


def engine(url: str) -> Engine:
    """The process's one engine (and connection pool) for ``url``: on SQLite in WAL mode,
    waiting for another writer instead of failing, writes taking the lock first
    (:mod:`kernel.sql`)."""
    return engine_for(url)


def connect(url: str) -> Engine:
    """The engine for ``url``, its schema migrated to the newest revision once per process.

    Every entry point (CLI command, HTTP app, scheduler, job) reaches the database this way;
    the stores never create tables themselves.
    """
    with _GUARD:
        migrated = url in _MIGRATED
    if not migrated:
        revision = upgrade(url)
        with _GUARD:
            _MIGRATED[url] = revision
    return engine(url)


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """APScheduler manages its own job table."""
    return not (type_ == "table" and name == "apscheduler_jobs")


def _config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> str:
    """Bring the database at ``url`` to the newest schema; returns the revision.

    A database created before migrations existed (some tables, no version) gets its
    missing tables and is stamped at the baseline first; later migrations are idempotent.
    """
    from alembic import command

    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if revision == "head" and exists(url):
        # Already at the newest revision (every process's case but the first): reading
        # the version costs a tenth of running Alembic's upgrade to find nothing to do.
        found = current(url)
        if found is not None and found == head():
            return found
    cfg = _config(url)
    engine = create_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    owned = set(metadata().tables)
    if "alembic_version" not in tables and tables & owned:
        # Made before migrations, or partly by a store's create_all: add the missing tables,
        # record the database at the baseline, and let the migrations after it run. They
        # are written to be idempotent (a column is added only if absent) for this reason.
        engine = create_engine(url)
        try:
            metadata().create_all(engine)
        finally:
            engine.dispose()
        command.stamp(cfg, BASELINE)
    command.upgrade(cfg, revision)
    return current(url) or "?"


def head() -> str:
    """The newest revision in the migration scripts."""
    from alembic.script import ScriptDirectory

    revision = ScriptDirectory.from_config(_config("sqlite://")).get_current_head()
    assert revision is not None
    return revision


def exists(url: str) -> bool:
    """False only for a SQLite file that does not exist yet (in memory, other servers: True)."""
    if not url.startswith("sqlite:///"):
        return True
    path = url.removeprefix("sqlite:///").partition("?")[0]
    return path in ("", ":memory:") or Path(path).exists()


def current(url: str) -> str | None:
    """The database's schema revision; None if it has none yet (or does not exist)."""
    from alembic.runtime.migration import MigrationContext

    if not exists(url):
        return None  # do not create an empty file just to look
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
