"""The arithmetic of latency: an agent turn's stages laid end to end, and percentiles over turns.

Plain Python over LatencyBreakdown, the durations analytics stores per agent turn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from voicebus_analytics.views import Measure, Service, Stage, StageSpan
from voicebus_contracts import LatencyBreakdown

STAGES: tuple[tuple[Stage, Service], ...] = (
    ("endpoint", "media"),
    ("stt", "stt"),
    ("first_text", "agent"),
    ("first_audio", "tts"),
    ("send", "gateway"),
)
"""The stages in the order a turn goes through them, each with the service doing it."""
MEASURES: tuple[Measure, ...] = (*(stage for stage, _ in STAGES), "voice_to_voice")


def took_ms(latency: LatencyBreakdown, measure: Measure) -> float | None:
    """How long `measure` took in the turn of `latency`, if it was stamped."""
    ms: float | None = getattr(latency, f"{measure}_ms")
    return ms


def waterfall(latency: LatencyBreakdown) -> list[StageSpan]:
    """The turn's stages laid end to end from the start of its first stamped one.

    Each stage starts where the one before it ended, so a stage not stamped (a greeting has no
    caller speech to end, hence no endpoint, stt or first text) has neither start nor duration,
    and after such a gap the starts of the later stages are not known either.
    """
    spans: list[StageSpan] = []
    start: float | None = None
    begun = False
    for stage, service in STAGES:
        duration = took_ms(latency, stage)
        if duration is not None and not begun:
            begun, start = True, 0.0
        spans.append(
            StageSpan(
                stage=stage,
                by=service,
                start_ms=None if duration is None else start,
                duration_ms=duration,
            )
        )
        start = None if duration is None or start is None else round(start + duration, 1)
    return spans


def percentile(ordered: Sequence[float], fraction: float) -> float | None:
    """The `fraction` percentile of the ascending `ordered`, interpolated linearly between the
    closest ranks (as PostgreSQL's percentile_cont); None for no values."""
    if not ordered:
        return None
    rank = fraction * (len(ordered) - 1)
    below = math.floor(rank)
    above = min(below + 1, len(ordered) - 1)
    return round(ordered[below] + (ordered[above] - ordered[below]) * (rank - below), 1)
