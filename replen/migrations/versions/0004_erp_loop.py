"""ERP loop: stock positions, item/store master data, PO revisions and receipts, the ERP
outbox, unplanned store×SKUs, rejected feed rows, supplier names

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Idempotent: a database adopted at the baseline (tables made by create_all) may already
# have some of these tables and columns.
def _tables() -> set[str]:
    return set(sa.inspect(op.get_bind()).get_table_names())


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def _indexes(table: str) -> set[str]:
    return {str(i["name"]) for i in sa.inspect(op.get_bind()).get_indexes(table)}


def _index(table: str, name: str, columns: list[str], unique: bool = False) -> None:
    if name not in _indexes(table):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, columns, unique=unique)


def upgrade() -> None:
    tables = _tables()
    if "erp_outbox" not in tables:
        op.create_table(
            "erp_outbox",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("po_id", sa.Integer(), nullable=False),
            sa.Column("revision", sa.Integer(), nullable=False),
            sa.Column("idempotency_key", sa.String(length=64), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("attempts", sa.Integer(), nullable=False),
            sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("lease_owner", sa.String(length=64), nullable=True),
            sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
            sa.Column("last_error", sa.Text(), nullable=True),
            sa.Column("dead_reason", sa.Text(), nullable=True),
            sa.Column("adapter", sa.String(length=16), nullable=True),
            sa.Column("erp_ref", sa.String(length=64), nullable=True),
            sa.Column("payload", sa.JSON(), nullable=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("idempotency_key"),
        )
    _index("erp_outbox", "ix_erp_outbox_due", ["status", "next_attempt_at"])
    _index("erp_outbox", "ix_erp_outbox_po_id", ["po_id"])

    if "feed_rejects" not in tables:
        op.create_table(
            "feed_rejects",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("feed", sa.String(length=16), nullable=False),
            sa.Column("batch_id", sa.String(length=64), nullable=False),
            sa.Column("source", sa.String(length=512), nullable=True),
            sa.Column("line", sa.Integer(), nullable=True),
            sa.Column("key", sa.String(length=256), nullable=True),
            sa.Column("rule", sa.String(length=64), nullable=False),
            sa.Column("field", sa.String(length=64), nullable=True),
            sa.Column("value", sa.Text(), nullable=True),
            sa.Column("message", sa.Text(), nullable=False),
            sa.Column("payload", sa.Text(), nullable=True),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
    _index("feed_rejects", "ix_feed_rejects_batch_id", ["batch_id"])
    _index("feed_rejects", "ix_feed_rejects_feed", ["feed"])
    _index("feed_rejects", "ix_feed_rejects_rule", ["rule"])

    if "master_items" not in tables:
        op.create_table(
            "master_items",
            sa.Column("sku_id", sa.String(length=64), nullable=False),
            sa.Column("name", sa.String(length=256), nullable=False),
            sa.Column("description", sa.Text(), nullable=True),
            sa.Column("unit", sa.String(length=32), nullable=False),
            sa.Column("department", sa.String(length=128), nullable=True),
            sa.Column("category", sa.String(length=128), nullable=True),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("sku_id"),
        )
    if "master_stores" not in tables:
        op.create_table(
            "master_stores",
            sa.Column("store_id", sa.String(length=64), nullable=False),
            sa.Column("name", sa.String(length=256), nullable=False),
            sa.Column("region", sa.String(length=128), nullable=True),
            sa.Column("timezone", sa.String(length=64), nullable=True),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("store_id"),
        )
    if "po_receipts" not in tables:
        op.create_table(
            "po_receipts",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("receipt_id", sa.String(length=64), nullable=False),
            sa.Column("po_id", sa.Integer(), nullable=False),
            sa.Column("store_id", sa.String(length=64), nullable=False),
            sa.Column("sku_id", sa.String(length=64), nullable=False),
            sa.Column("quantity", sa.Float(), nullable=False),
            sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("receipt_id", "po_id", "sku_id", name="uq_po_receipts"),
        )
    _index("po_receipts", "ix_po_receipts_po_id", ["po_id"])

    if "po_unplanned" not in tables:
        op.create_table(
            "po_unplanned",
            sa.Column("plan_date", sa.Date(), nullable=False),
            sa.Column("store_id", sa.String(length=64), nullable=False),
            sa.Column("sku_id", sa.String(length=64), nullable=False),
            sa.Column("reason", sa.String(length=32), nullable=False),
            sa.Column("detail", sa.String(length=256), nullable=False),
            sa.PrimaryKeyConstraint("plan_date", "store_id", "sku_id"),
        )
    _index("po_unplanned", "ix_po_unplanned_reason", ["reason"])

    if "stock_positions" not in tables:
        op.create_table(
            "stock_positions",
            sa.Column("store_id", sa.String(length=64), nullable=False),
            sa.Column("sku_id", sa.String(length=64), nullable=False),
            sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
            sa.Column("on_hand", sa.Float(), nullable=False),
            sa.Column("on_order", sa.Float(), nullable=False),
            sa.Column("in_transit", sa.Float(), nullable=False),
            sa.Column("backorders", sa.Float(), nullable=False),
            sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("store_id", "sku_id", "as_of"),
        )

    have = _columns("po_lines")
    with op.batch_alter_table("po_lines", schema=None) as batch_op:
        if "received_quantity" not in have:
            batch_op.add_column(
                sa.Column("received_quantity", sa.Float(), server_default="0", nullable=False)
            )
        if "confirmed_quantity" not in have:
            batch_op.add_column(sa.Column("confirmed_quantity", sa.Float(), nullable=True))
        if "confirmed_delivery" not in have:
            batch_op.add_column(sa.Column("confirmed_delivery", sa.Date(), nullable=True))

    have = _columns("purchase_orders")
    with op.batch_alter_table("purchase_orders", schema=None) as batch_op:
        if "revision" not in have:
            batch_op.add_column(
                sa.Column("revision", sa.Integer(), server_default="1", nullable=False)
            )
        if "erp_ref" not in have:
            batch_op.add_column(sa.Column("erp_ref", sa.String(length=64), nullable=True))
        if "erp_known_at" not in have:
            batch_op.add_column(
                sa.Column("erp_known_at", sa.DateTime(timezone=True), nullable=True)
            )
        if "acknowledged_at" not in have:
            batch_op.add_column(
                sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True)
            )
    _index("purchase_orders", "ix_purchase_orders_erp_ref", ["erp_ref"])

    if "name" not in _columns("rules_suppliers"):
        with op.batch_alter_table("rules_suppliers", schema=None) as batch_op:
            batch_op.add_column(sa.Column("name", sa.String(length=256), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rules_suppliers", schema=None) as batch_op:
        batch_op.drop_column("name")
    with op.batch_alter_table("purchase_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_purchase_orders_erp_ref")
        for column in ("acknowledged_at", "erp_known_at", "erp_ref", "revision"):
            batch_op.drop_column(column)
    with op.batch_alter_table("po_lines", schema=None) as batch_op:
        for column in ("confirmed_delivery", "confirmed_quantity", "received_quantity"):
            batch_op.drop_column(column)
    for table in (
        "stock_positions",
        "po_unplanned",
        "po_receipts",
        "master_stores",
        "master_items",
        "feed_rejects",
        "erp_outbox",
    ):
        op.drop_table(table)
