"""``PollPolicy``: how often and how patiently an execution is polled; the defaults live here only.

The Airflow configuration options (``poll_interval``, ``unknown_limit``, ``call_timeout``) default
to these same values, and a handle that carries no policy falls back to them.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

from executors.core.phase import TaskPhase


@dataclasses.dataclass(frozen=True)
class PollPolicy:
    """How often and how patiently an execution is polled (all durations in seconds)."""

    interval: float = 5.0
    """Seconds between two status checks of a running execution."""
    watched_interval: float = 30.0
    """Seconds between two checks of a running execution that its executor watches
    (``TaskStatus.watched``: its end wakes the driver at once); never less than ``interval``. The
    check is only a guard against a lost wake-up, and thousands of them cost the triggerer CPU."""
    output_interval: float = 5.0
    """Seconds between two copies of a running execution's new output into the caller's log
    (:mod:`executors.engine.output`); ``0`` copies it once, at the end. While copies find nothing
    new the wait doubles, up to ``watched_interval``: a quiet task costs what a watched one does."""
    max_backoff: float = 60.0
    """The longest wait between two calls while the backend says NOT_READY or UNKNOWN."""
    jitter: float = 0.2
    """Each delay is multiplied by a random factor in [1 - jitter, 1 + jitter]: thousands of
    triggers deferred at once must not poll in lock step."""
    unknown_limit: int = 10
    """Consecutive UNKNOWN answers (or set-up failures) before the attempt fails as retryable."""
    call_timeout: float = 120.0
    """Seconds one executor call (start, check, kill) may take before it counts as UNKNOWN."""

    def delay(self, phase: TaskPhase, streak: int, *, watched: bool = False) -> float:
        """Seconds to wait before the next call, after ``streak`` consecutive slow-phase answers;
        ``watched``: the executor promised to wake the driver when the phase changes."""
        base = self.interval
        if phase in (TaskPhase.NOT_READY, TaskPhase.UNKNOWN) and streak > 1:
            base = min(self.max_backoff, self.interval * 2 ** min(streak - 1, 16))
        elif watched:
            base = max(self.interval, self.watched_interval)
        return max(0.0, base * random.uniform(1 - self.jitter, 1 + self.jitter))

    def output_delay(self, quiet: int = 0) -> float:
        """Seconds until the next copy of a running execution's output after ``quiet`` copies in a
        row that found nothing new: ``output_interval``, doubled per quiet copy up to
        ``watched_interval`` (never below ``output_interval``), jittered like the checks
        (thousands of executions started together must not copy in lock step)."""
        cap = max(self.output_interval, self.watched_interval)
        base = min(cap, self.output_interval * 2.0 ** min(quiet, 16))
        return max(0.0, base * random.uniform(1 - self.jitter, 1 + self.jitter))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> PollPolicy:
        """Known fields only; missing ones take the defaults above."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in names})


DEFAULT_POLICY = PollPolicy()
