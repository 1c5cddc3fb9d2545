"""How long an asyncio event loop went unserved, and what it was doing meanwhile.

A 10 ms ticker on the loop measures each gap (how late it woke). Two things make a bare ticker a
poor witness on a busy two-core machine late in a long test session:

* the interpreter's cyclic garbage collector stops every thread; a full collection of a heap
  grown over a thousand tests can take longer than our limit, yet it is not our code blocking the
  loop. ``gc.callbacks`` tell us how much of each gap the collector took; ``LoopGaps.worst`` leaves
  it out and ``LoopGaps.report()`` shows it.
* a failing assertion that says only "blocked for 0.69 s" cannot be acted on. A watchdog thread
  samples the loop thread's Python stack whenever the ticker is overdue, so the report names the
  frame that held the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import sys
import threading
import time
import traceback
from collections.abc import AsyncIterator
from typing import Any

STACK_AFTER = 0.1
"""The watchdog samples the loop thread's stack once the ticker is this late (seconds)."""


@dataclasses.dataclass
class Gap:
    """One tick: how late it woke (``late``), how much of that the garbage collector took
    (``gc``), and the loop thread's stack if the watchdog caught it overdue."""

    late: float
    gc: float = 0.0
    stack: str = ""

    @property
    def ours(self) -> float:
        return max(0.0, self.late - self.gc)


@dataclasses.dataclass
class LoopGaps:
    ticks: list[Gap] = dataclasses.field(default_factory=list)

    @property
    def gaps(self) -> list[float]:
        """How late each tick was, garbage collection left out (seconds)."""
        return [tick.ours for tick in self.ticks]

    @property
    def worst(self) -> float:
        return max(self.gaps, default=0.0)

    def report(self) -> str:
        """The worst tick in words, with the stack that held the loop if one was caught."""
        if not self.ticks:
            return "no ticks"
        tick = max(self.ticks, key=lambda t: t.ours)
        total_gc = sum(t.gc for t in self.ticks)
        text = (
            f"the loop was blocked for {tick.ours:.3f}s (tick {tick.late:.3f}s late, of which "
            f"{tick.gc:.3f}s garbage collection; {len(self.ticks)} ticks, {total_gc:.3f}s GC in all)"
        )
        if tick.stack:
            text += f"\nthe loop thread was in:\n{tick.stack}"
        return text

    def assert_below(self, limit: float) -> None:
        assert self.worst < limit, self.report()


class _GcClock:
    """Total seconds spent in garbage collection since it was installed."""

    def __init__(self) -> None:
        self.total = 0.0
        self._started: float | None = None

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.monotonic()
        elif self._started is not None:
            self.total += time.monotonic() - self._started
            self._started = None


@contextlib.asynccontextmanager
async def loop_monitor(tick: float = 0.01) -> AsyncIterator[LoopGaps]:
    """Measures how late a 10 ms ticker wakes up: the longest time the loop was not served."""
    result = LoopGaps()
    stop = asyncio.Event()
    clock = _GcClock()
    loop_thread = threading.get_ident()
    last_tick = time.monotonic()
    caught: dict[int, str] = {}  # tick number -> stack sampled while it was overdue
    ticks_done = 0

    def watchdog() -> None:
        while not stop.is_set():
            time.sleep(tick)
            overdue = time.monotonic() - last_tick - tick
            number = ticks_done
            if overdue > STACK_AFTER and number not in caught:
                frame = sys._current_frames().get(loop_thread)
                if frame is not None:
                    caught[number] = "".join(traceback.format_stack(frame)[-12:])

    async def ticker() -> None:
        nonlocal last_tick, ticks_done
        gc_before = clock.total
        while not stop.is_set():
            await asyncio.sleep(tick)
            now = time.monotonic()
            gc_now = clock.total
            late = now - last_tick - tick
            result.ticks.append(Gap(late, gc_now - gc_before, caught.get(ticks_done, "")))
            last_tick, gc_before = now, gc_now
            ticks_done += 1

    gc.callbacks.append(clock)
    thread = threading.Thread(target=watchdog, name="loop-gap-watchdog", daemon=True)
    task = asyncio.ensure_future(ticker())
    await asyncio.sleep(0)
    last_tick = time.monotonic()
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        await task
        thread.join()
        gc.callbacks.remove(clock)
