"""The cascade's cores called directly in one process: the baseline the bus's cost is measured by.

The same code the services run (media's turn detection with Silero VAD, the STT core, the
agent's conversation, TTS's speaker, the gateway's paced playback), handing each result to the
next stage with a function call instead of a Kafka hop.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from voicebus_agent.conversation import Conversation, chunks_of
from voicebus_agent.history import MemoryConversationStore
from voicebus_agent.responders import AcknowledgingResponder
from voicebus_contracts import (
    TELEPHONE,
    Envelope,
    InboundAudioFrame,
    OutboundAudioChunk,
    Utterance,
    envelope,
)
from voicebus_gateway.playback import Playback
from voicebus_media.calls import Calls
from voicebus_media.settings import MediaSettings
from voicebus_media.silero import SileroVad
from voicebus_stt.app import recognizer_for
from voicebus_stt.ports import SpeechRecognizer
from voicebus_stt.settings import SttSettings
from voicebus_stt.transcriber import Transcriber
from voicebus_tts.app import synthesizers_for
from voicebus_tts.core import Speaker
from voicebus_tts.ports import SpeechSynthesizer
from voicebus_tts.settings import TtsSettings
from voicebus_tts.voices import Voice

FRAME_BYTES = 160
SILENCE = b"\xff" * FRAME_BYTES
PRODUCER = "bench-inprocess"


class _FirstFrameSink:
    """A caller's socket that notes when the first audio frame went out."""

    def __init__(self) -> None:
        self.first_audio_at: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    async def send_audio(self, audio: bytes) -> None:
        if not self.first_audio_at.done():
            self.first_audio_at.set_result(time.time())

    async def send_mark(self, name: str) -> None:
        return None

    async def clear(self) -> None:
        return None


async def _reply_started(_: Envelope[OutboundAudioChunk]) -> None:
    return None


class InProcessPipeline:
    """One caller turn through every stage, measured from the end-of-turn decision."""

    def __init__(self, *, recognizer: SpeechRecognizer, synthesizer: SpeechSynthesizer) -> None:
        self._media = Calls(vad=SileroVad(), settings=MediaSettings())
        self._transcriber = Transcriber(recognizer=recognizer)
        tts = TtsSettings(provider="instant")
        self._speaker = Speaker(chunk_ms=tts.chunk_ms)
        self._voice = Voice(provider=tts.provider, name=tts.voice, synthesizer=synthesizer)

    @classmethod
    def with_instant_providers(cls) -> InProcessPipeline:
        return cls(
            recognizer=recognizer_for(SttSettings(provider="instant")),
            synthesizer=synthesizers_for(TtsSettings(provider="instant"))["instant"],
        )

    async def turn(self, speech: bytes) -> float:
        """Milliseconds from the end-of-turn decision to the first reply frame sent."""
        call_id = f"inprocess-{uuid.uuid4().hex}"
        sink = _FirstFrameSink()
        playback = Playback(
            call_id=call_id, sink=sink, audio_format=TELEPHONE, on_reply_started=_reply_started
        )
        playback.start()
        try:
            utterance = self._hear(call_id, speech)
            transcript = await self._transcriber.transcribe(utterance.event)
            stamps = utterance.stamps.stamp(transcribed=time.time())
            conversation = Conversation(call_id=call_id, store=MemoryConversationStore())
            reply = await conversation.answer(
                turn_id=transcript.turn_id,
                caller_text=transcript.text,
                responder=AcknowledgingResponder(),
            )
            async for chunk in chunks_of(reply):
                if chunk.seq == 0:
                    stamps = stamps.stamp(reply_first_text=time.time())
                text = envelope(chunk, call_id=call_id, producer=PRODUCER, stamps=stamps)
                async for audio in self._speaker.speak(text, TELEPHONE, voice=self._voice):
                    playback.enqueue(audio)
                if sink.first_audio_at.done():
                    break
            first_audio_at = await sink.first_audio_at
        finally:
            await playback.stop()
            self._media.ended(call_id)
        assert utterance.stamps.turn_ended is not None
        return (first_audio_at - utterance.stamps.turn_ended) * 1000.0

    def _hear(self, call_id: str, speech: bytes) -> Envelope[Utterance]:
        """Feed the caller's speech and then silence to media until it hands over the turn."""
        frames = [
            speech[i : i + FRAME_BYTES].ljust(FRAME_BYTES, b"\xff")
            for i in range(0, len(speech), FRAME_BYTES)
        ]
        for seq, audio in enumerate([SILENCE] * 25 + frames + [SILENCE] * 100):
            frame = InboundAudioFrame(
                seq=seq, audio=audio, format=TELEPHONE, received_at=time.time()
            )
            for out in self._media.hear(envelope(frame, call_id=call_id, producer=PRODUCER)):
                if isinstance(out.event, Utterance):
                    return out
        raise RuntimeError("media heard no turn in the benchmark's speech")
