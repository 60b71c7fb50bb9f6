"""When the local stack starts a crashed service process again, as Kubernetes restarts a pod's
container: soon, later and later while it keeps crashing at once, never once it is a crash loop."""

from __future__ import annotations

from dataclasses import dataclass, field

STABLE_S = 60.0
"""A process that ran this long before exiting crashed on its own account, not in a loop: the
count of crashes in a row starts over."""
MAX_DELAY_S = 30.0


@dataclass
class Restarts:
    """The restart policy of the stack's service processes, by process name."""

    delay_s: float
    """The wait before the first restart; doubled for each further crash in a row."""
    limit: int
    """How many crashes in a row are restarted; 0: none is."""
    _in_a_row: dict[str, int] = field(default_factory=dict)

    def after_exit(self, process: str, *, uptime_s: float) -> float | None:
        """How long to wait before starting `process` again, now that it exited after running
        `uptime_s`; None: do not, it crashed `limit` times in a row, each soon after its start."""
        in_a_row = 1 if uptime_s >= STABLE_S else self._in_a_row.get(process, 0) + 1
        self._in_a_row[process] = in_a_row
        if in_a_row > self.limit:
            return None
        return min(self.delay_s * 2.0 ** (in_a_row - 1), MAX_DELAY_S)
