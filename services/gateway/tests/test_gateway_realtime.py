"""A call to a realtime agent: announced as such, its audio on the realtime audio topic (where
the agent's speech-to-speech model hears it), so media, STT and TTS leave it alone."""

from __future__ import annotations

import uuid

from voicebus_contracts import envelope
from voicebus_contracts.agents import AgentConfigured, AgentSpec
from voicebus_contracts.topics import AUDIO_IN, CALLS, REALTIME_AUDIO_IN
from voicebus_devstack.polling import until

from .conftest import Running, open_call, twilio_media

REALTIME_NUMBER = "+15550100011"


async def test_a_realtime_agents_call_is_announced_so_and_its_audio_goes_to_its_topic(
    running: Running,
) -> None:
    spec = AgentSpec(
        agent_id="voice", name="Voice", phone_numbers=(REALTIME_NUMBER,), pipeline="realtime"
    )
    running.gateway.agents.heard(
        envelope(AgentConfigured(agent=spec), call_id="voice", producer="agent")
    )
    call_sid = f"CA{uuid.uuid4().hex}"
    socket = await open_call(running, call_sid, to=REALTIME_NUMBER)
    for chunk in range(4):
        await socket.send(twilio_media(chunk, bytes([chunk]) * 160))
    realtime = running.published[REALTIME_AUDIO_IN.name]
    await until(lambda: len(realtime) == 4)
    await socket.close()

    started = next(env for key, env in running.published[CALLS.name] if key == call_sid)
    assert started["event"]["pipeline"] == "realtime"
    assert {key for key, _ in realtime} == {call_sid}
    assert all(key != call_sid for key, _ in running.published[AUDIO_IN.name])
