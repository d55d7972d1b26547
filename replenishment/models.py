"""The replenishment tables (SQLAlchemy): POs and their audit, stock positions, master data,
receipts, the ERP outbox, and rejected feed rows. Created by the Alembic migrations only."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "AuditEntry",
    "Base",
    "Delivery",
    "FeedReject",
    "ItemMaster",
    "PoLine",
    "PurchaseOrder",
    "Receipt",
    "StockPosition",
    "StoreMaster",
    "Unplanned",
]


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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # A planner edit after approval makes a new revision: a new version for the ERP.
    revision: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    erp_ref: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    # When the ERP held this PO (it committed it, or acknowledged it): from then on the
    # ERP's stock position counts it, so the plan must stop adding it itself.
    erp_known_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # A planner may put a PO aside until a day; it stays in its status meanwhile.
    snoozed_until: Mapped[date | None] = mapped_column(Date, nullable=True, default=None)
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
    received_quantity: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    confirmed_quantity: Mapped[float | None] = mapped_column(Float, nullable=True)
    confirmed_delivery: Mapped[date | None] = mapped_column(Date, nullable=True)
    po: Mapped[PurchaseOrder] = relationship(back_populates="lines")


class AuditEntry(Base):
    __tablename__ = "po_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    po_id: Mapped[int | None] = mapped_column(Integer, index=True, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict] = mapped_column(JSON)


class Unplanned(Base):
    """A store×SKU a plan did not size, and why (no position, no rule, no forecast)."""

    __tablename__ = "po_unplanned"

    plan_date: Mapped[date] = mapped_column(Date, primary_key=True)
    store_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sku_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32), index=True)
    detail: Mapped[str] = mapped_column(String(256))


class Delivery(Base):
    """The outbox: one row per PO version to send to the ERP, written with the approval."""

    __tablename__ = "erp_outbox"
    __table_args__ = (Index("ix_erp_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    po_id: Mapped[int] = mapped_column(Integer, index=True)
    revision: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16))  # pending, delivered, dead, cancelled
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    dead_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    adapter: Mapped[str | None] = mapped_column(String(16), nullable=True)
    erp_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    payload: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Receipt(Base):
    """A goods-receipt line from the ERP; (receipt_id, po_id, sku_id) makes a resend a
    duplicate."""

    __tablename__ = "po_receipts"
    __table_args__ = (UniqueConstraint("receipt_id", "po_id", "sku_id", name="uq_po_receipts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    receipt_id: Mapped[str] = mapped_column(String(64))
    po_id: Mapped[int] = mapped_column(Integer, index=True)
    store_id: Mapped[str] = mapped_column(String(64))
    sku_id: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[float] = mapped_column(Float)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ingested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StockPosition(Base):
    """Stock of a store×SKU at ``as_of`` from the ERP or the store system; every as_of is
    kept so that a plan for any date reads the latest position known by then."""

    __tablename__ = "stock_positions"

    store_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sku_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    as_of: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    on_hand: Mapped[float] = mapped_column(Float)
    on_order: Mapped[float] = mapped_column(Float)
    in_transit: Mapped[float] = mapped_column(Float)
    backorders: Mapped[float] = mapped_column(Float)
    ingested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ItemMaster(Base):
    __tablename__ = "master_items"

    sku_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    unit: Mapped[str] = mapped_column(String(32))
    department: Mapped[str | None] = mapped_column(String(128), nullable=True)
    category: Mapped[str | None] = mapped_column(String(128), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StoreMaster(Base):
    __tablename__ = "master_stores"

    store_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    region: Mapped[str | None] = mapped_column(String(128), nullable=True)
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FeedReject(Base):
    """A rejected row of a stock, master-data, receipt or acknowledgement feed, kept with
    the rule it broke and the row as received; ``reject_id`` identifies the row
    (:mod:`kernel.rejects`) so that a row delivered again is kept once per feed (rows
    stored before it existed have none)."""

    __tablename__ = "feed_rejects"
    __table_args__ = (Index("ux_feed_rejects_feed_reject_id", "feed", "reject_id", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feed: Mapped[str] = mapped_column(String(16), index=True)
    batch_id: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[str | None] = mapped_column(String(512), nullable=True)
    line: Mapped[int | None] = mapped_column(Integer, nullable=True)
    key: Mapped[str | None] = mapped_column(String(256), nullable=True)
    rule: Mapped[str] = mapped_column(String(64), index=True)
    field: Mapped[str | None] = mapped_column(String(64), nullable=True)
    value: Mapped[str | None] = mapped_column(Text, nullable=True)
    message: Mapped[str] = mapped_column(Text)
    payload: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reject_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
