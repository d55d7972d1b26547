"""PO store (SQLAlchemy): suggested POs with explained lines and an audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import polars as pl
from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    create_engine,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from kernel.errors import Conflict, InvalidInput, NotFound
from replenishment.explain import explanation_record
from replenishment.planner import Suggestion

__all__ = [
    "TRANSITIONS",
    "Base",
    "OrderError",
    "OrderStore",
    "PoLine",
    "PurchaseOrder",
    "ReplaceReport",
]

REVIEWED = ("approved", "rejected", "exported", "acknowledged")
# Status machine: who may follow whom.
TRANSITIONS = {
    "suggested": ("approved", "rejected"),
    "approved": ("exported", "rejected"),
    "exported": ("acknowledged",),
    "rejected": (),
    "acknowledged": (),
}


class OrderError(Conflict):
    """A PO action that the PO's state or the input does not allow; says what would."""


class Base(DeclarativeBase):
    pass


class PurchaseOrder(Base):
    __tablename__ = "purchase_orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_date: Mapped[date] = mapped_column(Date, index=True)
    supplier_id: Mapped[str] = mapped_column(String(64), index=True)
    store_id: Mapped[str] = mapped_column(String(64), index=True)
    order_date: Mapped[date] = mapped_column(Date)
    expected_delivery: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="suggested", index=True)
    currency: Mapped[str] = mapped_column(String(3))
    value: Mapped[float] = mapped_column(Float)
    model_version: Mapped[str] = mapped_column(String(32))
    stale: Mapped[bool] = mapped_column(default=False)
    # A planner may put a PO aside until a day; it stays in its status meanwhile.
    snoozed_until: Mapped[date | None] = mapped_column(Date, nullable=True, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lines: Mapped[list[PoLine]] = relationship(
        back_populates="po", cascade="all, delete-orphan", order_by="PoLine.sku_id"
    )


class PoLine(Base):
    __tablename__ = "po_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    po_id: Mapped[int] = mapped_column(
        ForeignKey("purchase_orders.id", ondelete="CASCADE"), index=True
    )
    sku_id: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    suggested_quantity: Mapped[int] = mapped_column(Integer)
    unit_cost: Mapped[float] = mapped_column(Float)
    value: Mapped[float] = mapped_column(Float)
    explanation: Mapped[dict] = mapped_column(JSON)
    po: Mapped[PurchaseOrder] = relationship(back_populates="lines")


class AuditEntry(Base):
    __tablename__ = "po_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    po_id: Mapped[int | None] = mapped_column(Integer, index=True, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict] = mapped_column(JSON)


@dataclass(frozen=True)
class ReplaceReport:
    created: int
    replaced: int
    kept_reviewed: int


class OrderStore:
    """Suggested POs in a SQL database (SQLite file by default, PostgreSQL by URL).

    The tables come from the migrations (``replen.db.upgrade``), never from this class."""

    def __init__(self, engine: Engine | str) -> None:
        self.engine = create_engine(engine) if isinstance(engine, str) else engine

    def replace_suggestions(
        self, plan_date: date, suggestion: Suggestion, actor: str = "planner-job"
    ) -> ReplaceReport:
        """Store today's suggestions in one transaction.

        Unreviewed suggestions of the same plan date are replaced; a supplier×store whose PO
        was already reviewed that day keeps it and gets no new suggestion.
        """
        now = datetime.now(UTC)
        with Session(self.engine) as session, session.begin():
            old = session.scalars(
                select(PurchaseOrder).where(PurchaseOrder.plan_date == plan_date)
            ).all()
            reviewed = {(p.supplier_id, p.store_id) for p in old if p.status in REVIEWED}
            stale = [p for p in old if p.status not in REVIEWED]
            for po in stale:
                session.delete(po)
            lines_by_po = suggestion.lines.partition_by(
                "supplier_id", "store_id", as_dict=True, maintain_order=True
            )
            created = 0
            for head in suggestion.headers.iter_rows(named=True):
                key = (head["supplier_id"], head["store_id"])
                if key in reviewed:
                    continue
                po = PurchaseOrder(
                    plan_date=plan_date,
                    supplier_id=head["supplier_id"],
                    store_id=head["store_id"],
                    order_date=head["order_date"],
                    expected_delivery=head["expected_delivery"],
                    status="suggested",
                    currency=head["currency"],
                    value=float(head["value"]),
                    model_version=str(head["model_version"]),
                    created_at=now,
                )
                for line in lines_by_po[key].iter_rows(named=True):
                    po.lines.append(
                        PoLine(
                            sku_id=line["sku_id"],
                            quantity=int(line["quantity"]),
                            suggested_quantity=int(line["quantity"]),
                            unit_cost=float(line["unit_cost"]),
                            value=float(line["value"]),
                            explanation=_explanation(line),
                        )
                    )
                session.add(po)
                created += 1
            session.flush()
            session.add(
                AuditEntry(
                    po_id=None,
                    at=now,
                    actor=actor,
                    action="plan",
                    detail={
                        "plan_date": plan_date.isoformat(),
                        "created": created,
                        "replaced": len(stale),
                        "kept_reviewed": len(reviewed),
                    },
                )
            )
        return ReplaceReport(created=created, replaced=len(stale), kept_reviewed=len(reviewed))

    # Review ---------------------------------------------------------------------------------
    def transition(
        self, po_id: int, to: str, actor: str, reason: str | None = None, detail: dict | None = None
    ) -> str:
        """Move a PO to status ``to`` (see ``TRANSITIONS``); audited. Returns the old status."""
        if to == "rejected" and not reason:
            raise InvalidInput(
                "rejecting a PO needs a reason",
                field="reason",
                rule="reason.required",
                hint="give one with --reason",
            )
        with Session(self.engine) as session, session.begin():
            po = self._po(session, po_id)
            allowed = TRANSITIONS.get(po.status, ())
            if to not in allowed:
                raise OrderError(
                    f"PO {po_id} is {po.status}; it can become "
                    f"{' or '.join(allowed) if allowed else 'nothing else'}, not {to}"
                )
            before = po.status
            po.status = to
            session.add(
                AuditEntry(
                    po_id=po_id,
                    at=datetime.now(UTC),
                    actor=actor,
                    action=to,
                    detail={"from": before, "to": to, "reason": reason, **(detail or {})},
                )
            )
        return before

    def edit_line(
        self, po_id: int, sku_id: str, quantity: int, actor: str, reason: str
    ) -> tuple[int, int]:
        """Change a suggested line's quantity (reason required); returns (old, new)."""
        if not reason:
            raise InvalidInput(
                "an edit needs a reason, kept in the audit trail",
                field="reason",
                rule="reason.required",
                hint="give one with --reason",
            )
        if quantity < 0:
            raise InvalidInput(
                f"quantity={quantity} must be >= 0 units",
                field="quantity",
                value=quantity,
                rule="quantity.nonnegative",
            )
        with Session(self.engine) as session, session.begin():
            po = self._po(session, po_id)
            if po.status != "suggested":
                raise OrderError(f"PO {po_id} is {po.status}; only suggested POs can be edited")
            line = next((x for x in po.lines if x.sku_id == sku_id), None)
            if line is None:
                raise NotFound(
                    f"PO {po_id} has no line for sku_id={sku_id!r}; lines: "
                    f"{[x.sku_id for x in po.lines]}"
                )
            old = line.quantity
            line.quantity = quantity
            line.value = quantity * line.unit_cost
            po.value = sum(x.value for x in po.lines)
            session.add(
                AuditEntry(
                    po_id=po_id,
                    at=datetime.now(UTC),
                    actor=actor,
                    action="edit",
                    detail={"sku_id": sku_id, "from": old, "to": quantity, "reason": reason},
                )
            )
        return old, quantity

    def snooze(self, po_id: int, until: date | None, actor: str, reason: str | None = None) -> None:
        """Put a suggested PO aside until ``until`` (None wakes it now); audited."""
        with Session(self.engine) as session, session.begin():
            po = self._po(session, po_id)
            if po.status != "suggested":
                raise OrderError(f"PO {po_id} is {po.status}; only suggested POs can be snoozed")
            before = po.snoozed_until
            po.snoozed_until = until
            session.add(
                AuditEntry(
                    po_id=po_id,
                    at=datetime.now(UTC),
                    actor=actor,
                    action="snooze" if until else "wake",
                    detail={
                        "from": before.isoformat() if before else None,
                        "until": until.isoformat() if until else None,
                        "reason": reason,
                    },
                )
            )

    def history(self, po_id: int) -> list[dict]:
        """The PO's audit trail, oldest first."""
        with Session(self.engine) as session:
            self._po(session, po_id)
            return [
                {"at": a.at, "actor": a.actor, "action": a.action, "detail": a.detail}
                for a in session.scalars(
                    select(AuditEntry).where(AuditEntry.po_id == po_id).order_by(AuditEntry.id)
                )
            ]

    @staticmethod
    def _po(session: Session, po_id: int) -> PurchaseOrder:
        po = session.get(PurchaseOrder, po_id)
        if po is None:
            raise NotFound(f"no purchase order with id {po_id}", hint="see `replen orders list`")
        return po

    def open_on_order(self, as_of: date) -> pl.DataFrame:
        """Units on POs approved here but not yet exported, due after ``as_of``, per
        store×SKU. Exported POs are in the ERP and so already in its on-order figure; these
        are not yet, and must count in the position or the next plan would order twice."""
        stmt = (
            select(PurchaseOrder.store_id, PoLine.sku_id, PoLine.quantity)
            .join(PoLine)
            .where(
                PurchaseOrder.status == "approved",
                PurchaseOrder.expected_delivery > as_of,
            )
        )
        with Session(self.engine) as session:
            rows = session.execute(stmt).all()
        frame = pl.DataFrame(
            rows,
            schema={"store_id": pl.String, "sku_id": pl.String, "quantity": pl.Int64},
            orient="row",
        )
        return frame.group_by("store_id", "sku_id").agg(
            pl.col("quantity").sum().cast(pl.Float64).alias("po_on_order")
        )

    def mark_stale(self, actor: str = "planner-job") -> int:
        """Flag every unreviewed suggestion as stale (today's plan failed); returns POs."""
        now = datetime.now(UTC)
        with Session(self.engine) as session, session.begin():
            result = session.execute(
                update(PurchaseOrder).where(PurchaseOrder.status == "suggested").values(stale=True)
            )
            n = int(result.rowcount)  # type: ignore[attr-defined]
            session.add(
                AuditEntry(
                    po_id=None,
                    at=now,
                    actor=actor,
                    action="mark_stale",
                    detail={"purchase_orders": n},
                )
            )
        return n

    def purchase_orders(self, plan_date: date | None = None) -> pl.DataFrame:
        """Headers as a frame (one row per PO)."""
        stmt = select(PurchaseOrder)
        if plan_date is not None:
            stmt = stmt.where(PurchaseOrder.plan_date == plan_date)
        with Session(self.engine) as session:
            rows = [
                {
                    "po_id": p.id,
                    "plan_date": p.plan_date,
                    "supplier_id": p.supplier_id,
                    "store_id": p.store_id,
                    "order_date": p.order_date,
                    "expected_delivery": p.expected_delivery,
                    "status": p.status,
                    "lines": len(p.lines),
                    "value": p.value,
                    "currency": p.currency,
                    "model_version": p.model_version,
                    "stale": p.stale,
                }
                for p in session.scalars(stmt.order_by(PurchaseOrder.id))
            ]
        return pl.DataFrame(rows, schema=_HEADER_SCHEMA)

    def po_lines(self, plan_date: date | None = None) -> pl.DataFrame:
        """Lines with their explanation fields flattened into columns."""
        stmt = select(PoLine, PurchaseOrder).join(PurchaseOrder)
        if plan_date is not None:
            stmt = stmt.where(PurchaseOrder.plan_date == plan_date)
        with Session(self.engine) as session:
            rows = [
                {
                    # The explanation's "quantity" is the suggestion; the line's own
                    # (possibly edited) quantity wins.
                    **line.explanation,
                    "po_id": po.id,
                    "status": po.status,
                    "supplier_id": po.supplier_id,
                    "store_id": po.store_id,
                    "sku_id": line.sku_id,
                    "quantity": line.quantity,
                    "suggested_quantity": line.suggested_quantity,
                    "unit_cost": line.unit_cost,
                    "value": line.value,
                    "model_version": po.model_version,
                }
                for line, po in session.execute(stmt.order_by(PoLine.id)).all()
            ]
        if not rows:  # no lines yet: still the columns every reader selects
            return pl.DataFrame(schema=_LINE_SCHEMA)
        return pl.DataFrame(rows, infer_schema_length=None)

    def audit(self) -> list[dict]:
        with Session(self.engine) as session:
            return [
                {
                    "po_id": a.po_id,
                    "at": a.at,
                    "actor": a.actor,
                    "action": a.action,
                    "detail": a.detail,
                }
                for a in session.scalars(select(AuditEntry).order_by(AuditEntry.id))
            ]


_LINE_SCHEMA = {
    "po_id": pl.Int64,
    "status": pl.String,
    "supplier_id": pl.String,
    "store_id": pl.String,
    "sku_id": pl.String,
    "quantity": pl.Int64,
    "suggested_quantity": pl.Int64,
    "unit_cost": pl.Float64,
    "value": pl.Float64,
    "model_version": pl.String,
}
_HEADER_SCHEMA = {
    "po_id": pl.Int64,
    "plan_date": pl.Date,
    "supplier_id": pl.String,
    "store_id": pl.String,
    "order_date": pl.Date,
    "expected_delivery": pl.Date,
    "status": pl.String,
    "lines": pl.Int64,
    "value": pl.Float64,
    "currency": pl.String,
    "model_version": pl.String,
    "stale": pl.Boolean,
}


def _explanation(line: dict) -> dict:
    return explanation_record(line)
