"""Operational records in the database: job runs (one per job and slot) and alerts.

The tables come from the Alembic migrations (``replen db upgrade``, run by every entry
point); the stores here never create them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

__all__ = ["Alert", "AlertStore", "JobRun", "RunLedger"]


class Base(DeclarativeBase):
    pass


class Alert(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)  # freshness, quality, job
    subject: Mapped[str] = mapped_column(String(128))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    message: Mapped[str] = mapped_column(Text)


class AlertStore:
    """Alerts in the Replen database (the same URL as the PO store)."""

    def __init__(self, engine: Engine | str) -> None:
        self.engine = create_engine(engine) if isinstance(engine, str) else engine

    def raise_alert(
        self,
        kind: str,
        subject: str,
        message: str,
        value: float | None = None,
        threshold: float | None = None,
    ) -> int:
        with Session(self.engine) as session, session.begin():
            alert = Alert(
                at=datetime.now(UTC),
                kind=kind,
                subject=subject,
                value=value,
                threshold=threshold,
                message=message,
            )
            session.add(alert)
            session.flush()
            return alert.id

    def recent(self, limit: int = 50, kind: str | None = None) -> list[dict[str, object]]:
        stmt = select(Alert).order_by(Alert.id.desc()).limit(limit)
        if kind:
            stmt = stmt.where(Alert.kind == kind)
        with Session(self.engine) as session:
            return [
                {
                    "id": a.id,
                    "at": a.at,
                    "kind": a.kind,
                    "subject": a.subject,
                    "value": a.value,
                    "threshold": a.threshold,
                    "message": a.message,
                }
                for a in session.scalars(stmt)
            ]


class JobRun(Base):
    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "slot", name="uq_job_runs_job_slot"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(64), index=True)
    slot: Mapped[str] = mapped_column(String(64))  # ISO UTC fire time, or "manual:<time>"
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # running|succeeded|failed|skipped
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    # Who ran the latest attempt (a scheduler's lease token, or host:pid by hand); a result
    # is recorded only by the attempt's owner, so a scheduler that lost its lease cannot
    # overwrite the run of the one that took over.
    owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    summary: Mapped[dict | None] = mapped_column(JSON, nullable=True)


FINISHED = ("succeeded", "failed", "skipped")


class RunLedger:
    """Every job run, UNIQUE per (job, slot): a finished slot never runs twice; a slot that
    started but never finished (its process died) is started again."""

    def __init__(self, engine: Engine | str) -> None:
        self.engine = create_engine(engine) if isinstance(engine, str) else engine

    def begin(self, job: str, slot: str, owner: str | None = None) -> bool:
        """Claim a slot for ``owner``; False if it already finished."""
        now = datetime.now(UTC)
        try:
            with Session(self.engine) as session, session.begin():
                session.add(
                    JobRun(
                        job=job,
                        slot=slot,
                        started_at=now,
                        status="running",
                        attempts=1,
                        owner=owner,
                    )
                )
            return True
        except IntegrityError:
            pass
        with Session(self.engine) as session, session.begin():
            result = session.execute(
                update(JobRun)
                .where(JobRun.job == job, JobRun.slot == slot, JobRun.status == "running")
                .values(started_at=now, attempts=JobRun.attempts + 1, owner=owner)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def finish(
        self,
        job: str,
        slot: str,
        status: str,
        *,
        summary: dict | None = None,
        error: str | None = None,
        owner: str | None = None,
    ) -> bool:
        """Record the end of the slot's running attempt; with ``owner``, only if that attempt
        is still ``owner``'s (False otherwise: another scheduler took the slot over)."""
        if status not in FINISHED:
            raise ValueError(f"status {status!r} must be one of {FINISHED}")
        stmt = update(JobRun).where(
            JobRun.job == job, JobRun.slot == slot, JobRun.status == "running"
        )
        if owner is not None:
            stmt = stmt.where(JobRun.owner == owner)
        with Session(self.engine) as session, session.begin():
            result = session.execute(
                stmt.values(
                    status=status, finished_at=datetime.now(UTC), summary=summary, error=error
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def record_skipped(self, job: str, slot: str, reason: str, owner: str | None = None) -> bool:
        if not self.begin(job, slot, owner):
            return False
        return self.finish(job, slot, "skipped", error=reason, owner=owner)

    def unfinished(self) -> list[tuple[str, str]]:
        with Session(self.engine) as session:
            rows = session.execute(
                select(JobRun.job, JobRun.slot)
                .where(JobRun.status == "running")
                .order_by(JobRun.slot)
            ).all()
        return [(job, slot) for job, slot in rows]

    def last_slot(self, job: str) -> str | None:
        """The newest scheduled (not manual) slot recorded for ``job``."""
        with Session(self.engine) as session:
            return session.scalar(
                select(JobRun.slot)
                .where(JobRun.job == job, ~JobRun.slot.like("manual:%"))
                .order_by(JobRun.slot.desc())
                .limit(1)
            )

    def history(self, job: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        stmt = select(JobRun).order_by(JobRun.id.desc()).limit(limit)
        if job:
            stmt = stmt.where(JobRun.job == job)
        with Session(self.engine) as session:
            return [
                {
                    "job": r.job,
                    "slot": r.slot,
                    "status": r.status,
                    "attempts": r.attempts,
                    "owner": r.owner,
                    "started_at": r.started_at,
                    "finished_at": r.finished_at,
                    "error": r.error,
                    "summary": r.summary,
                }
                for r in session.scalars(stmt)
            ]
