"""Bus hop latency: from publishing an event to the start of the consumer's handler."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

from voicebus_contracts import TELEPHONE, Envelope, InboundAudioFrame, envelope
from voicebus_contracts.topics import AUDIO_IN, Topic
from voicebus_runtime.bus import consumer_options, ensure_topics, make_broker, publish

PROBE_AUDIO = b"\xff" * 160
"""A real 20 ms telephone frame: the probe weighs what the audio path carries."""


async def measure_hops(
    bootstrap: str, *, count: int, rate_per_s: float, fetch_max_wait_ms: int
) -> list[float]:
    """Milliseconds from publish to handler start for `count` frames sent at `rate_per_s`.

    The consumer fetches like a voice-path consumer (`fetch_max_wait_ms`). Producer and
    consumer live in this process, so both ends read the same clock. The probe
    topic has the audio topic's partition count, and frames are keyed by a handful of call ids.
    """
    topic = Topic(f"voicebus.bench.hop.{uuid.uuid4().hex[:8]}", AUDIO_IN.partitions, "probe")
    await ensure_topics(bootstrap, [topic])
    broker = make_broker(bootstrap, client_id="voicebus-bench-hop")
    hops: list[float] = []
    all_arrived = asyncio.Event()

    group = f"bench-hop-{uuid.uuid4().hex[:8]}"

    @broker.subscriber(topic.name, **consumer_options(group, fetch_max_wait_ms=fetch_max_wait_ms))
    async def on_probe(env: Envelope[InboundAudioFrame]) -> None:
        hops.append((time.time() - env.created_at) * 1000.0)
        if len(hops) >= count:
            all_arrived.set()

    async with broker:
        await broker.start()
        start = time.monotonic()
        for seq in range(count):
            frame = InboundAudioFrame(
                seq=seq, audio=PROBE_AUDIO, format=TELEPHONE, received_at=time.time()
            )
            env = envelope(frame, call_id=f"bench-hop-{seq % 8}", producer="bench")
            await publish(broker, topic, env, confirm=False)
            await asyncio.sleep(max(0.0, start + (seq + 1) / rate_per_s - time.monotonic()))
        # Report what arrived; the count says how many did not.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_arrived.wait(), timeout=30)
    return hops
