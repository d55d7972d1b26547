"""job runs record their owner (the scheduler lease token or host:pid)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Idempotent: a database adopted at the baseline may have the column already.
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("job_runs")}
    if "owner" not in columns:
        with op.batch_alter_table("job_runs", schema=None) as batch_op:
            batch_op.add_column(sa.Column("owner", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.drop_column("owner")
