"""Waking a waiting driver early: the seed's ``EnqueueOwner`` lands here.

An executor that knows a status changed (a freed concurrency slot, a backend notification) calls
:func:`wake_owner` with the owner id; every driver of that owner waiting in
:meth:`ExecutionDriver.run` checks again at once instead of sleeping out its poll interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from executors.core.context import TaskContext


class Waker:
    """A wait that someone else can cut short (the seed's EnqueueOwner lands here).

    Cheaper than ``asyncio.wait_for(event.wait(), delay)``, which creates a task per wait: one
    future and one timer per wait matter when ten thousand triggers poll on one loop. A ``set()``
    that arrives while nobody waits is kept for the next wait. Loop-bound: call ``set`` from the
    loop's thread (``loop.call_soon_threadsafe(waker.set)`` from another).
    """

    def __init__(self) -> None:
        self._future: asyncio.Future[bool] | None = None
        self._pending = False

    def set(self) -> None:
        if self._future is not None and not self._future.done():
            self._future.set_result(True)
        else:
            self._pending = True

    def is_set(self) -> bool:
        return self._pending

    async def wait(self, delay: float) -> bool:
        """Sleep ``delay`` seconds, or less if ``set()`` is called (or was, since the last wait);
        returns whether it was cut short."""
        if self._pending:
            self._pending = False
            return True
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._future = future
        timer = loop.call_later(delay, _resolve, future)
        try:
            return await future
        finally:
            timer.cancel()
            self._future = None


def _resolve(future: asyncio.Future[bool]) -> None:
    if not future.done():
        future.set_result(False)


# Drivers run without a waker of their own (``ExecutionDriver.run()``) wait on one registered here
# under their owner, so that an executor can wake them (a freed concurrency slot) through
# :func:`wake_owner`, whatever engine, loop or thread it runs on.
_owner_wakers: dict[str, set[tuple[asyncio.AbstractEventLoop, Waker]]] = {}
_owner_wakers_lock = threading.Lock()


def owner_key(task_ctx: TaskContext) -> str:
    """The owner an executor names to EnqueueOwner for this execution: ``owner_id``, or the
    generated name when the engine set none."""
    return task_ctx.owner_id or task_ctx.generated_name


def wake_owner(owner: str) -> None:
    """An EnqueueOwner for :meth:`ExecutionDriver.run`: cut short the wait of every driver of
    ``owner`` that runs without a waker of its own. Cheap, thread-safe, never raises."""
    with _owner_wakers_lock:
        targets = list(_owner_wakers.get(owner, ()))
    for loop, waker in targets:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits there any more
            loop.call_soon_threadsafe(waker.set)


def register(task_ctx: TaskContext, waker: Waker) -> tuple[str, tuple[asyncio.AbstractEventLoop, Waker]]:
    """Make ``waker`` (on the running loop) one that :func:`wake_owner` sets for this execution's
    owner; hand the returned token to :func:`unregister` when the wait is over."""
    entry = (asyncio.get_running_loop(), waker)
    owner = owner_key(task_ctx)
    with _owner_wakers_lock:
        _owner_wakers.setdefault(owner, set()).add(entry)
    return owner, entry


def unregister(token: tuple[str, tuple[asyncio.AbstractEventLoop, Waker]]) -> None:
    owner, entry = token
    with _owner_wakers_lock:
        entries = _owner_wakers.get(owner)
        if entries is not None:
            entries.discard(entry)
            if not entries:
                del _owner_wakers[owner]
