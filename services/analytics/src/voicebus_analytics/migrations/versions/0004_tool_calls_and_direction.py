"""The tool calls of each call, each call's direction, and when its webhook was told.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

COLUMNS = ("direction", "notified_at")


def upgrade() -> None:
    op.add_column("calls", sa.Column("direction", sa.String(8)))
    op.add_column("calls", sa.Column("notified_at", sa.DateTime(timezone=True)))
    # Calls concluded before this revision had their webhook told then: analytics' start must
    # not tell it again.
    op.execute("UPDATE calls SET notified_at = concluded_at WHERE concluded_at IS NOT NULL")
    op.create_table(
        "tool_calls",
        sa.Column(
            "call_id",
            sa.String(128),
            sa.ForeignKey("calls.call_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("tool_call_id", sa.String(), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("arguments", sa.Text()),
        sa.Column("called_at", sa.DateTime(timezone=True)),
        sa.Column("result", sa.Text()),
        sa.Column("failed", sa.Boolean()),
        sa.Column("duration_ms", sa.Integer()),
        sa.Column("returned_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("tool_calls")
    # In place, not by a batch copy of `calls` (see 0002).
    for column in reversed(COLUMNS):
        op.drop_column("calls", column)
