"""API keys in Redis, which every gateway replica already shares: one hash per key
(`voicebus:api-key:<id>`: name, scopes, the key's digest, when it was made and revoked) and a
set of the ids, for listing."""

from __future__ import annotations

import hmac
from collections.abc import Collection, Mapping
from datetime import UTC, datetime

from redis.asyncio import Redis

from voicebus_gateway.auth.keys import ApiKey, NewKey, digest, id_of, make_key
from voicebus_gateway.auth.scopes import Scope

KEY_PREFIX = "voicebus:api-key:"
INDEX = "voicebus:api-keys"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _fields(found: Mapping[bytes | str, bytes | str]) -> dict[str, str]:
    return {_text(name): _text(value) for name, value in found.items()}


def _record(key_id: str, fields: dict[str, str]) -> ApiKey:
    revoked = fields.get("revoked_at")
    return ApiKey(
        id=key_id,
        name=fields["name"],
        scopes=frozenset(Scope(scope) for scope in fields["scopes"].split()),
        created_at=datetime.fromisoformat(fields["created_at"]),
        revoked_at=None if revoked is None else datetime.fromisoformat(revoked),
    )


class RedisApiKeys:
    """The ApiKeys port over Redis (`redis` returns bytes, as the gateway's client does)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def create(self, *, name: str, scopes: Collection[Scope]) -> NewKey:
        key_id, key = make_key()
        record = ApiKey(
            id=key_id, name=name, scopes=frozenset(scopes), created_at=datetime.now(UTC)
        )
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                KEY_PREFIX + key_id,
                mapping={
                    "name": name,
                    "scopes": " ".join(sorted(record.scopes)),
                    "digest": digest(key),
                    "created_at": record.created_at.isoformat(),
                },
            )
            pipe.sadd(INDEX, key_id)
            await pipe.execute()
        return NewKey(record=record, key=key)

    async def verify(self, key: str) -> ApiKey | None:
        key_id = id_of(key)
        if key_id is None:
            return None
        fields = _fields(await self._redis.hgetall(KEY_PREFIX + key_id))
        kept = fields.get("digest")
        if kept is None or not hmac.compare_digest(kept.encode(), digest(key).encode()):
            return None
        return _record(key_id, fields)

    async def all(self) -> list[ApiKey]:
        ids = sorted(_text(member) for member in await self._redis.smembers(INDEX))
        async with self._redis.pipeline(transaction=False) as pipe:
            for key_id in ids:
                pipe.hgetall(KEY_PREFIX + key_id)
            found = await pipe.execute()
        records = [
            _record(key_id, _fields(fields))
            for key_id, fields in zip(ids, found, strict=True)
            if fields
        ]
        return sorted(records, key=lambda record: record.created_at)

    async def revoke(self, key_id: str) -> ApiKey | None:
        name = KEY_PREFIX + key_id
        if not await self._redis.exists(name):
            return None
        # The first revocation's time stays.
        await self._redis.hsetnx(name, "revoked_at", datetime.now(UTC).isoformat())
        return _record(key_id, _fields(await self._redis.hgetall(name)))
