import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from voicebus_agent.history import RedisConversationStore
from voicebus_agent.ports import Message
from voicebus_contracts import ReplyPaused


@pytest.fixture
async def call_id(redis: Redis) -> AsyncIterator[str]:
    call_id = f"test-{uuid.uuid4()}"
    yield call_id
    await redis.delete(
        *(
            f"voicebus:call:{call_id}:{what}"
            for what in ("history", "history-ids", "paused-reply", "settled-pauses")
        )
    )


async def test_history_is_shared_ordered_and_idempotent(redis: Redis, call_id: str) -> None:
    worker_a = RedisConversationStore(redis=redis, ttl_s=60)
    worker_b = RedisConversationStore(redis=redis, ttl_s=60)
    await worker_a.append(call_id, Message(id="t1", role="user", text="hello"))
    await worker_b.append(call_id, Message(id="t1", role="user", text="hello"))
    history = await worker_b.append(call_id, Message(id="r1", role="agent", text="hi"))
    assert [(m.id, m.role) for m in history] == [("t1", "user"), ("r1", "agent")]
    assert await worker_a.history(call_id) == history
    assert 0 < await redis.ttl(f"voicebus:call:{call_id}:history") <= 60


async def test_a_message_is_replaced_in_place_or_removed_for_good(
    redis: Redis, call_id: str
) -> None:
    store = RedisConversationStore(redis=redis, ttl_s=60)
    said = Message(id="r1", role="agent", text="One. Two three.", sentences=("One.", "Two three."))
    for message in (Message(id="t1", role="user", text="hi"), said):
        await store.append(call_id, message)
    await store.append(call_id, Message(id="t2", role="user", text="wait"))
    cut = said.model_copy(update={"text": "One. Two"})
    await store.replace(call_id, "r1", cut)
    assert [m.text for m in await store.history(call_id)] == ["hi", "One. Two", "wait"]
    assert (await store.history(call_id))[1] == cut

    await store.replace(call_id, "r1", None)
    await store.replace(call_id, "nowhere", None)
    history = await store.append(call_id, said)  # a redelivered append does not bring it back
    assert [m.id for m in history] == ["t1", "t2"]


async def test_a_pause_is_kept_until_settled_and_never_revived(redis: Redis, call_id: str) -> None:
    worker_a = RedisConversationStore(redis=redis, ttl_s=60)
    worker_b = RedisConversationStore(redis=redis, ttl_s=60)
    first = ReplyPaused(reply_id="r1", turn_id="t2", sentence=0, fraction=0.25)
    await worker_a.pause(call_id, first)
    await worker_a.pause(call_id, first)
    assert await worker_b.paused(call_id) == first
    assert 0 < await redis.ttl(f"voicebus:call:{call_id}:paused-reply") <= 60

    await worker_b.settle(call_id, first)
    await worker_a.pause(call_id, first)  # redelivered after it was settled
    assert await worker_a.paused(call_id) is None

    second = ReplyPaused(reply_id="r2", turn_id="t4", sentence=1, fraction=1.0)
    await worker_a.pause(call_id, second)
    await worker_a.settle(call_id, first)  # settling an older pause leaves the newer one
    assert await worker_b.paused(call_id) == second
