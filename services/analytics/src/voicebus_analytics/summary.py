"""Figures over many calls: latency percentiles, calls per day, durations, interruptions and
outcomes.

Plain Python over the facts the store selects, so every figure comes out the same on
PostgreSQL and SQLite.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from voicebus_analytics.latency import MEASURES, percentile, took_ms
from voicebus_analytics.views import (
    CallStatus,
    DailyCalls,
    Durations,
    Percentiles,
    Summary,
)
from voicebus_contracts import LatencyBreakdown

T = TypeVar("T", bound=str)


@dataclass(frozen=True)
class CallFacts:
    """What the summary needs of one call."""

    status: CallStatus
    started_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None


@dataclass(frozen=True)
class ReplyFacts:
    """What the summary needs of one agent turn."""

    latency: LatencyBreakdown
    interrupted: bool


def duration_s(started_at: datetime | None, ended_at: datetime | None) -> float | None:
    """Seconds from `started_at` to `ended_at`, to the millisecond, when both are known."""
    if started_at is None or ended_at is None:
        return None
    return round((ended_at - started_at).total_seconds(), 3)


def summarize(
    calls: Sequence[CallFacts], replies: Sequence[ReplyFacts], *, capped: bool
) -> Summary:
    """The figures of `calls`, whose agent turns are `replies`."""
    durations = [
        seconds
        for call in calls
        if (seconds := duration_s(call.started_at, call.ended_at)) is not None
    ]
    days = Counter(call.started_at.date() for call in calls if call.started_at is not None)
    interruptions = sum(reply.interrupted for reply in replies)
    return Summary(
        calls=len(calls),
        capped=capped,
        calls_per_day=[DailyCalls(day=day, calls=days[day]) for day in sorted(days)],
        duration=Durations(
            calls=len(durations),
            mean_s=round(statistics.fmean(durations), 3) if durations else None,
            median_s=round(statistics.median(durations), 3) if durations else None,
        ),
        latency={
            measure: _percentiles(took_ms(reply.latency, measure) for reply in replies)
            for measure in MEASURES
        },
        agent_turns=len(replies),
        interruptions=interruptions,
        interruption_rate=round(interruptions / len(replies), 4) if replies else None,
        statuses=_most_frequent_first(call.status for call in calls),
        end_reasons=_most_frequent_first(
            call.end_reason for call in calls if call.end_reason is not None
        ),
    )


def _most_frequent_first(values: Iterable[T]) -> dict[T, int]:
    """How often each of `values` occurs, most frequent first, ties in alphabetical order."""
    return dict(sorted(Counter(values).items(), key=lambda counted: (-counted[1], counted[0])))


def _percentiles(values: Iterable[float | None]) -> Percentiles:
    ordered = sorted(value for value in values if value is not None)
    return Percentiles(
        turns=len(ordered), p50_ms=percentile(ordered, 0.5), p95_ms=percentile(ordered, 0.95)
    )
