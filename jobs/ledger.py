"""Operational records in the database: alerts raised by monitors and jobs."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, Float, Integer, String, Text, create_engine, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

__all__ = ["Alert", "AlertStore"]


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
        Base.metadata.create_all(self.engine)

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
