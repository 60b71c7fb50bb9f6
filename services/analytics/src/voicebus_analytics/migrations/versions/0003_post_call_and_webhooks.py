"""The post-call results on each call, and the log of the webhook deliveries.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

COLUMNS = ("summary", "extraction", "succeeded", "success_reason", "concluded_at")


def upgrade() -> None:
    op.add_column("calls", sa.Column("summary", sa.Text()))
    op.add_column(
        "calls", sa.Column("extraction", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"))
    )
    op.add_column("calls", sa.Column("succeeded", sa.Boolean()))
    op.add_column("calls", sa.Column("success_reason", sa.Text()))
    op.add_column("calls", sa.Column("concluded_at", sa.DateTime(timezone=True)))
    op.create_table(
        "webhook_deliveries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column(
            "call_id",
            sa.String(128),
            sa.ForeignKey("calls.call_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer()),
        sa.Column("error", sa.Text()),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_webhook_deliveries_call_id", "webhook_deliveries", ["call_id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_call_id", "webhook_deliveries")
    op.drop_table("webhook_deliveries")
    # In place, not by a batch copy of `calls` (see 0002).
    for column in reversed(COLUMNS):
        op.drop_column("calls", column)
