"""Conversation history in Redis: a list per call, appended idempotently by message id, and the
reply the caller is speaking over (barge-in), until the agent settles it."""

from __future__ import annotations

from typing import cast

from redis.asyncio import Redis

from voicebus_agent.ports import Message
from voicebus_contracts import ReplyPaused

# Append only if the id is new, atomically, so a redelivered event adds nothing.
_APPEND = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return redis.call('LRANGE', KEYS[2], 0, -1)
"""

# Replace (ARGV[2]) or, when ARGV[2] is empty, remove the message whose id is ARGV[1]. The id
# stays in the id set, so a redelivered append does not bring a removed message back.
_REPLACE = """
for i, item in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if cjson.decode(item)['id'] == ARGV[1] then
    if ARGV[2] == '' then
      redis.call('LREM', KEYS[1], 1, item)
    else
      redis.call('LSET', KEYS[1], i - 1, ARGV[2])
    end
    return 1
  end
end
return 0
"""

# Remember a pause unless its caller turn (ARGV[1]) was settled already.
_PAUSE = """
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
"""

# Mark the pause's caller turn settled; forget the pause if it is still that one.
_SETTLE = """
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[2])
local current = redis.call('GET', KEYS[1])
if current and cjson.decode(current)['turn_id'] == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
"""


def _key(call_id: str, what: str) -> str:
    return f"voicebus:call:{call_id}:{what}"


class RedisConversationStore:
    """Each call's history under voicebus:call:<id>:history, its pause under ...:paused-reply,
    each kept `ttl_s` after its last change."""

    def __init__(self, *, redis: Redis, ttl_s: int) -> None:
        self._redis = redis
        self._append = redis.register_script(_APPEND)
        self._replace = redis.register_script(_REPLACE)
        self._pause = redis.register_script(_PAUSE)
        self._settle = redis.register_script(_SETTLE)
        self._ttl_s = ttl_s

    async def append(self, call_id: str, message: Message) -> list[Message]:
        keys = [_key(call_id, "history-ids"), _key(call_id, "history")]
        raw = cast(
            list[bytes],
            await self._append(
                keys=keys, args=[message.id, message.model_dump_json(), self._ttl_s]
            ),
        )
        return [Message.model_validate_json(item) for item in raw]

    async def history(self, call_id: str) -> list[Message]:
        raw = await self._redis.lrange(_key(call_id, "history"), 0, -1)
        return [Message.model_validate_json(item) for item in raw]

    async def replace(self, call_id: str, message_id: str, message: Message | None) -> None:
        replacement = "" if message is None else message.model_dump_json()
        await self._replace(keys=[_key(call_id, "history")], args=[message_id, replacement])

    async def pause(self, call_id: str, paused: ReplyPaused) -> None:
        keys = [_key(call_id, "paused-reply"), _key(call_id, "settled-pauses")]
        await self._pause(keys=keys, args=[paused.turn_id, paused.model_dump_json(), self._ttl_s])

    async def paused(self, call_id: str) -> ReplyPaused | None:
        raw = await self._redis.get(_key(call_id, "paused-reply"))
        return None if raw is None else ReplyPaused.model_validate_json(raw)

    async def settle(self, call_id: str, paused: ReplyPaused) -> None:
        keys = [_key(call_id, "paused-reply"), _key(call_id, "settled-pauses")]
        await self._settle(keys=keys, args=[paused.turn_id, self._ttl_s])


class MemoryConversationStore:
    """Histories in this process's memory: for a single process (benchmarks, tests), not for a
    fleet of workers, which must share the history through Redis."""

    def __init__(self) -> None:
        self._histories: dict[str, list[Message]] = {}
        self._ids: dict[str, set[str]] = {}
        """Every id ever appended, removed messages' too, as in Redis."""
        self._paused: dict[str, ReplyPaused] = {}
        self._settled: set[tuple[str, str]] = set()

    async def append(self, call_id: str, message: Message) -> list[Message]:
        history = self._histories.setdefault(call_id, [])
        ids = self._ids.setdefault(call_id, set())
        if message.id not in ids:
            ids.add(message.id)
            history.append(message)
        return list(history)

    async def history(self, call_id: str) -> list[Message]:
        return list(self._histories.get(call_id, []))

    async def replace(self, call_id: str, message_id: str, message: Message | None) -> None:
        history = self._histories.get(call_id, [])
        for i, old in enumerate(history):
            if old.id == message_id:
                if message is None:
                    del history[i]
                else:
                    history[i] = message
                return

    async def pause(self, call_id: str, paused: ReplyPaused) -> None:
        if (call_id, paused.turn_id) not in self._settled:
            self._paused[call_id] = paused

    async def paused(self, call_id: str) -> ReplyPaused | None:
        return self._paused.get(call_id)

    async def settle(self, call_id: str, paused: ReplyPaused) -> None:
        self._settled.add((call_id, paused.turn_id))
        if (current := self._paused.get(call_id)) and current.turn_id == paused.turn_id:
            del self._paused[call_id]
