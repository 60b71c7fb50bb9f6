"""Schema migrations of the analytics database (Alembic, shipped inside the package)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

_ALEMBIC_INI = Path(__file__).with_name("alembic.ini")
DATABASE_URL_ATTRIBUTE = "database_url"
"""Key of `Config.attributes` that carries the URL to migrations/env.py."""


def _config(database_url: str) -> Config:
    config = Config(_ALEMBIC_INI)
    # Passed as an attribute, not an ini option, so a '%' in a password needs no escaping.
    config.attributes[DATABASE_URL_ATTRIBUTE] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the schema up to `revision`. Runs its own event loop: call it outside one."""
    command.upgrade(_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    """Take the schema down to `revision`. Runs its own event loop: call it outside one."""
    command.downgrade(_config(database_url), revision)
