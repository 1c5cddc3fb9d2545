"""Per-call time limits for every driver on one loop, with one timer for all of them."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class CallTimeout(Exception):
    """An executor call outlived ``PollPolicy.call_timeout``."""


class _Watchdog:
    """Per-call time limits for every driver on one loop, with one timer for all of them.

    ``asyncio.timeout`` per call costs a timer (and a cancelled heap entry) per poll: at ten
    thousand triggers that is most of the loop's garbage. Here a call only registers its task and
    deadline; one timer, set for the earliest deadline, cancels the calls that outlive theirs.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._calls: dict[asyncio.Task[Any], list[Any]] = {}  # task -> [deadline, expired]
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")

    async def run(self, make: Callable[[], Awaitable[T]], limit: float) -> T:
        task = asyncio.current_task()
        if task is None or task in self._calls:  # not in a task, or nested: plain await
            return await make()
        deadline = self._loop.time() + limit
        entry = [deadline, False]
        self._calls[task] = entry
        if deadline < self._timer_at:
            self._schedule(deadline)
        try:
            return await make()
        except asyncio.CancelledError:
            # Ours only if we expired it and nobody else asked for a cancel meanwhile.
            if entry[1] and task.uncancel() == 0:
                raise CallTimeout from None
            raise
        finally:
            del self._calls[task]

    def _schedule(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._expire)

    def _expire(self) -> None:
        self._timer, self._timer_at = None, float("inf")
        now = self._loop.time()
        earliest = float("inf")
        for task, entry in self._calls.items():
            if entry[1]:
                continue
            if entry[0] <= now:
                entry[1] = True
                task.cancel()
            else:
                earliest = min(earliest, entry[0])
        if earliest != float("inf"):
            self._schedule(earliest)


_watchdogs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watchdog] = weakref.WeakKeyDictionary()


def watchdog() -> _Watchdog:
    loop = asyncio.get_running_loop()
    dog = _watchdogs.get(loop)
    if dog is None:
        dog = _watchdogs[loop] = _Watchdog(loop)
    return dog


async def call_with_limit(make: Callable[[], Awaitable[T]], limit: float) -> T:
    """Await ``make()``; :class:`CallTimeout` if it outlives ``limit`` seconds (a ``TimeoutError``
    the call raises itself is its own error and passes through as it is)."""
    return await watchdog().run(make, limit)
