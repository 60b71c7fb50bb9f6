"""The fake OpenAI Realtime API driven by the real openai SDK: the session a client configures, the
audio it sends, the turns the test makes the server VAD hear (or that it hears in the audio, when
it listens) and the responses that follow."""

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import numpy as np
import pytest
from openai import AsyncOpenAI
from openai.resources.realtime.realtime import AsyncRealtimeConnection
from openai.types.realtime import (
    ConversationItemAdded,
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemTruncatedEvent,
    InputAudioBufferSpeechStartedEvent,
    InputAudioBufferSpeechStoppedEvent,
    RealtimeErrorEvent,
    RealtimeServerEvent,
    RealtimeSessionCreateRequest,
    RealtimeSessionCreateRequestParam,
    ResponseAudioDeltaEvent,
    ResponseAudioTranscriptDeltaEvent,
    ResponseAudioTranscriptDoneEvent,
    ResponseCreatedEvent,
    ResponseDoneEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    SessionCreatedEvent,
    SessionUpdatedEvent,
)
from openai.types.realtime.realtime_audio_formats_param import AudioPCM, AudioPCMU
from pydantic import BaseModel
from websockets.exceptions import ConnectionClosedError

from voicebus_audio.g711 import mulaw_to_pcm16
from voicebus_devstack.fake_openai import TONE_HZ
from voicebus_devstack.fake_openai_realtime import (
    AUDIO_FORMATS,
    VAD_FRAME_MS,
    FakeOpenAIRealtime,
    Truncation,
    Turn,
)
from voicebus_devstack.polling import until

WAIT_S = 5.0
MS_PER_CHAR = 10
"""Short speech, for fast tests."""
PHONE_SESSION: RealtimeSessionCreateRequestParam = {
    "type": "realtime",
    "instructions": "You answer the phone for a bakery.",
    "audio": {
        "input": {
            "format": {"type": "audio/pcmu"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 300},
            "transcription": {"model": "gpt-4o-transcribe"},
        },
        "output": {"format": {"type": "audio/pcmu"}, "voice": "marin"},
    },
    "tools": [
        {
            "type": "function",
            "name": "order_status",
            "description": "Whether a customer's order is ready.",
            "parameters": {"type": "object", "properties": {"order": {"type": "string"}}},
        }
    ],
}
"""A phone line's session: G.711 mu-law both ways, transcribed, one tool."""
MULAW: AudioPCMU = {"type": "audio/pcmu"}
PCM: AudioPCM = {"type": "audio/pcm", "rate": 24_000}
in_each_format = pytest.mark.parametrize("audio_format", [MULAW, PCM], ids=["mu-law", "pcm"])
SPEECH_AMPLITUDE = 8_000
"""The caller's speech here: a tone of RMS about 5,700, far above what the VAD takes for it."""
MICROPHONE_MS = 20
"""The caller's audio per append, as a phone line's frames."""

E = TypeVar("E", bound=BaseModel)


@dataclass
class Client:
    """The SDK's connection, read as `async for event in connection` does, and every server
    event read so far."""

    connection: AsyncRealtimeConnection
    seen: list[RealtimeServerEvent] = field(default_factory=list)
    _events: AsyncIterator[RealtimeServerEvent] = field(init=False)

    def __post_init__(self) -> None:
        self._events = aiter(self.connection)

    async def next(self, kind: type[E]) -> E:
        """The next event of `kind`; the events before it are kept in `seen` too."""
        async with asyncio.timeout(WAIT_S):
            while True:
                event = await anext(self._events)
                self.seen.append(event)
                if isinstance(event, kind):
                    return event

    def types_since(self, event: BaseModel) -> list[str]:
        """The types of the events seen after `event`, deltas left out."""
        later = self.seen[self.seen.index(cast(RealtimeServerEvent, event)) + 1 :]
        return [seen.type for seen in later if not seen.type.endswith(".delta")]

    def seen_of(self, kind: type[E]) -> list[E]:
        return [event for event in self.seen if isinstance(event, kind)]

    async def configure(self, session: RealtimeSessionCreateRequestParam) -> SessionUpdatedEvent:
        await self.connection.session.update(session=session)
        return await self.next(SessionUpdatedEvent)

    async def stream(self, audio: bytes, audio_format: AudioPCM | AudioPCMU) -> None:
        """Send `audio` as a caller's microphone does: in appends of `MICROPHONE_MS`."""
        piece = AUDIO_FORMATS[audio_format["type"]].byte_count(MICROPHONE_MS)
        for start in range(0, len(audio), piece):
            await self.connection.input_audio_buffer.append(
                audio=base64.b64encode(audio[start : start + piece]).decode()
            )

    async def round_trip(self) -> None:
        """Return once the server has taken every event sent so far (it takes them in order)."""
        await self.configure({"type": "realtime"})


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAIRealtime]:
    async with FakeOpenAIRealtime(ms_per_char=MS_PER_CHAR) as fake:
        yield fake


def caller_audio(audio_format: AudioPCM | AudioPCMU, ms: int, amplitude: int) -> bytes:
    """`ms` of a tone of `amplitude` (0: silence) in `audio_format`."""
    encoding = AUDIO_FORMATS[audio_format["type"]]
    times = np.arange(encoding.sample_rate * ms // 1000) / encoding.sample_rate
    return encoding.encode((amplitude * np.sin(2 * np.pi * TONE_HZ * times)).astype(np.int16))


def speech(audio_format: AudioPCM | AudioPCMU, ms: int) -> bytes:
    return caller_audio(audio_format, ms, SPEECH_AMPLITUDE)


def silence(audio_format: AudioPCM | AudioPCMU, ms: int) -> bytes:
    return caller_audio(audio_format, ms, 0)


def listening_session(audio_format: AudioPCM | AudioPCMU) -> RealtimeSessionCreateRequestParam:
    """A session in `audio_format` both ways, transcribed, whose server VAD waits as long as the
    API's does by default."""
    return {
        "type": "realtime",
        "audio": {
            "input": {
                "format": audio_format,
                "turn_detection": {"type": "server_vad"},
                "transcription": {"model": "gpt-4o-transcribe"},
            },
            "output": {"format": audio_format},
        },
    }


@contextlib.asynccontextmanager
async def connected(fake: FakeOpenAIRealtime, api_key: str | None = None) -> AsyncIterator[Client]:
    async with (
        AsyncOpenAI(api_key=api_key or fake.api_key, base_url=fake.base_url) as openai,
        openai.realtime.connect(model="gpt-realtime") as connection,
    ):
        yield Client(connection)


async def test_a_session_opens_with_defaults_and_keeps_what_the_client_updates(
    fake: FakeOpenAIRealtime,
) -> None:
    async with connected(fake) as client:
        created = await client.next(SessionCreatedEvent)
        updated = await client.configure(PHONE_SESSION)

    assert isinstance(created.session, RealtimeSessionCreateRequest)
    assert created.session.model == "gpt-realtime"
    assert isinstance(updated.session, RealtimeSessionCreateRequest)
    assert updated.session.instructions == PHONE_SESSION["instructions"]
    assert updated.session.audio is not None
    assert updated.session.audio.output is not None
    assert updated.session.audio.output.format is not None
    assert updated.session.audio.output.format.type == "audio/pcmu"
    session = fake.sessions[0]
    assert session.model == "gpt-realtime"
    assert session.updates == [PHONE_SESSION]
    audio = session.config["audio"]
    assert audio["input"]["format"] == {"type": "audio/pcmu"}
    assert audio["input"]["turn_detection"] == {"type": "server_vad", "silence_duration_ms": 300}
    assert audio["input"]["transcription"] == {"model": "gpt-4o-transcribe"}
    assert audio["output"] == {"format": {"type": "audio/pcmu"}, "voice": "marin", "speed": 1.0}
    assert [tool["name"] for tool in session.config["tools"]] == ["order_status"]


@pytest.mark.parametrize(
    ("update", "code", "param"),
    [
        (
            {"type": "realtime", "audio": {"output": {"format": {"type": "audio/ogg"}}}},
            "invalid_value",
            "session.audio.output.format.type",
        ),
        (
            {
                "type": "realtime",
                "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}},
            },
            "invalid_value",
            "session.audio.input.format.rate",
        ),
        (
            {"type": "realtime", "input_audio_format": "g711_ulaw"},
            "unknown_parameter",
            "session.input_audio_format",
        ),
        ({"instructions": "Be brief."}, "missing_required_parameter", "session.type"),
    ],
    ids=["unknown format", "pcm not at 24 kHz", "beta field", "no session type"],
)
async def test_a_session_update_ga_does_not_take_is_refused(
    fake: FakeOpenAIRealtime, update: dict[str, Any], code: str, param: str
) -> None:
    async with connected(fake) as client:
        await client.connection.send(
            {"type": "session.update", "event_id": "evt_bad", "session": cast(Any, update)}
        )
        refused = await client.next(RealtimeErrorEvent)

    assert (refused.error.code, refused.error.param) == (code, param)
    assert refused.error.event_id == "evt_bad"
    session = fake.sessions[0]
    assert session.updates == []
    assert session.config["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24_000}


async def test_appended_audio_arrives_decoded(fake: FakeOpenAIRealtime) -> None:
    pieces = [bytes(range(256)), b"\xff" * 160]
    async with connected(fake) as client:
        for piece in pieces:
            await client.connection.input_audio_buffer.append(
                audio=base64.b64encode(piece).decode()
            )
        session = await fake.session()
        await until(lambda: len(session.audio_received) == 416, what="the caller's audio")

    assert bytes(session.audio_received) == b"".join(pieces)


async def test_a_caller_turn_is_transcribed_and_answered_in_mulaw(fake: FakeOpenAIRealtime) -> None:
    answer = "Fresh bread at noon."
    fake.answer(answer)
    async with connected(fake) as client:
        await client.configure(PHONE_SESSION)
        await client.connection.input_audio_buffer.append(
            audio=base64.b64encode(b"\xff" * 3_200).decode()  # 400 ms of mu-law silence
        )
        session = await fake.session()
        await until(lambda: len(session.audio_received) == 3_200, what="the caller's audio")
        item_id = await session.caller_speaks("When is the bread ready?", audio_start_ms=100)
        done = await client.next(ResponseDoneEvent)

    started = client.seen_of(InputAudioBufferSpeechStartedEvent)[0]
    assert (started.item_id, started.audio_start_ms) == (item_id, 100)
    assert client.seen_of(InputAudioBufferSpeechStoppedEvent)[0].audio_end_ms == 400
    transcribed = client.seen_of(ConversationItemInputAudioTranscriptionCompletedEvent)[0]
    assert (transcribed.item_id, transcribed.transcript) == (item_id, "When is the bread ready?")
    assert client.types_since(started) == [
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.input_audio_transcription.completed",
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
    ]
    audio = b"".join(
        base64.b64decode(delta.delta) for delta in client.seen_of(ResponseAudioDeltaEvent)
    )
    assert len(audio) == 8_000 * len(answer) * MS_PER_CHAR // 1000  # 8 kHz, a byte a sample
    assert np.abs(mulaw_to_pcm16(audio)).max() > 1_000  # a tone, not silence
    said = "".join(delta.delta for delta in client.seen_of(ResponseAudioTranscriptDeltaEvent))
    assert said == client.seen_of(ResponseAudioTranscriptDoneEvent)[0].transcript == answer
    assert done.response.status == "completed"
    assert session.turns == [Turn(item_id, "When is the bread ready?", 100, 400)]
    assert [item["role"] for item in session.items] == ["user", "assistant"]
    assert session.items[1]["content"] == [{"type": "output_audio", "transcript": answer}]


async def test_unscripted_it_echoes_the_caller_in_pcm_and_transcribes_only_when_asked(
    fake: FakeOpenAIRealtime,
) -> None:
    async with connected(fake) as client:
        await client.next(SessionCreatedEvent)
        session = await fake.session()
        await session.caller_speaks("good morning")
        transcript = await client.next(ResponseAudioTranscriptDoneEvent)

    assert transcript.transcript == "You said: good morning"
    audio = b"".join(
        base64.b64decode(delta.delta) for delta in client.seen_of(ResponseAudioDeltaEvent)
    )
    assert len(audio) == 24_000 * 2 * len("You said: good morning") * MS_PER_CHAR // 1000
    assert not client.seen_of(ConversationItemInputAudioTranscriptionCompletedEvent)


async def test_without_create_response_the_turn_gets_no_response(fake: FakeOpenAIRealtime) -> None:
    async with connected(fake) as client:
        await client.configure(
            {
                "type": "realtime",
                "audio": {
                    "input": {"turn_detection": {"type": "server_vad", "create_response": False}}
                },
            }
        )
        session = await fake.session()
        await session.caller_speaks("hello?")

    assert session.turns[0].transcript == "hello?"
    assert session.responses == []


async def test_a_function_call_round_trips(fake: FakeOpenAIRealtime) -> None:
    fake.call_tool("order_status", {"order": "A17"})
    fake.answer("Your order is ready.")
    async with connected(fake) as client:
        await client.configure(PHONE_SESSION)
        session = await fake.session()
        await session.caller_speaks("Is my order ready?")
        called = await client.next(ResponseFunctionCallArgumentsDoneEvent)
        first = await client.next(ResponseDoneEvent)
        output = {
            "type": "function_call_output",
            "call_id": called.call_id,
            "output": '{"ready": true}',
        }
        await client.connection.conversation.item.create(item=output)  # type: ignore[arg-type]
        added = await client.next(ConversationItemAdded)
        await client.connection.response.create()
        spoken = await client.next(ResponseAudioTranscriptDoneEvent)

    assert called.name == "order_status"
    assert json.loads(called.arguments) == {"order": "A17"}
    arguments = client.seen_of(ResponseFunctionCallArgumentsDeltaEvent)
    assert "".join(delta.delta for delta in arguments) == called.arguments
    assert first.response.status == "completed"
    assert added.item.type == "function_call_output"
    assert spoken.transcript == "Your order is ready."
    assert [item["type"] for item in session.items] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
    ]
    assert session.items[2]["output"] == '{"ready": true}'


async def test_client_items_go_into_the_conversation_as_ga_types_them(
    fake: FakeOpenAIRealtime,
) -> None:
    async with connected(fake) as client:
        conversation = client.connection.conversation
        await conversation.item.create(
            item={
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Hi!"}],
            }
        )
        await conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "A loaf"}],
            }
        )
        beta_text = {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": "Hm"}],
        }
        await conversation.item.create(item=beta_text)  # type: ignore[arg-type]
        beta_refused = await client.next(RealtimeErrorEvent)
        stray = {"type": "function_call_output", "call_id": "call_nowhere", "output": "{}"}
        await conversation.item.create(item=stray)  # type: ignore[arg-type]
        stray_refused = await client.next(RealtimeErrorEvent)
        await client.connection.response.create()
        spoken = await client.next(ResponseAudioTranscriptDoneEvent)

    assert beta_refused.error.param == "item.content[0].type"
    assert stray_refused.error.param == "item.call_id"
    assert spoken.transcript == "You said: A loaf"
    session = fake.sessions[0]
    assert [(item["role"], item["status"]) for item in session.items] == [
        ("assistant", "completed"),
        ("user", "completed"),
        ("assistant", "completed"),
    ]
    assert session.responses[0].request is None


async def test_barge_in_cancels_the_response_and_the_client_truncates_it(
    fake: FakeOpenAIRealtime,
) -> None:
    fake.chunk_ms, fake.chunk_delay_s = 20, 0.01
    long_answer = "Let me tell you about every loaf we bake, one by one, from the top."
    fake.answer(long_answer)
    async with connected(fake) as client:
        await client.configure(PHONE_SESSION)
        session = await fake.session()
        await session.caller_speaks("What do you have?")
        for _ in range(3):
            await client.next(ResponseAudioDeltaEvent)
        await session.caller_starts_speaking()
        cancelled = await client.next(ResponseDoneEvent)
        assistant_id = session.responses[0].item_id
        await client.connection.conversation.item.truncate(
            item_id=assistant_id, content_index=0, audio_end_ms=10_000
        )
        beyond = await client.next(RealtimeErrorEvent)
        await client.connection.conversation.item.truncate(
            item_id=assistant_id, content_index=0, audio_end_ms=40
        )
        truncated = await client.next(ConversationItemTruncatedEvent)
        await session.caller_stops_speaking("Just rye, please.")
        answered = await client.next(ResponseAudioTranscriptDoneEvent)

    assert cancelled.response.status == "cancelled"
    assert cancelled.response.status_details is not None
    assert cancelled.response.status_details.reason == "turn_detected"
    assert beyond.error.param == "audio_end_ms"
    assert (truncated.item_id, truncated.audio_end_ms) == (assistant_id, 40)
    assert session.truncations == [Truncation(assistant_id, 0, 40)]
    response = session.responses[0]
    assert (response.status, response.reason) == ("cancelled", "turn_detected")
    assert 60 <= response.audio_ms < len(long_answer) * MS_PER_CHAR  # 3 deltas, not all
    assert session.items[1]["status"] == "incomplete"
    assert answered.transcript == "You said: Just rye, please."


async def test_the_client_cancels_the_response_in_flight(fake: FakeOpenAIRealtime) -> None:
    fake.chunk_ms, fake.chunk_delay_s = 20, 0.01
    fake.answer("A long answer that the caller will not hear to its end.")
    async with connected(fake) as client:
        await client.next(SessionCreatedEvent)
        session = await fake.session()
        await session.caller_speaks("Tell me everything.")
        await client.next(ResponseCreatedEvent)
        await client.connection.response.create()
        busy = await client.next(RealtimeErrorEvent)
        await client.connection.response.cancel()
        cancelled = await client.next(ResponseDoneEvent)
        await client.connection.response.cancel()
        idle = await client.next(RealtimeErrorEvent)

    assert busy.error.code == "conversation_already_has_active_response"
    assert cancelled.response.status == "cancelled"
    assert cancelled.response.status_details is not None
    assert cancelled.response.status_details.reason == "client_cancelled"
    assert idle.error.code == "response_cancel_not_active"
    assert len(session.cancels) == 2
    assert len(session.responses) == 1


async def test_a_wrong_key_gets_an_error_then_a_close(fake: FakeOpenAIRealtime) -> None:
    async with connected(fake, api_key="sk-wrong") as client:
        with pytest.raises(ConnectionClosedError) as closed:
            await client.next(SessionCreatedEvent)

    assert [event.type for event in client.seen] == ["error"]
    assert isinstance(client.seen[0], RealtimeErrorEvent)
    assert client.seen[0].error.code == "invalid_api_key"
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
        3000,
        "invalid_request_error.invalid_api_key",
    )
    assert fake.sessions == []
    assert fake.refused == 1


@in_each_format
async def test_a_listening_vad_hears_the_callers_turn_in_the_audio(
    fake: FakeOpenAIRealtime, audio_format: AudioPCM | AudioPCMU
) -> None:
    fake.listens = True
    fake.heard_text = "When is the bread ready?"
    async with connected(fake) as client:
        await client.configure(listening_session(audio_format))
        await client.stream(
            silence(audio_format, 300) + speech(audio_format, 600) + silence(audio_format, 400),
            audio_format,
        )
        await client.round_trip()
        session = await fake.session()
        assert session.turns == []  # 400 ms of quiet: the VAD waits 500
        await client.stream(silence(audio_format, 300), audio_format)
        done = await client.next(ResponseDoneEvent)

    [started] = client.seen_of(InputAudioBufferSpeechStartedEvent)
    [stopped] = client.seen_of(InputAudioBufferSpeechStoppedEvent)
    assert started.audio_start_ms == pytest.approx(300, abs=VAD_FRAME_MS)
    assert stopped.audio_end_ms == pytest.approx(900, abs=VAD_FRAME_MS)
    transcribed = client.seen_of(ConversationItemInputAudioTranscriptionCompletedEvent)[0]
    assert (transcribed.item_id, transcribed.transcript) == (
        started.item_id,
        "When is the bread ready?",
    )
    assert client.types_since(stopped)[:5] == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.input_audio_transcription.completed",
        "response.created",
    ]
    assert done.response.status == "completed"
    assert session.turns == [
        Turn(
            started.item_id,
            "When is the bread ready?",
            started.audio_start_ms,
            stopped.audio_end_ms,
        )
    ]
    assert session.items[1]["content"][0]["transcript"] == "You said: When is the bread ready?"


@in_each_format
async def test_a_listening_vad_hears_no_turn_in_silence(
    fake: FakeOpenAIRealtime, audio_format: AudioPCM | AudioPCMU
) -> None:
    fake.listens = True
    async with connected(fake) as client:
        await client.configure(listening_session(audio_format))
        await client.stream(silence(audio_format, 1_500), audio_format)
        await client.round_trip()

    session = fake.sessions[0]
    assert set(session.audio_received) <= {0xFF, 0x00}  # mu-law silence, or PCM's zero
    assert not client.seen_of(InputAudioBufferSpeechStartedEvent)
    assert session.turns == []
    assert session.responses == []


async def test_a_listening_vad_hears_a_barge_in_and_cancels_the_response(
    fake: FakeOpenAIRealtime,
) -> None:
    fake.listens = True
    fake.chunk_ms, fake.chunk_delay_s = 20, 0.01
    fake.answer("Let me tell you about every loaf we bake, one by one, from the top.")
    async with connected(fake) as client:
        await client.configure(PHONE_SESSION)  # the turn ends after 300 ms of quiet
        await client.stream(silence(MULAW, 300) + speech(MULAW, 600) + silence(MULAW, 400), MULAW)
        for _ in range(3):
            await client.next(ResponseAudioDeltaEvent)
        await client.stream(speech(MULAW, 200), MULAW)
        cancelled = await client.next(ResponseDoneEvent)
        fake.heard_text = "Just rye, please."
        await client.stream(silence(MULAW, 400), MULAW)
        answered = await client.next(ResponseAudioTranscriptDoneEvent)

    assert cancelled.response.status_details is not None
    assert (cancelled.response.status, cancelled.response.status_details.reason) == (
        "cancelled",
        "turn_detected",
    )
    barge_in = client.seen_of(InputAudioBufferSpeechStartedEvent)[1]
    assert barge_in.audio_start_ms == pytest.approx(1_300, abs=VAD_FRAME_MS)
    assert client.seen_of(InputAudioBufferSpeechStoppedEvent)[1].audio_end_ms == pytest.approx(
        1_500, abs=VAD_FRAME_MS
    )
    session = fake.sessions[0]
    assert [turn.transcript for turn in session.turns] == ["(speech)", "Just rye, please."]
    assert session.items[1]["status"] == "incomplete"
    assert answered.transcript == "You said: Just rye, please."
