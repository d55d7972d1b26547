"""What the planner's review keeps in the database: held POs, exception marks, and the
read queries the worklist needs over the PO store (lines as one frame, the plan before)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    cast,
    delete,
    func,
    or_,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from kernel.errors import InvalidInput
from kernel.sql import engine_for, write_session
from replenishment.explain import explanation_record
from replenishment.orders import (
    ORDERED_SCHEMA,
    PO_SCHEMA,
    AuditEntry,
    PoLine,
    PurchaseOrder,
)

__all__ = ["MARK_STATES", "Base", "ExceptionMark", "HeldOrder", "ReviewStore"]

MARK_STATES = ("confirmed", "snoozed")
MARKS_LOOKBACK_DAYS = 90


class Base(DeclarativeBase):
    pass


class ExceptionMark(Base):
    """A planner's answer to an exception: confirmed for its day, or snoozed until a day."""

    __tablename__ = "exception_marks"
    __table_args__ = (Index("ix_exception_marks_type_subject", "type", "subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(160))
    day: Mapped[date | None] = mapped_column(Date, nullable=True)
    state: Mapped[str] = mapped_column(String(16))
    until: Mapped[date | None] = mapped_column(Date, nullable=True)
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class HeldOrder(Base):
    """A PO the plan held back under its supplier's minimum order value, with its lines."""

    __tablename__ = "held_orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_date: Mapped[date] = mapped_column(Date, index=True)
    supplier_id: Mapped[str] = mapped_column(String(64))
    store_id: Mapped[str] = mapped_column(String(64))
    order_date: Mapped[date] = mapped_column(Date)
    expected_delivery: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    value: Mapped[float] = mapped_column(Float)
    min_order_value: Mapped[float] = mapped_column(Float)
    lines: Mapped[list] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


LINE_SCHEMA: dict[str, Any] = {
    **PO_SCHEMA,
    "stale": pl.Boolean,
    "snoozed_until": pl.Date,
    "currency": pl.String,
    "po_value": pl.Float64,
    "model_version": pl.String,
    **ORDERED_SCHEMA,
}
# Explanation fields the worklist reads (the rest stays in the JSON for the detail view).
_EXPLAINED = {
    "demand_mean": pl.Float64,
    "demand_sd": pl.Float64,
    "protection_days": pl.Float64,
    "position": pl.Float64,
}


class ReviewStore:
    """Held POs and exception marks; read queries over the PO tables (same database)."""

    def __init__(self, engine: Engine | str) -> None:
        self.engine = engine_for(engine)

    # Held POs -------------------------------------------------------------------------------
    def replace_held(self, plan_date: date, held_lines: pl.DataFrame) -> int:
        """Store the POs held on ``plan_date`` (replacing that day's); returns how many.

        ``held_lines``: one row per line that would be ordered if the PO were released
        (``supplier_id, store_id, order_date, expected_delivery, currency, min_order_value,
        sku_id, quantity, unit_cost`` and the explanation fields).
        """
        now = datetime.now(UTC)
        with write_session(self.engine) as session:
            session.execute(delete(HeldOrder).where(HeldOrder.plan_date == plan_date))
            if held_lines.is_empty():
                return 0
            n = 0
            keys = ["supplier_id", "store_id", "order_date"]
            for _, po in held_lines.sort("sku_id").group_by(keys, maintain_order=True):
                rows = po.to_dicts()
                lines = [
                    {
                        "sku_id": r["sku_id"],
                        "quantity": int(r["quantity"]),
                        "unit_cost": float(r["unit_cost"]),
                        "value": round(float(r["quantity"] * r["unit_cost"]), 2),
                        "explanation": explanation_record(r),
                    }
                    for r in rows
                ]
                head = rows[0]
                session.add(
                    HeldOrder(
                        plan_date=plan_date,
                        supplier_id=head["supplier_id"],
                        store_id=head["store_id"],
                        order_date=head["order_date"],
                        expected_delivery=max(r["expected_delivery"] for r in rows),
                        currency=head["currency"],
                        value=round(sum(x["value"] for x in lines), 2),
                        min_order_value=float(head["min_order_value"]),
                        lines=lines,
                        created_at=now,
                    )
                )
                n += 1
        return n

    def held(self, plan_date: date | None = None) -> list[dict[str, Any]]:
        """Held POs, newest plan first (``plan_date`` None: the newest plan that held any)."""
        with Session(self.engine) as session:
            if plan_date is None:
                plan_date = session.scalar(select(func.max(HeldOrder.plan_date)))
                if plan_date is None:
                    return []
            rows = session.scalars(
                select(HeldOrder)
                .where(HeldOrder.plan_date == plan_date)
                .order_by(HeldOrder.supplier_id, HeldOrder.store_id)
            ).all()
            return [
                {
                    "held_id": h.id,
                    "plan_date": h.plan_date,
                    "supplier_id": h.supplier_id,
                    "store_id": h.store_id,
                    "order_date": h.order_date,
                    "expected_delivery": h.expected_delivery,
                    "currency": h.currency,
                    "value": h.value,
                    "min_order_value": h.min_order_value,
                    "lines": h.lines,
                }
                for h in rows
            ]

    # Exception marks ------------------------------------------------------------------------
    def mark(
        self,
        type_: str,
        subject: str,
        *,
        state: str,
        actor: str,
        day: date | None = None,
        until: date | None = None,
        note: str | None = None,
    ) -> int:
        """Confirm an exception for its ``day``, or snooze it until ``until``."""
        if state not in MARK_STATES:
            raise InvalidInput(
                f"state={state!r} must be one of {MARK_STATES}",
                field="state",
                value=state,
                rule="state.enum",
            )
        if state == "snoozed" and until is None:
            raise InvalidInput(
                "snoozing needs a day to wake up", field="until", rule="until.required"
            )
        if state == "confirmed" and day is None:
            raise InvalidInput("confirming needs the exception's day", field="day")
        with write_session(self.engine) as session:
            mark = ExceptionMark(
                type=type_,
                subject=subject,
                day=day,
                state=state,
                until=until,
                actor=actor,
                at=datetime.now(UTC),
                note=note,
            )
            session.add(mark)
            session.flush()
            return mark.id

    def active_marks(self, today: date) -> pl.DataFrame:
        """Marks in force on ``today``: ``type, subject, day, state, until, actor, at``.

        A confirmation holds for the exception's own day; a snooze for every day up to and
        including ``until``. The newest mark of a key wins.
        """
        stmt = (
            select(ExceptionMark)
            .where(
                or_(
                    # An exception's day is its plan's or today: older confirmations
                    # cannot match an exception still listed — except a suspect block of
                    # history, dated by its first day however old, confirmed once for good.
                    (ExceptionMark.state == "confirmed")
                    & (
                        (ExceptionMark.day >= today - timedelta(days=MARKS_LOOKBACK_DAYS))
                        | (ExceptionMark.type == "suspect_history")
                    ),
                    ExceptionMark.until >= today,
                )
            )
            .order_by(ExceptionMark.id)
        )
        with Session(self.engine) as session:
            rows = [
                {
                    "type": m.type,
                    "subject": m.subject,
                    "day": m.day,
                    "state": m.state,
                    "until": m.until,
                    "actor": m.actor,
                    "at": m.at,
                }
                for m in session.scalars(stmt)
            ]
        return pl.DataFrame(
            rows,
            schema={
                "type": pl.String,
                "subject": pl.String,
                "day": pl.Date,
                "state": pl.String,
                "until": pl.Date,
                "actor": pl.String,
                "at": pl.Datetime("us", "UTC"),
            },
        )

    # Reads over the PO store -----------------------------------------------------------------
    def line_frame(
        self,
        *,
        plan_date: date | None = None,
        po_ids: list[int] | None = None,
        status: list[str] | None = None,
        store_id: str | None = None,
        sku_id: str | None = None,
    ) -> pl.DataFrame:
        """PO lines with their header and the explanation fields the worklist reads.

        The database reads the explanation's fields and gives dates as text, parsed by
        polars in one go: per-row JSON and date decoding in Python costs seconds at 10,000
        lines.
        """
        po, ln = PurchaseOrder, PoLine
        text = {"plan_date", "order_date", "expected_delivery", "snoozed_until"}
        header = [
            cast(getattr(po, c), String) if c in text else getattr(po, c)
            for c in (
                "id",
                "plan_date",
                "supplier_id",
                "store_id",
                "order_date",
                "expected_delivery",
                "status",
                "stale",
                "snoozed_until",
                "currency",
                "value",
                "model_version",
            )
        ]
        stmt = select(
            *header,
            ln.sku_id,
            ln.quantity,
            ln.suggested_quantity,
            ln.unit_cost,
            ln.value,
            *self._explained(),
        ).join(ln, ln.po_id == po.id)
        if plan_date is not None:
            stmt = stmt.where(po.plan_date == plan_date)
        if po_ids is not None:
            stmt = stmt.where(po.id.in_(po_ids))
        if status:
            stmt = stmt.where(po.status.in_(status))
        if store_id is not None:
            stmt = stmt.where(po.store_id == store_id)
        if sku_id is not None:
            stmt = stmt.where(ln.sku_id == sku_id)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt.order_by(po.id, ln.sku_id)).all()
        raw_schema = {c: (pl.String if t == pl.Date else t) for c, t in LINE_SCHEMA.items()}
        if self._sqlite:
            frame = (
                pl.DataFrame(rows, schema=raw_schema | {"_explained": pl.String}, orient="row")
                .with_columns(
                    pl.col("_explained")
                    .str.json_decode(pl.List(pl.Float64))
                    .list.to_struct(fields=list(_EXPLAINED))
                    .struct.unnest()
                )
                .drop("_explained")
            )
        else:
            frame = pl.DataFrame(rows, schema=raw_schema | _EXPLAINED, orient="row")
        return frame.with_columns(
            [pl.col(c).str.to_date() for c, t in LINE_SCHEMA.items() if t == pl.Date]
        )

    @property
    def _sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def _explained(self) -> list[Any]:
        """The explanation's worklist fields, read by the database: SQLite parses each
        document once (one ``json_extract`` with several paths gives an array); others
        use ``->>`` per field. Decoding 10,000 documents in Python costs seconds."""
        doc = PoLine.explanation
        if self._sqlite:
            return [func.json_extract(doc, *[f"$.{k}" for k in _EXPLAINED], type_=String)]
        return [doc[key].as_float() for key in _EXPLAINED]

    def latest_plan_date(self) -> date | None:
        with Session(self.engine) as session:
            return session.scalar(select(func.max(PurchaseOrder.plan_date)))

    def previous_quantities(self, plan_date: date) -> pl.DataFrame:
        """Quantities of the newest plan before ``plan_date``: ``store_id, sku_id,
        previous_quantity, previous_plan_date`` (empty when there is no earlier plan)."""
        po, ln = PurchaseOrder, PoLine
        with self.engine.connect() as conn:
            before = conn.scalar(select(func.max(po.plan_date)).where(po.plan_date < plan_date))
            rows = (
                conn.execute(
                    select(po.store_id, ln.sku_id, func.sum(ln.suggested_quantity))
                    .join(ln, ln.po_id == po.id)
                    .where(po.plan_date == before)
                    .group_by(po.store_id, ln.sku_id)
                ).all()
                if before is not None
                else []
            )
        return pl.DataFrame(
            [(s, k, int(q), before) for s, k, q in rows],
            schema={
                "store_id": pl.String,
                "sku_id": pl.String,
                "previous_quantity": pl.Int64,
                "previous_plan_date": pl.Date,
            },
            orient="row",
        )

    def stale_plans(self) -> pl.DataFrame:
        """Plan dates whose open suggestions were marked stale (a later plan failed)."""
        po = PurchaseOrder
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(po.plan_date, func.count())
                .where(po.stale.is_(True), po.status == "suggested")
                .group_by(po.plan_date)
            ).all()
        return pl.DataFrame(
            [(d, n, "the plan after it failed; these suggestions are stale") for d, n in rows],
            schema={"plan_date": pl.Date, "purchase_orders": pl.Int64, "reason": pl.String},
            orient="row",
        )

    def changed_lines(self) -> pl.DataFrame:
        """Lines whose quantity a planner changed, on POs that were approved (or later),
        with the last editor from the audit trail and the forecast they were sized on."""
        po, ln = PurchaseOrder, PoLine
        with Session(self.engine) as session:
            lines = session.execute(
                select(
                    po.id,
                    po.plan_date,
                    po.store_id,
                    po.supplier_id,
                    po.model_version,
                    ln.sku_id,
                    ln.suggested_quantity,
                    ln.quantity,
                    ln.explanation,
                )
                .join(ln, ln.po_id == po.id)
                .where(
                    ln.quantity != ln.suggested_quantity,
                    po.status.in_(("approved", "exported", "acknowledged")),
                )
            ).all()
            ids = sorted({r[0] for r in lines})
            editors: dict[tuple[int, str], str] = {}
            if ids:
                for a in session.scalars(
                    select(AuditEntry)
                    .where(AuditEntry.po_id.in_(ids), AuditEntry.action == "edit")
                    .order_by(AuditEntry.id)
                ):
                    editors[(int(a.po_id or 0), str(a.detail.get("sku_id")))] = a.actor
        return pl.DataFrame(
            [
                {
                    "po_id": r[0],
                    "plan_date": r[1],
                    "store_id": r[2],
                    "supplier_id": r[3],
                    "model_version": r[4],
                    "sku_id": r[5],
                    "suggested_quantity": r[6],
                    "quantity": r[7],
                    "demand_mean": float(r[8].get("demand_mean") or 0.0),
                    "protection_days": float(r[8].get("protection_days") or 1.0),
                    "planner": editors.get((r[0], r[5]), "?"),
                }
                for r in lines
            ],
            schema={
                "po_id": pl.Int64,
                "plan_date": pl.Date,
                "store_id": pl.String,
                "supplier_id": pl.String,
                "model_version": pl.String,
                "sku_id": pl.String,
                "suggested_quantity": pl.Int64,
                "quantity": pl.Int64,
                "demand_mean": pl.Float64,
                "protection_days": pl.Float64,
                "planner": pl.String,
            },
        )
