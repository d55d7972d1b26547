"""planner review: PO snooze, held POs, exception marks

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 05:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Idempotent: a database adopted at the baseline may have these already.
    inspector = sa.inspect(op.get_bind())
    tables = set(inspector.get_table_names())
    columns = {c["name"] for c in inspector.get_columns("purchase_orders")}
    if "snoozed_until" not in columns:
        with op.batch_alter_table("purchase_orders", schema=None) as batch_op:
            batch_op.add_column(sa.Column("snoozed_until", sa.Date(), nullable=True))
    if "exception_marks" not in tables:
        op.create_table(
            "exception_marks",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("type", sa.String(length=32), nullable=False),
            sa.Column("subject", sa.String(length=160), nullable=False),
            sa.Column("day", sa.Date(), nullable=True),
            sa.Column("state", sa.String(length=16), nullable=False),
            sa.Column("until", sa.Date(), nullable=True),
            sa.Column("actor", sa.String(length=64), nullable=False),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("note", sa.Text(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_exception_marks_type_subject", "exception_marks", ["type", "subject"])
    if "held_orders" not in tables:
        op.create_table(
            "held_orders",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("plan_date", sa.Date(), nullable=False),
            sa.Column("supplier_id", sa.String(length=64), nullable=False),
            sa.Column("store_id", sa.String(length=64), nullable=False),
            sa.Column("order_date", sa.Date(), nullable=False),
            sa.Column("expected_delivery", sa.Date(), nullable=False),
            sa.Column("currency", sa.String(length=3), nullable=False),
            sa.Column("value", sa.Float(), nullable=False),
            sa.Column("min_order_value", sa.Float(), nullable=False),
            sa.Column("lines", sa.JSON(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_held_orders_plan_date", "held_orders", ["plan_date"])


def downgrade() -> None:
    op.drop_index("ix_held_orders_plan_date", table_name="held_orders")
    op.drop_table("held_orders")
    op.drop_index("ix_exception_marks_type_subject", table_name="exception_marks")
    op.drop_table("exception_marks")
    with op.batch_alter_table("purchase_orders", schema=None) as batch_op:
        batch_op.drop_column("snoozed_until")
