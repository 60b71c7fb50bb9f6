"""The SQL database services share: PostgreSQL in production, SQLite embedded; each service
keeps its own tables and its own Alembic history in it."""
