"""Where each call is in its workflow, in Redis, shared by every agent worker (a worker that
takes a call over goes on from the same node, with the same variables)."""

from __future__ import annotations

from typing import cast

from redis.asyncio import Redis

from voicebus_agent.workflow.flow import WorkflowState

# The state as it was when reply ARGV[1] began: recorded the first time, returned ever after, so
# a redelivered turn is answered from where the call was, not from where its first try left it.
_BEGIN = """
local before = redis.call('HGET', KEYS[1], 'before:' .. ARGV[1])
if before then return before end
local current = redis.call('HGET', KEYS[1], 'current') or ''
redis.call('HSET', KEYS[1], 'before:' .. ARGV[1], current)
redis.call('EXPIRE', KEYS[1], ARGV[2])
return current
"""


class RedisWorkflowStates:
    """Each call's workflow state under voicebus:call:<id>:workflow, kept `ttl_s` after its last
    change."""

    def __init__(self, *, redis: Redis, ttl_s: int) -> None:
        self._redis = redis
        self._begin = redis.register_script(_BEGIN)
        self._ttl_s = ttl_s

    async def begin(self, call_id: str, reply_id: str) -> WorkflowState | None:
        raw = cast(bytes, await self._begin(keys=[_key(call_id)], args=[reply_id, self._ttl_s]))
        return WorkflowState.model_validate_json(raw) if raw else None

    async def save(self, call_id: str, state: WorkflowState) -> None:
        key = _key(call_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, "current", state.model_dump_json())
            pipe.expire(key, self._ttl_s)
            await pipe.execute()


class MemoryWorkflowStates:
    """Workflow states in this process's memory (one process: tests, benchmarks)."""

    def __init__(self) -> None:
        self._current: dict[str, WorkflowState] = {}
        self._before: dict[tuple[str, str], WorkflowState | None] = {}

    async def begin(self, call_id: str, reply_id: str) -> WorkflowState | None:
        return self._before.setdefault((call_id, reply_id), self._current.get(call_id))

    async def save(self, call_id: str, state: WorkflowState) -> None:
        self._current[call_id] = state


def _key(call_id: str) -> str:
    return f"voicebus:call:{call_id}:workflow"
