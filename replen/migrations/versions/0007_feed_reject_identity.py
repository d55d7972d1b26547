"""feed rejects: an identity per rejected row, so that a row delivered again is kept once

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 09:00:00
"""

from collections.abc import Sequence

import polars as pl
import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "ux_feed_rejects_feed_reject_id"


def upgrade() -> None:
    # Idempotent: a database adopted at the baseline may have these already.
    from kernel.rejects import reject_ids

    bind = op.get_bind()
    inspector = sa.inspect(bind)
    if "feed_rejects" not in set(inspector.get_table_names()):
        return
    columns = {c["name"] for c in inspector.get_columns("feed_rejects")}
    if "reject_id" not in columns:
        with op.batch_alter_table("feed_rejects", schema=None) as batch_op:
            batch_op.add_column(sa.Column("reject_id", sa.String(length=80), nullable=True))
    # Rows stored before: numbered within their batch, as the delivery would number them
    # now. A row that an earlier batch already holds (the same row delivered twice before
    # this fix) keeps no id: it stays listed, and a new delivery matches the first one.
    table = sa.table(
        "feed_rejects",
        sa.column("id", sa.Integer),
        sa.column("feed", sa.String),
        sa.column("batch_id", sa.String),
        sa.column("key", sa.String),
        sa.column("rule", sa.String),
        sa.column("payload", sa.Text),
        sa.column("reject_id", sa.String),
    )
    rows = bind.execute(
        sa.select(
            table.c.id, table.c.feed, table.c.batch_id, table.c.key, table.c.rule, table.c.payload
        )
        .where(table.c.reject_id.is_(None))
        .order_by(table.c.id)
    ).all()
    taken: set[tuple[str, str]] = {
        (f, r)
        for f, r in bind.execute(
            sa.select(table.c.feed, table.c.reject_id).where(table.c.reject_id.is_not(None))
        ).all()
    }
    if rows:
        frame = pl.DataFrame(
            [tuple(r) for r in rows],
            schema=["id", "feed", "batch_id", "key", "rule", "payload"],
            orient="row",
        )
        updates = []
        for (_batch,), part in frame.group_by(["batch_id"], maintain_order=True):
            ids = reject_ids(part, "key")
            for row_id, feed, rid in zip(part["id"], part["feed"], ids, strict=True):
                if (feed, rid) not in taken:
                    taken.add((feed, rid))
                    updates.append({"row_id": row_id, "rid": rid})
        if updates:
            bind.execute(
                sa.update(table)
                .where(table.c.id == sa.bindparam("row_id"))
                .values(reject_id=sa.bindparam("rid")),
                updates,
            )
    indexes = {i["name"] for i in sa.inspect(bind).get_indexes("feed_rejects")}
    if _INDEX not in indexes:
        op.create_index(_INDEX, "feed_rejects", ["feed", "reject_id"], unique=True)


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="feed_rejects")
    with op.batch_alter_table("feed_rejects", schema=None) as batch_op:
        batch_op.drop_column("reject_id")
