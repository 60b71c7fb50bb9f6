"""Stage timestamps that travel with a turn, so its latency can be accounted stage by stage.

Each stage copies the stamps of the event it handles and adds its own (wall-clock seconds since
the epoch). The gateway's playback event carries the whole chain; analytics stores the breakdown.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StageStamps(BaseModel):
    """When each stage of one turn happened; unset stages are None."""

    # JSON has no NaN or infinity: a stamp would go out as null and come back as None.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    speech_ended: float | None = None
    """Gateway receipt of the first silent audio after the caller's last word."""
    turn_ended: float | None = None
    """Media decided the caller's turn is over (end-of-turn silence elapsed)."""
    transcribed: float | None = None
    """STT published the final transcript."""
    reply_first_text: float | None = None
    """Agent published the first text chunk of its reply."""
    tts_first_audio: float | None = None
    """TTS produced the first audio of the reply."""
    playback_started: float | None = None
    """Gateway sent the first audio of the reply to the caller."""

    def stamp(self, **stages: float) -> StageStamps:
        """A copy with the given stages set."""
        return self.model_copy(update=stages)


class LatencyBreakdown(BaseModel):
    """Per-stage latency of one agent turn, in milliseconds (None where a stage was not stamped)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoint_ms: float | None
    """End of caller speech -> end-of-turn decision (the silence we waited)."""
    stt_ms: float | None
    """End-of-turn decision -> final transcript."""
    first_text_ms: float | None
    """Final transcript -> first reply text."""
    first_audio_ms: float | None
    """First reply text -> first synthesized audio."""
    send_ms: float | None
    """First synthesized audio -> first audio sent to the caller."""
    voice_to_voice_ms: float | None
    """End of caller speech -> first audio sent to the caller."""

    @classmethod
    def of(cls, stamps: StageStamps) -> LatencyBreakdown:
        def span(start: float | None, end: float | None) -> float | None:
            return None if start is None or end is None else round((end - start) * 1000.0, 1)

        return cls(
            endpoint_ms=span(stamps.speech_ended, stamps.turn_ended),
            stt_ms=span(stamps.turn_ended, stamps.transcribed),
            first_text_ms=span(stamps.transcribed, stamps.reply_first_text),
            first_audio_ms=span(stamps.reply_first_text, stamps.tts_first_audio),
            send_ms=span(stamps.tts_first_audio, stamps.playback_started),
            voice_to_voice_ms=span(stamps.speech_ended, stamps.playback_started),
        )
