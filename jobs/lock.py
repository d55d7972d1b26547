"""One scheduler per job store: a lease row in the database that survives crashes.

The holder renews a heartbeat (:class:`LeaseKeeper`, its own thread); another process may
take the lease over when the holder is gone — its process no longer exists on this host, or
its heartbeat is older than the TTL. Takeover is a compare-and-swap on the row, so two
contenders cannot both win. The holder trusts its lease only until three quarters of the
TTL after its last renewal began (by its own monotonic clock), so it stops before anyone
else may start; a lock is only ever renewed or deleted by the token that holds it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import DateTime, Integer, String, create_engine, delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from jobs.ledger import Base
from kernel.errors import Conflict

__all__ = ["LeaseKeeper", "LeaseLost", "SchedulerBusy", "SchedulerLock"]

log = logging.getLogger("replen.scheduler")

# The holder trusts its lease for this fraction of the TTL after a renewal began; a
# contender waits the whole TTL. The difference is the holder's time to stop.
TRUST = 0.75


class SchedulerBusy(Conflict):
    """Another live scheduler holds the job store."""


class LeaseLost(Conflict):
    """This scheduler lost its lease (taken over, or not renewed in time) and stopped."""


class LockRow(Base):
    __tablename__ = "scheduler_locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    token: Mapped[str] = mapped_column(String(64))
    heartbeat: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SchedulerLock:
    """The lease row ``name``; the schema comes from the migrations (``replen db upgrade``)."""

    def __init__(self, engine: Engine | str, name: str = "scheduler", ttl_seconds: float = 30):
        self.engine = create_engine(engine) if isinstance(engine, str) else engine
        self.name = name
        self.ttl = timedelta(seconds=ttl_seconds)
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.token = f"{self.host}:{self.pid}:{datetime.now(UTC).timestamp()}"

    def acquire(self) -> None:
        """Take the lease or raise :class:`SchedulerBusy` naming the live holder."""
        now = datetime.now(UTC)
        try:
            with Session(self.engine) as session, session.begin():
                session.add(self._row(now))
            return
        except IntegrityError:
            pass
        with Session(self.engine) as session, session.begin():
            row = session.get(LockRow, self.name)
            if row is None:  # released meanwhile
                session.add(self._row(now))
                return
            beat = row.heartbeat if row.heartbeat.tzinfo else row.heartbeat.replace(tzinfo=UTC)
            dead = (row.host == self.host and not _alive(row.pid)) or now - beat > self.ttl
            if not dead:
                raise SchedulerBusy(
                    f"another scheduler (pid {row.pid} on {row.host}) holds this job store, "
                    f"last heartbeat {beat:%Y-%m-%d %H:%M:%S} UTC; stop it first, or wait "
                    f"{self.ttl.total_seconds():.0f}s after it died"
                )
            taken = session.execute(
                update(LockRow)
                .where(LockRow.name == self.name, LockRow.token == row.token)
                .values(host=self.host, pid=self.pid, token=self.token, heartbeat=now)
            )
            if not taken.rowcount:  # type: ignore[attr-defined]
                raise SchedulerBusy("another scheduler took over the job store just now")

    def _row(self, now: datetime) -> LockRow:
        return LockRow(
            name=self.name, host=self.host, pid=self.pid, token=self.token, heartbeat=now
        )

    def heartbeat(self) -> bool:
        """Renew the lease; False if another token holds it (then this scheduler must stop)."""
        with Session(self.engine) as session, session.begin():
            result = session.execute(
                update(LockRow)
                .where(LockRow.name == self.name, LockRow.token == self.token)
                .values(heartbeat=datetime.now(UTC))
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def release(self) -> None:
        """Delete the lease row if, and only if, this token still holds it."""
        with Session(self.engine) as session, session.begin():
            session.execute(
                delete(LockRow).where(LockRow.name == self.name, LockRow.token == self.token)
            )

    def holder(self) -> dict[str, object] | None:
        with Session(self.engine) as session:
            row = session.scalar(select(LockRow).where(LockRow.name == self.name))
            if row is None:
                return None
            return {"host": row.host, "pid": row.pid, "heartbeat": row.heartbeat}


class LeaseKeeper:
    """Renews a held lease from its own thread and says whether it may still be trusted.

    :meth:`holds` is true while the last renewal began less than ``TRUST × ttl`` ago and no
    other token took the row. When that stops being true, ``on_lost`` is called once, from
    the keeper's thread, with the reason.
    """

    def __init__(self, lock: SchedulerLock, on_lost: Callable[[str], None]) -> None:
        self.lock = lock
        self.on_lost = on_lost
        self.ttl = lock.ttl.total_seconds()
        self._valid_until = time.monotonic() + TRUST * self.ttl
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def start(self, acquired_at: float | None = None) -> None:
        """Start renewing; ``acquired_at`` is the monotonic time the acquisition began."""
        if acquired_at is not None:
            self._valid_until = acquired_at + TRUST * self.ttl
        self._thread.start()

    def holds(self) -> bool:
        return not self._lost.is_set() and time.monotonic() < self._valid_until

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(self.ttl)

    def _run(self) -> None:
        interval = self.ttl / 4
        while True:
            wait = min(interval, max(0.0, self._valid_until - time.monotonic()))
            if self._stop.wait(wait):
                return
            began = time.monotonic()
            if began >= self._valid_until:
                return self._give_up(f"the lease was not renewed within {TRUST * self.ttl:.1f}s")
            renewed = self._renew(timeout=self._valid_until - began)
            if renewed:
                self._valid_until = began + TRUST * self.ttl
                interval = self.ttl / 4
            elif renewed is False:
                return self._give_up("another scheduler took the lease over")
            else:
                interval = self.ttl / 8  # retry soon while the lease is still trusted

    def _renew(self, timeout: float) -> bool | None:
        """One heartbeat on a daemon thread, so that a hung database call cannot keep the
        keeper from noticing that the lease ran out; None if it failed or took too long."""
        result: list[bool | None] = []

        def call() -> None:
            try:
                result.append(self.lock.heartbeat())
            except Exception as exc:  # the database is busy or away: retry while trusted
                log.warning("could not renew the scheduler lease: %s", exc)
                result.append(None)

        worker = threading.Thread(target=call, name="lease-renew", daemon=True)
        worker.start()
        worker.join(timeout)
        return result[0] if result else None

    def _give_up(self, reason: str) -> None:
        self._lost.set()
        self.on_lost(reason)
