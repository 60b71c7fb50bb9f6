"""Conversation history in Redis: a list per call, appended idempotently by message id."""

from __future__ import annotations

from typing import cast

from redis.asyncio import Redis

from voicebus_agent.ports import Message

# Append only if the id is new, atomically, so a redelivered event adds nothing.
_APPEND = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return redis.call('LRANGE', KEYS[2], 0, -1)
"""


class RedisConversationStore:
    """Each call's history under voicebus:call:<id>:history, kept `ttl_s` after its last message."""

    def __init__(self, *, redis: Redis, ttl_s: int) -> None:
        self._redis = redis
        self._append = redis.register_script(_APPEND)
        self._ttl_s = ttl_s

    async def append(self, call_id: str, message: Message) -> list[Message]:
        keys = [f"voicebus:call:{call_id}:history-ids", f"voicebus:call:{call_id}:history"]
        raw = cast(
            list[bytes],
            await self._append(
                keys=keys, args=[message.id, message.model_dump_json(), self._ttl_s]
            ),
        )
        return [Message.model_validate_json(item) for item in raw]

    async def history(self, call_id: str) -> list[Message]:
        raw = await self._redis.lrange(f"voicebus:call:{call_id}:history", 0, -1)
        return [Message.model_validate_json(item) for item in raw]


class MemoryConversationStore:
    """Histories in this process's memory: for a single process (benchmarks, tests), not for a
    fleet of workers, which must share the history through Redis."""

    def __init__(self) -> None:
        self._histories: dict[str, list[Message]] = {}

    async def append(self, call_id: str, message: Message) -> list[Message]:
        history = self._histories.setdefault(call_id, [])
        if all(m.id != message.id for m in history):
            history.append(message)
        return list(history)

    async def history(self, call_id: str) -> list[Message]:
        return list(self._histories.get(call_id, []))
