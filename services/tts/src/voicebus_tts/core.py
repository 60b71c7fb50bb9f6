"""Speaking a reply: synthesize each text chunk as it arrives, encode it for the call, cut it up.

A reply arrives as several text chunks (sentences); its audio chunks carry one running `seq`
across all of them. Each text chunk's speech streams through its own resampler, flushed when the
text chunk is spoken: soxr holds back 50-100 ms of output, which would otherwise cut the end of
a sentence off until the next one arrives. Synthesized speech starts and ends in silence, so the
joins between sentences do not click.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable

from voicebus_audio import Resampler, from_mono_pcm16
from voicebus_contracts import (
    AudioFormat,
    Envelope,
    OutboundAudioChunk,
    ReplyTextChunk,
    derived_id,
    envelope,
)
from voicebus_tts.normalize import speakable
from voicebus_tts.ports import PcmChunk, Sentence
from voicebus_tts.voices import Voice

PRODUCER = "tts"


class SpeechEncoder:
    """One text chunk's speech encoded for the call, resampled seamlessly across its chunks."""

    def __init__(self, audio_out: AudioFormat) -> None:
        self.audio_out = audio_out
        self._resampler: Resampler | None = None

    def encode(self, pcm: PcmChunk) -> bytes:
        if self._resampler is None:
            self._resampler = Resampler(
                from_rate=pcm.sample_rate, to_rate=self.audio_out.sample_rate
            )
        elif self._resampler.from_rate != pcm.sample_rate:
            raise ValueError(
                f"speech changed sample rate mid-sentence: {self._resampler.from_rate} Hz "
                f"then {pcm.sample_rate} Hz"
            )
        return from_mono_pcm16(self._resampler.process(pcm.samples), self.audio_out)

    def finish(self) -> bytes:
        """The end of the speech: what the resampler still holds."""
        if self._resampler is None:
            return b""
        return from_mono_pcm16(self._resampler.flush(), self.audio_out)


def _never() -> bool:
    return False


class Speaker:
    """Turns a call's reply text chunks into audio chunks for its gateway."""

    def __init__(self, *, chunk_ms: int) -> None:
        self._chunk_ms = chunk_ms

    async def speak(
        self,
        env: Envelope[ReplyTextChunk],
        audio_out: AudioFormat,
        *,
        voice: Voice,
        cancelled: Callable[[], bool] = _never,
    ) -> AsyncIterator[Envelope[OutboundAudioChunk]]:
        """The audio chunks of `env`'s text spoken by `voice`, in `audio_out`, as soon as each
        is ready.

        The first chunk of the text goes out as soon as it is synthesized, later ones carry
        `chunk_ms` of audio each. The reply's last text chunk ends with a chunk marked `last`,
        empty if there is no audio left. Once `cancelled()` (the caller interrupted the
        reply), the synthesis stops and nothing more of it is sent.
        """
        text = env.event
        speech = SpeechEncoder(audio_out)
        chunk_bytes = self._chunk_bytes(audio_out)
        published = 0
        pending = bytearray()

        def chunk(audio: bytes, *, last: bool) -> Envelope[OutboundAudioChunk]:
            nonlocal published
            seq, published = published, published + 1
            first_of_reply = text.seq == 0 and seq == 0
            stamps = env.stamps.stamp(tts_first_audio=time.time()) if first_of_reply else env.stamps
            event = OutboundAudioChunk(
                reply_id=text.reply_id,
                sentence=text.seq,
                seq=seq,
                audio=audio,
                format=audio_out,
                last=last,
            )
            return envelope(
                event,
                call_id=env.call_id,
                producer=PRODUCER,
                stamps=stamps,
                event_id=derived_id(env.event_id, f"audio-{seq}"),
            )

        # Numbers, dates, emails... as they are said, for every provider (and the phrase cache).
        spoken = speakable(text.text, language=voice.language)
        sentence = Sentence(text=spoken, reply_id=text.reply_id, last=text.last)
        stream = voice.synthesizer.synthesize(sentence, voice=voice.name)
        try:
            async for pcm in stream:
                if cancelled():
                    return
                pending += speech.encode(pcm)
                while pending and (published == 0 or len(pending) >= chunk_bytes):
                    yield chunk(bytes(pending[:chunk_bytes]), last=False)
                    del pending[:chunk_bytes]
        finally:
            if isinstance(stream, AsyncGenerator):
                await stream.aclose()  # stops the synthesis at once (the provider's stream too)
        if cancelled():
            return
        pending += speech.finish()
        if text.last or pending:
            yield chunk(bytes(pending), last=text.last)

    def _chunk_bytes(self, audio_out: AudioFormat) -> int:
        frame_bytes = audio_out.bytes_per_sample * audio_out.channels
        return max(1, audio_out.sample_rate * self._chunk_ms // 1000) * frame_bytes
