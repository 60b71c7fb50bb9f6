import uuid

from redis.asyncio import Redis

from voicebus_agent.history import RedisConversationStore
from voicebus_agent.ports import Message


async def test_history_is_shared_ordered_and_idempotent(redis_url: str) -> None:
    call_id = f"test-{uuid.uuid4()}"
    redis = Redis.from_url(redis_url)
    try:
        worker_a = RedisConversationStore(redis=redis, ttl_s=60)
        worker_b = RedisConversationStore(redis=redis, ttl_s=60)
        await worker_a.append(call_id, Message(id="t1", role="user", text="hello"))
        await worker_b.append(call_id, Message(id="t1", role="user", text="hello"))
        history = await worker_b.append(call_id, Message(id="r1", role="agent", text="hi"))
        assert [(m.id, m.role) for m in history] == [("t1", "user"), ("r1", "agent")]
        assert await worker_a.history(call_id) == history
        assert 0 < await redis.ttl(f"voicebus:call:{call_id}:history") <= 60
    finally:
        await redis.delete(
            f"voicebus:call:{call_id}:history", f"voicebus:call:{call_id}:history-ids"
        )
        await redis.aclose()
