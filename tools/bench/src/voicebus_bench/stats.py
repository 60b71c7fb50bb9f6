"""Percentiles of measured samples, in the shape the results file uses."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

QUANTILES = {"p50": 50.0, "p95": 95.0, "p99": 99.0, "p999": 99.9}


def percentiles(samples: Sequence[float], *names: str) -> dict[str, float | None]:
    """The named percentiles (p50, p95, p99, p999) of `samples`, rounded to 0.1; None if empty."""
    if not samples:
        return dict.fromkeys(names)
    values = np.asarray(samples, dtype=np.float64)
    return {name: round(float(np.percentile(values, QUANTILES[name])), 1) for name in names}


def median(samples: Sequence[float]) -> float | None:
    return percentiles(samples, "p50")["p50"]
