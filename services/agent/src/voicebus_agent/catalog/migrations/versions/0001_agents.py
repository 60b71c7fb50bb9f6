"""Agents, and the phone numbers that reach them.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("agent_id", sa.String(63), primary_key=True),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "agent_numbers",
        sa.Column("number", sa.String(16), primary_key=True),
        sa.Column(
            "agent_id",
            sa.String(63),
            sa.ForeignKey("agents.agent_id", ondelete="CASCADE"),
            nullable=False,
        ),
    )
    op.create_index("ix_agent_numbers_agent_id", "agent_numbers", ["agent_id"])


def downgrade() -> None:
    op.drop_index("ix_agent_numbers_agent_id", table_name="agent_numbers")
    op.drop_table("agent_numbers")
    op.drop_table("agents")
