"""Who answered a call, and where its workflow got to with the variables it collected.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

COLUMNS = ("answered_by", "workflow_node", "variables", "workflow_at")


def upgrade() -> None:
    op.add_column("calls", sa.Column("answered_by", sa.String(32)))
    op.add_column("calls", sa.Column("workflow_node", sa.String(64)))
    op.add_column(
        "calls", sa.Column("variables", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"))
    )
    op.add_column("calls", sa.Column("workflow_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    # Dropped in place (SQLite does since 3.35), not by a batch copy of `calls`: with foreign keys
    # on, dropping the old `calls` would take every turn with it (ON DELETE CASCADE).
    for column in reversed(COLUMNS):
        op.drop_column("calls", column)
