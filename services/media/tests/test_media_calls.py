"""Calls: frames of a call in, speech events and utterances out, as bus envelopes."""

from __future__ import annotations

import numpy as np

from voicebus_audio import pcm16_to_mulaw
from voicebus_contracts import (
    SPEECH_16K,
    TELEPHONE,
    AudioFormat,
    CallStarted,
    Envelope,
    InboundAudioFrame,
    SpeechStarted,
    SpeechStopped,
    Utterance,
    UtteranceChunk,
    derived_id,
    envelope,
)
from voicebus_contracts.agents import AgentConfigured, AgentSpec, TurnTaking
from voicebus_media.calls import Calls, MediaEnvelope
from voicebus_media.ports import Samples
from voicebus_media.settings import MediaSettings
from voicebus_runtime.agents import AgentDirectory

T0 = 1_700_000_000.0
FRAME_S = 0.02


class LoudnessVad:
    """Calls loud audio speech: enough to drive the pipeline without a model."""

    window_samples = 512

    def speech_probability(self, window: Samples) -> float:
        return 0.9 if np.abs(window.astype(np.int32)).mean() > 1_000 else 0.05


class LoudnessModel:
    def new_detector(self) -> LoudnessVad:
        return LoudnessVad()


def tone(seconds: float, rate: int) -> Samples:
    t = np.arange(round(seconds * rate)) / rate
    return (8_000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)


def quiet(seconds: float, rate: int) -> Samples:
    return np.zeros(round(seconds * rate), dtype=np.int16)


def frames(
    audio: Samples, fmt: AudioFormat, *, call_id: str = "call-1"
) -> list[Envelope[InboundAudioFrame]]:
    """The call's audio in 20 ms frames, received FRAME_S apart from T0."""
    step = fmt.sample_rate // 50
    payload = pcm16_to_mulaw if fmt.encoding == "mulaw" else (lambda s: s.tobytes())
    return [
        envelope(
            InboundAudioFrame(
                seq=n,
                audio=payload(audio[start : start + step]),
                format=fmt,
                received_at=T0 + n * FRAME_S,
            ),
            call_id=call_id,
            producer="gateway",
        )
        for n, start in enumerate(range(0, len(audio), step))
    ]


def hear_all(
    calls: Calls, envs: list[Envelope[InboundAudioFrame]], *, chunks: bool = False
) -> list[MediaEnvelope]:
    """What `calls` makes of `envs`; the turns' chunks are left out, unless `chunks`."""
    heard = [out for env in envs for out in calls.hear(env)]
    return [out for out in heard if chunks or not isinstance(out.event, UtteranceChunk)]


def one_turn(fmt: AudioFormat) -> list[Envelope[InboundAudioFrame]]:
    rate = fmt.sample_rate
    return frames(np.concatenate([quiet(1.0, rate), tone(1.5, rate), quiet(1.0, rate)]), fmt)


def test_a_turn_of_a_telephone_call_comes_out_as_speech_events_and_one_utterance() -> None:
    calls = Calls(vad=LoudnessModel(), settings=MediaSettings())
    received = one_turn(TELEPHONE)
    out = hear_all(calls, received)

    assert [type(env.event) for env in out] == [SpeechStarted, SpeechStopped, Utterance]
    started, stopped, utterance = (env.event for env in out)
    assert isinstance(started, SpeechStarted)
    assert isinstance(stopped, SpeechStopped)
    assert isinstance(utterance, Utterance)
    assert started.turn_id == stopped.turn_id == utterance.turn_id
    assert started.turn_id.startswith("call-1:t")
    assert abs(started.audio_offset_ms - 1_000) <= 64
    assert abs(stopped.audio_offset_ms - 2_500) <= 64
    assert utterance.format == SPEECH_16K
    assert len(utterance.audio) == utterance.duration_ms * 32
    around = MediaSettings().preroll_ms + MediaSettings().trailing_silence_ms
    assert 1_500 + around - 200 <= utterance.duration_ms <= 1_500 + around + 100  # pre-roll, tail
    assert utterance.speech_end_ms is not None
    assert (
        abs(utterance.speech_end_ms - (MediaSettings().preroll_ms + 1_500)) <= 64
    )  # pre-roll, speech
    assert all(env.call_id == "call-1" and env.producer == "media" for env in out)


def test_a_turn_under_way_comes_out_in_chunks_named_by_their_frame() -> None:
    calls = Calls(vad=LoudnessModel(), settings=MediaSettings(partial_interval_ms=500))
    received = one_turn(TELEPHONE)
    out: list[tuple[Envelope[InboundAudioFrame], MediaEnvelope]] = [
        (env, heard) for env in received for heard in calls.hear(env)
    ]

    chunks = [(env, heard) for env, heard in out if isinstance(heard.event, UtteranceChunk)]
    utterance = out[-1][1].event
    assert isinstance(utterance, Utterance)
    assert [heard.event.seq for _, heard in chunks] == list(range(len(chunks)))
    assert [heard.event.paused for _, heard in chunks] == [False] * (len(chunks) - 1) + [True]
    for env, heard in chunks:
        assert isinstance(heard.event, UtteranceChunk)
        assert heard.event.turn_id == utterance.turn_id
        assert heard.event.format == SPEECH_16K
        name = f"{utterance.turn_id}:utterance.chunk:{heard.event.seq}"
        assert heard.event_id == derived_id(env.event_id, name)
    so_far = b"".join(heard.event.audio for _, heard in chunks)
    assert utterance.speech_end_ms is not None
    spoken = utterance.speech_end_ms * 32
    assert so_far[:spoken] == utterance.audio[:spoken]


def test_stamps_mark_the_end_of_speech_and_the_end_of_turn_decision() -> None:
    calls = Calls(vad=LoudnessModel(), settings=MediaSettings())
    out = hear_all(calls, one_turn(TELEPHONE))
    started, stopped, utterance = out

    assert started.stamps.speech_ended is None
    assert stopped.stamps == utterance.stamps
    speech_ended = stopped.stamps.speech_ended
    turn_ended = stopped.stamps.turn_ended
    assert speech_ended is not None
    assert turn_ended is not None
    # The first silent window is in the frame received ~2.5 s into the call.
    assert abs(speech_ended - (T0 + 2.5)) <= 0.064
    assert turn_ended > speech_ended


def test_redelivered_frames_produce_the_same_event_ids_and_duplicates_nothing() -> None:
    received = one_turn(TELEPHONE)
    first = hear_all(Calls(vad=LoudnessModel(), settings=MediaSettings()), received)
    again = hear_all(Calls(vad=LoudnessModel(), settings=MediaSettings()), received)
    assert [env.event_id for env in first] == [env.event_id for env in again]

    calls = Calls(vad=LoudnessModel(), settings=MediaSettings())
    twice = [env for env in received for env in (env, env)]
    assert len(hear_all(calls, twice)) == 3


def test_the_emitted_ids_derive_from_the_frame_that_ended_the_turn() -> None:
    received = one_turn(TELEPHONE)
    calls = Calls(vad=LoudnessModel(), settings=MediaSettings())
    for env in received:
        out = calls.hear(env)
        if out and isinstance(out[0].event, SpeechStopped):
            turn_id = out[0].event.turn_id
            assert out[0].event_id == derived_id(env.event_id, f"{turn_id}:speech.stopped")
            assert out[1].event_id == derived_id(env.event_id, f"{turn_id}:utterance")
            return
    raise AssertionError("the turn never ended")


def test_a_web_call_in_pcm16_16k_is_heard_like_a_telephone_call() -> None:
    calls = Calls(vad=LoudnessModel(), settings=MediaSettings())
    out = hear_all(calls, one_turn(SPEECH_16K))
    assert [type(env.event) for env in out] == [SpeechStarted, SpeechStopped, Utterance]


def test_calls_are_heard_independently() -> None:
    calls = Calls(vad=LoudnessModel(), settings=MediaSettings())
    audio = np.concatenate([quiet(1.0, 8_000), tone(1.5, 8_000), quiet(1.0, 8_000)])
    first, second = frames(audio, TELEPHONE, call_id="a"), frames(audio, TELEPHONE, call_id="b")
    out = hear_all(calls, [env for pair in zip(first, second, strict=True) for env in pair])
    for call_id in ("a", "b"):
        heard = [type(env.event) for env in out if env.call_id == call_id]
        assert heard == [SpeechStarted, SpeechStopped, Utterance]


def test_an_ended_call_is_forgotten_and_its_late_frames_dropped() -> None:
    calls = Calls(vad=LoudnessModel(), settings=MediaSettings())
    received = one_turn(TELEPHONE)
    hear_all(calls, received[:10])
    assert "call-1" in calls

    calls.ended("call-1")
    assert "call-1" not in calls
    assert hear_all(calls, received[10:]) == []
    assert "call-1" not in calls


def test_a_frame_that_is_not_whole_samples_is_skipped() -> None:
    calls = Calls(vad=LoudnessModel(), settings=MediaSettings())
    odd = envelope(
        InboundAudioFrame(seq=0, audio=b"\x01\x02\x03", format=SPEECH_16K, received_at=T0),
        call_id="call-1",
        producer="gateway",
    )
    assert calls.hear(odd) == []


def test_a_gap_in_frames_is_survived() -> None:
    calls = Calls(vad=LoudnessModel(), settings=MediaSettings())
    received = one_turn(TELEPHONE)
    out = hear_all(calls, received[:30] + received[40:])
    assert [type(env.event) for env in out] == [SpeechStarted, SpeechStopped, Utterance]


def test_a_worker_taking_over_mid_call_places_turns_in_the_call() -> None:
    calls = Calls(vad=LoudnessModel(), settings=MediaSettings())
    out = hear_all(calls, one_turn(TELEPHONE)[25:])  # joins 0.5 s into the call
    started = out[0].event
    assert isinstance(started, SpeechStarted)
    assert abs(started.audio_offset_ms - 1_000) <= 64


def _patient_calls() -> Calls:
    agents = AgentDirectory()
    patient = AgentSpec(
        agent_id="patient", name="Patient", turn_taking=TurnTaking(end_of_turn_silence_ms=1500)
    )
    agents.heard(envelope(AgentConfigured(agent=patient), call_id="patient", producer="agent"))
    return Calls(vad=LoudnessModel(), settings=MediaSettings(), agents=agents)


def _start(calls: Calls, call_id: str, agent_id: str) -> None:
    calls.started(
        call_id,
        CallStarted(
            transport="twilio",
            agent_id=agent_id,
            gateway_id="gw",
            audio_in=TELEPHONE,
            audio_out=TELEPHONE,
        ),
    )


def _paused_sentence(call_id: str) -> list[Envelope[InboundAudioFrame]]:
    """Speech, 800 ms of silence, speech, then quiet."""
    rate = TELEPHONE.sample_rate
    audio = np.concatenate([tone(1.0, rate), quiet(0.8, rate), tone(1.0, rate), quiet(2.0, rate)])
    return frames(audio, TELEPHONE, call_id=call_id)


def _utterances(out: list[MediaEnvelope], call_id: str) -> int:
    return sum(isinstance(env.event, Utterance) and env.call_id == call_id for env in out)


def test_each_call_ends_turns_after_its_agents_own_silence() -> None:
    calls = _patient_calls()
    _start(calls, "quick", "default")
    _start(calls, "slow", "patient")
    quick, slow = _paused_sentence("quick"), _paused_sentence("slow")
    out = hear_all(calls, [env for pair in zip(quick, slow, strict=True) for env in pair])

    assert _utterances(out, "quick") == 2  # the 800 ms pause ends the default 500 ms turn
    assert _utterances(out, "slow") == 1  # but not the patient agent's 1500 ms one


def test_a_call_whose_first_frames_come_before_its_start_takes_its_agents_settings() -> None:
    calls = _patient_calls()
    received = _paused_sentence("late")
    out = hear_all(calls, received[:10])  # the calls topic is behind the audio topic
    _start(calls, "late", "patient")
    out += hear_all(calls, received[10:])

    assert _utterances(out, "late") == 1


def test_an_agent_without_its_own_silence_keeps_the_services_and_a_short_one_fits() -> None:
    defaults = MediaSettings()
    assert defaults.for_agent(TurnTaking()) == defaults
    brisk = defaults.for_agent(TurnTaking(end_of_turn_silence_ms=150))
    assert (brisk.end_of_turn_silence_ms, brisk.trailing_silence_ms) == (150, 150)
