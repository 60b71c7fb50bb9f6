"""What an API key may do: each /api route declares the one scope it needs."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    CALLS_READ = "calls:read"
    """Call records, recordings, analytics, the live feeds, campaigns' progress."""
    CALLS_WRITE = "calls:write"
    """Place, hang up, transfer and press keys on calls; campaigns; web calls."""
    AGENTS_READ = "agents:read"
    """Agents, knowledge base documents and searches."""
    AGENTS_WRITE = "agents:write"
    """Create, replace and delete agents; add and remove knowledge base documents."""
    ADMIN = "admin"
    """Everything."""


def grants(held: frozenset[Scope], needed: Scope) -> bool:
    """Whether a key holding `held` may do what needs `needed`."""
    return Scope.ADMIN in held or needed in held
