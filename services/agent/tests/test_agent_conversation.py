from collections.abc import AsyncIterator

from voicebus_agent.conversation import Conversation, Reply, chunks_of, split_sentences
from voicebus_agent.history import MemoryConversationStore
from voicebus_agent.responders import AcknowledgingResponder
from voicebus_agent.turns import PausedReply
from voicebus_contracts import ReplyPaused


async def collect(sentences: AsyncIterator[str]) -> list[str]:
    return [s async for s in sentences]


def test_split_sentences_cuts_at_sentence_ends() -> None:
    assert split_sentences("Hello there! How are you? Fine.  ") == [
        "Hello there!",
        "How are you?",
        "Fine.",
    ]
    assert split_sentences("  ") == []


async def test_each_sentence_is_a_chunk_and_an_empty_last_chunk_closes_the_reply() -> None:
    conversation = Conversation(call_id="CA1", store=MemoryConversationStore())
    chunks = [c async for c in chunks_of(conversation.greet("Hi. How can I help?"))]
    assert [(c.seq, c.text, c.last) for c in chunks] == [
        (0, "Hi.", False),
        (1, "How can I help?", False),
        (2, "", True),
    ]
    assert {c.reply_id for c in chunks} == {"CA1:greeting"}
    assert all(c.in_reply_to is None for c in chunks)


async def test_answer_records_the_caller_and_acknowledges_what_was_heard() -> None:
    store = MemoryConversationStore()
    conversation = Conversation(call_id="CA1", store=store)
    reply = await conversation.answer(
        turn_id="CA1:t1", caller_text="I want a pizza.", responder=AcknowledgingResponder()
    )
    sentences = await collect(reply.sentences)
    assert sentences[0] == "I heard you say: I want a pizza."
    assert reply.in_reply_to == "CA1:t1"
    await conversation.said(reply.reply_id, " ".join(sentences))
    assert [m.role for m in await store.history("CA1")] == ["user", "agent"]


async def test_a_redelivered_turn_is_recorded_once() -> None:
    store = MemoryConversationStore()
    conversation = Conversation(call_id="CA1", store=store)
    for _ in range(2):
        await conversation.answer(
            turn_id="CA1:t1", caller_text="hello", responder=AcknowledgingResponder()
        )
    assert len(await store.history("CA1")) == 1


async def test_empty_chunk_stream_still_ends_the_reply() -> None:
    async def nothing() -> AsyncIterator[str]:
        return
        yield  # pragma: no cover

    chunks = [c async for c in chunks_of(Reply(reply_id="r", in_reply_to="t", sentences=nothing()))]
    assert [(c.seq, c.text, c.last) for c in chunks] == [(0, "", True)]


PAUSE = ReplyPaused(reply_id="CA1:t1:reply", turn_id="CA1:t2", sentence=1, fraction=0.5)


async def test_a_paused_reply_comes_with_its_sentences_until_settled_for_good() -> None:
    conversation = Conversation(call_id="CA1", store=MemoryConversationStore())
    assert await conversation.paused_reply() is None
    await conversation.said("CA1:t1:reply", ["One.", "Two three."])
    await conversation.pause(PAUSE)
    assert await conversation.paused_reply() == PausedReply(
        pause=PAUSE, sentences=("One.", "Two three.")
    )
    await conversation.settle(PAUSE)
    await conversation.pause(PAUSE)  # redelivered after it was settled
    assert await conversation.paused_reply() is None


async def test_an_interrupted_reply_keeps_only_what_was_heard() -> None:
    store = MemoryConversationStore()
    conversation = Conversation(call_id="CA1", store=store)
    await conversation.said("CA1:t1:reply", ["One.", "Two three."])
    await conversation.heard("CA1:t1:reply", "One. Two")
    [message] = await store.history("CA1")
    assert (message.text, message.sentences) == ("One. Two", ("One.", "Two three."))


async def test_a_reply_interrupted_before_its_first_word_leaves_the_history() -> None:
    store = MemoryConversationStore()
    conversation = Conversation(call_id="CA1", store=store)
    await conversation.answer(
        turn_id="CA1:t1", caller_text="hello", responder=AcknowledgingResponder()
    )
    await conversation.said("CA1:t1:reply", ["One."])
    await conversation.heard("CA1:t1:reply", "")
    await conversation.said("CA1:t1:reply", ["One."])  # redelivered: it stays out
    assert [m.id for m in await store.history("CA1")] == ["CA1:t1"]
