"""The realtime pipeline's own latency: the real stack with a realtime agent whose
speech-to-speech model (a local fake speaking OpenAI Realtime's protocol) hears the caller's
turns in their audio and answers at once. What is left is the platform's: from the model's end
of turn, as the agent worker hears it, to the first of its audio sent to the caller; and voice
to voice, which adds the model's turn detection (500 ms of silence)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from voicebus_bench.capacity import run_level
from voicebus_bench.stats import percentiles
from voicebus_devstack.fake_openai_realtime import FakeOpenAIRealtime
from voicebus_devstack.harness import RunningStack

AGENT_ID = "realtime-bench"
PROPAGATION_S = 3.0
"""Every service learns a new agent from the bus within its background fetch wait."""


def stack_env(model: FakeOpenAIRealtime) -> dict[str, str]:
    """A stack whose calls go to the realtime agent (created by `measure`), on `model`."""
    return {
        "VOICEBUS_AGENT_REALTIME_BASE_URL": model.base_url,
        "VOICEBUS_AGENT_REALTIME_API_KEY": model.api_key,
        "VOICEBUS_GATEWAY_DEFAULT_AGENT": AGENT_ID,
    }


async def measure(stack: RunningStack, speech: bytes, *, calls: int, turns: int) -> dict[str, Any]:
    agent = {"agent_id": AGENT_ID, "name": "Realtime benchmark", "pipeline": "realtime"}
    async with httpx.AsyncClient(base_url=stack.base_url) as api:
        created = await api.post("/api/agents", json=agent)
        created.raise_for_status()
    await asyncio.sleep(PROPAGATION_S)
    level = await run_level(stack=stack, speech=speech, calls=calls, turns=turns, stagger_s=0.5)
    voice_to_voice = [latency["voice_to_voice_ms"] for latency in level.latencies]
    platform = [
        latency["voice_to_voice_ms"] - latency["endpoint_ms"]
        for latency in level.latencies
        if latency["endpoint_ms"] is not None
    ]
    return {
        "realtime_overhead_ms": percentiles(platform, "p50", "p95"),
        "realtime_voice_to_voice_ms": percentiles(voice_to_voice, "p50", "p95"),
        "realtime_turns": {"said": level.turns_expected, "on_record": level.turns_recorded},
    }
