"""The starts that wait here for a free slot, and their wake-ups.

A start that answered NOT_READY (see :mod:`executors.backends.local.admission`) will ask again; it is
remembered here, by owner and in order of arrival, and woken (the engine's ``EnqueueOwner`` and
:func:`executors.engine.waking.wake_owner`) as soon as a slot frees: when this process sees an execution
end, or when a look at the running list (every ``SLOT_POLL``, while anyone waits; every
``WATCHED_SLOT_POLL`` while this process watches every running execution) finds one free, as a slot
also frees when an execution ends unobserved or in another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import time
from collections.abc import Callable

from executors.core.context import TaskContext
from executors.core.interface import EnqueueOwner
from executors.core.phase import TaskPhase
from executors.core.status import TaskStatus
from executors.engine.waking import owner_key, wake_owner

SLOT_POLL = (0.05, 0.25)
"""Seconds between looks at the running list while starts wait here for a free slot: 2 ms per
``max_concurrent`` slot, within these bounds (a look costs a few stats and signals per entry)."""

WATCHED_SLOT_POLL = 5.0
"""Seconds between looks while this process watches every running execution (an end it watches
wakes a waiter at once): the look is then only for a slot freed by an execution another process
started since the last one."""

WAITER_TTL = 180.0
"""A waiting start that has not asked again for this long (its trigger went away) is forgotten."""

RECHECK_EVERY = 300.0
"""A waiting start may be answered from memory (see :meth:`Waiters.may_answer`) for this long
after its last full admission; then admission looks at its claim again (another process may
have started it meanwhile: the start re-attaches)."""

SWEEP_EVERY = 10.0
"""Seconds between two looks for forgotten waiters (``WAITER_TTL``)."""


@dataclasses.dataclass(eq=False)
class _Waiter:
    """A start that answered NOT_READY and will ask again (by owner, in order of arrival)."""

    seen: float
    checked: float
    """When admission last looked at it in full (its claim, the running list)."""
    woken: float = -math.inf


class Waiters:
    """The waiting starts of one executor. ``count_running`` is the running list's count (it
    runs in a thread)."""

    def __init__(
        self,
        max_concurrent: int,
        count_running: Callable[[], int],
        all_watched: Callable[[], bool] = lambda: False,
    ) -> None:
        self.max_concurrent = max_concurrent
        self.enqueue: EnqueueOwner | None = None
        self._count_running = count_running
        self._all_watched = all_watched
        self._waiters: dict[str, _Waiter] = {}
        self._watcher: asyncio.Task[None] | None = None

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        self._watcher = None
        self._waiters.clear()

    def may_answer(self, task_ctx: TaskContext) -> bool:
        """Whether a start that asks again may be answered NOT_READY without admission's look (the
        caller knows every slot is still held): it waits here, was not woken since it last asked
        (a slot may be free for it), and had a full look less than ``RECHECK_EVERY`` seconds ago."""
        waiter = self._waiters.get(owner_key(task_ctx))
        if waiter is None or waiter.woken > waiter.seen:
            return False
        return time.monotonic() - waiter.checked < RECHECK_EVERY

    def after_start(self, task_ctx: TaskContext, status: TaskStatus, *, from_memory: bool = False) -> None:
        """Record a start's answer (``from_memory``: given by :meth:`may_answer`'s grace)."""
        if not self.max_concurrent:
            return
        owner = owner_key(task_ctx)
        if status.phase is TaskPhase.NOT_READY:
            now = time.monotonic()
            waiter = self._waiters.get(owner)
            if waiter is None:
                self._waiters[owner] = _Waiter(seen=now, checked=now)
            else:
                waiter.seen = now
                if not from_memory:
                    waiter.checked = now
            self._watch_slots()
            return
        self._waiters.pop(owner, None)
        if status.phase.is_final_for_execution():  # a launch that failed holds no slot
            self.slot_freed()

    def slot_freed(self) -> None:
        if self._waiters:
            self._wake(1)
            self._watch_slots()

    def wake(self, owner: str) -> None:
        """Ask the engine to check ``owner`` again right now (EnqueueOwner, and the driver's own
        waker); never fails the caller."""
        for callback in (self.enqueue, wake_owner):
            if callback is not None:
                with contextlib.suppress(Exception):
                    callback(owner)

    def _wake(self, free: int) -> None:
        """Ask the engine (EnqueueOwner) to start again, right now, the first ``free`` waiters
        (in order of arrival) that were not already asked and have not answered yet."""
        now = time.monotonic()
        in_flight = [w for w in self._waiters.values() if w.woken > w.seen and now - w.woken < 2.0]
        budget = free - len(in_flight)
        for owner, waiter in list(self._waiters.items()):
            if budget <= 0:
                break
            if waiter in in_flight:
                continue
            waiter.woken = now
            budget -= 1
            self.wake(owner)

    def _watch_slots(self) -> None:
        """While starts wait here, look at the running list every 50 to 250 ms (``SLOT_POLL``; a slot
        also frees when an execution ends unobserved, or in another process) and wake waiters."""
        if self._watcher is not None and not self._watcher.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._watcher = loop.create_task(self._watch())

    async def _watch(self) -> None:
        swept = time.monotonic()
        while self._waiters:
            if self._all_watched():  # every end that frees a slot wakes a waiter by itself
                await asyncio.sleep(WATCHED_SLOT_POLL)
            else:
                await asyncio.sleep(min(SLOT_POLL[1], max(SLOT_POLL[0], 0.002 * self.max_concurrent)))
            now = time.monotonic()
            if now - swept > SWEEP_EVERY:  # not at every look: thousands may wait
                swept = now
                for owner in [o for o, w in self._waiters.items() if now - w.seen > WAITER_TTL]:
                    del self._waiters[owner]
            if not self._waiters:
                break
            try:
                running = await asyncio.to_thread(self._count_running)
            except Exception:  # an unreadable state root now: the drivers' own polls go on
                continue
            if running < self.max_concurrent:
                self._wake(self.max_concurrent - running)
