"""identities, refresh tokens, signing keys, security audit

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 05:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())  # idempotent (adopted DBs)
    if "auth_identities" not in existing:
        op.create_table(
            "auth_identities",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("kind", sa.String(length=8), nullable=False),
            sa.Column("name", sa.String(length=64), nullable=False),
            sa.Column("secret_hash", sa.String(length=255), nullable=True),
            sa.Column("roles", sa.JSON(), nullable=False),
            sa.Column("stores", sa.JSON(), nullable=False),
            sa.Column("approve_limit", sa.Float(), nullable=True),
            sa.Column("disabled", sa.Boolean(), nullable=False),
            sa.Column("tokens_valid_after", sa.DateTime(timezone=True), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("kind", "name", name="uq_auth_identities_kind_name"),
        )
    if "auth_refresh_tokens" not in existing:
        op.create_table(
            "auth_refresh_tokens",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("token_hash", sa.String(length=64), nullable=False),
            sa.Column("identity_id", sa.Integer(), nullable=False),
            sa.Column("family", sa.String(length=32), nullable=False),
            sa.Column("purpose", sa.String(length=16), nullable=False),
            sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
            sa.ForeignKeyConstraint(["identity_id"], ["auth_identities.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("token_hash"),
        )
        with op.batch_alter_table("auth_refresh_tokens", schema=None) as batch_op:
            batch_op.create_index(
                batch_op.f("ix_auth_refresh_tokens_family"), ["family"], unique=False
            )
            batch_op.create_index(
                batch_op.f("ix_auth_refresh_tokens_identity_id"), ["identity_id"], unique=False
            )
    if "auth_signing_keys" not in existing:
        op.create_table(
            "auth_signing_keys",
            sa.Column("kid", sa.String(length=32), nullable=False),
            sa.Column("alg", sa.String(length=8), nullable=False),
            sa.Column("private_pem", sa.Text(), nullable=False),
            sa.Column("public_jwk", sa.JSON(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("retire_at", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("kid"),
        )
    if "auth_audit" not in existing:
        op.create_table(
            "auth_audit",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("actor", sa.String(length=80), nullable=False),
            sa.Column("action", sa.String(length=32), nullable=False),
            sa.Column("subject", sa.String(length=80), nullable=False),
            sa.Column("detail", sa.JSON(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        with op.batch_alter_table("auth_audit", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_auth_audit_at"), ["at"], unique=False)


def downgrade() -> None:
    op.drop_table("auth_audit")
    op.drop_table("auth_signing_keys")
    op.drop_table("auth_refresh_tokens")
    op.drop_table("auth_identities")
