"""One SQLAlchemy engine per database URL and process, tuned for concurrent writers on SQLite.

SQLite takes one writer at a time. A transaction that reads first and writes later can
deadlock against another such transaction (both hold a read lock, both want the write
lock) or, in WAL mode, fail on a stale snapshot. Write transactions here therefore start
with ``BEGIN IMMEDIATE`` (take the write lock first, wait up to the busy timeout for it),
reads with a plain ``BEGIN``; WAL lets readers go on while one process writes. On
PostgreSQL nothing changes: compare-and-set ``UPDATE … WHERE status = …`` is enough there.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

__all__ = ["engine_for", "now_utc", "read_session", "utc", "write_session"]

_ENGINES: dict[str, Engine] = {}
_LOCK = threading.Lock()
BUSY_TIMEOUT_SECONDS = 60.0


def engine_for(url: Engine | str) -> Engine:
    """The process's engine for ``url`` (created once; an Engine is returned as is)."""
    if isinstance(url, Engine):
        return url
    with _LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            engine = _ENGINES[url] = _create(url)
        return engine


def _create(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_SECONDS})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Let SQLAlchemy's "begin" event (below) issue BEGIN, not the driver.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if ":memory:" not in url and url not in ("sqlite://", "sqlite:///"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("replen_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session in a write transaction (committed on exit, rolled back on error)."""
    with Session(engine.execution_options(replen_write=True)) as session, session.begin():
        yield session


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


def now_utc() -> datetime:
    return datetime.now(UTC)


def utc(value: datetime | None) -> datetime | None:
    """A timestamp read back from the database as UTC (SQLite returns it naive)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
