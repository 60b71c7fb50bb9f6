"""The agent catalog: agents kept in SQL (their own tables and Alembic history in the shared
database) and served over a REST API; each change is announced on the bus."""
