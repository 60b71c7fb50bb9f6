"""API keys: what a key looks like, what is kept of it, and the port that keeps them.

A key is `vb_<id>_<secret>`: the id (16 hex digits) names its record, so checking a key is one
lookup, never a scan; the secret is 256 random bits. Only the key's SHA-256 is kept: a fast
hash is enough for a secret that cannot be guessed, and whoever reads the store cannot use
what they read.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from voicebus_gateway.auth.scopes import Scope, grants

_KEY = re.compile(r"vb_([0-9a-f]{16})_[A-Za-z0-9_-]{43}")
"""`vb_`, the id, `_`, and the secret: 32 random bytes, base64url without padding."""


class ApiKey(BaseModel):
    """What is known of a key; never the key itself."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    """Who or what holds it, as its creator wrote ("ci", "crm sync")."""
    scopes: frozenset[Scope]
    created_at: datetime
    revoked_at: datetime | None = None

    def allows(self, needed: Scope) -> bool:
        return grants(self.scopes, needed)


@dataclass(frozen=True)
class NewKey:
    """A key just made: its record, and the key, which is shown once and kept nowhere."""

    record: ApiKey
    key: str


def make_key() -> tuple[str, str]:
    """A new key's id, and the key."""
    key_id = secrets.token_hex(8)
    return key_id, f"vb_{key_id}_{secrets.token_urlsafe(32)}"


def id_of(key: str) -> str | None:
    """The id of `key`, or None if it is not shaped like one of ours."""
    found = _KEY.fullmatch(key)
    return None if found is None else found.group(1)


def digest(key: str) -> str:
    """What is kept of `key`: its SHA-256, in hex."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys(Protocol):
    """Where the API keys are kept, shared by every gateway replica."""

    async def create(self, *, name: str, scopes: Collection[Scope]) -> NewKey:
        """A new key with `scopes`, named `name`."""
        ...

    async def verify(self, key: str) -> ApiKey | None:
        """The record of `key` if it is one of ours (revoked or not: the caller says which);
        None for anything else."""
        ...

    async def all(self) -> list[ApiKey]:
        """Every key ever made, revoked ones included, oldest first."""
        ...

    async def revoke(self, key_id: str) -> ApiKey | None:
        """Revoke key `key_id` at once (again: no change); its record, or None if unknown."""
        ...
