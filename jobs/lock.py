"""One scheduler per job store: a lease row in the database that survives crashes.

The holder renews a heartbeat; another process may take the lease over when the holder is
gone — its process no longer exists on this host, or its heartbeat is older than the TTL.
Takeover is a compare-and-swap on the row, so two contenders cannot both win.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta

from sqlalchemy import DateTime, Integer, String, create_engine, delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from jobs.ledger import Base
from kernel.errors import Conflict

__all__ = ["SchedulerBusy", "SchedulerLock"]


class SchedulerBusy(Conflict):
    """Another live scheduler holds the job store."""


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
    def __init__(self, engine: Engine | str, name: str = "scheduler", ttl_seconds: float = 30):
        self.engine = create_engine(engine) if isinstance(engine, str) else engine
        Base.metadata.create_all(self.engine)
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
        """Renew the lease; False if it was lost (then this scheduler must stop)."""
        with Session(self.engine) as session, session.begin():
            result = session.execute(
                update(LockRow)
                .where(LockRow.name == self.name, LockRow.token == self.token)
                .values(heartbeat=datetime.now(UTC))
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def release(self) -> None:
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
