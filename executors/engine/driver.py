"""ExecutionDriver: the state machine that takes one execution from start to a final phase.

Both the Airflow trigger (deferrable) and the worker (``deferrable=False``) run this same code, so
the two paths cannot drift apart. It owns the rules of the phase table:

* the executor is asked to *start* until it accepts the task (NOT_READY means "not accepted, ask
  again"), then to *check* its status;
* NOT_READY and UNKNOWN back off (exponential with jitter, capped); an exception or a call that
  takes longer than ``call_timeout`` counts as UNKNOWN, never as a failure;
* ``unknown_limit`` consecutive UNKNOWNs end the execution as a retryable failure;
* UNDEFINED (an executor bug or illegal state) ends it as a retryable failure naming the executor;
* every change of phase or phase version is one ``TaskExecutionEvent`` and one log line.

The driver holds no resources: everything needed to resume is in :meth:`snapshot`, which is
JSON-safe, so a restarted process resumes where the last one stopped and never starts twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from flyteidl.core import literals_pb2, tasks_pb2

from executors.core.context import TaskContext
from executors.core.interface import EventRecorder, Executor
from executors.core.phase import TaskPhase
from executors.core.status import ErrorOrigin, TaskError, TaskStatus, retryable_failure
from executors.engine.events import build_task_event

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PollPolicy:
    """How often and how patiently an execution is polled (all durations in seconds)."""

    interval: float = 5.0
    max_backoff: float = 60.0
    jitter: float = 0.2
    """Each delay is multiplied by a random factor in [1 - jitter, 1 + jitter]: thousands of
    triggers deferred at once must not poll in lock step."""
    unknown_limit: int = 10
    call_timeout: float = 120.0

    def delay(self, phase: TaskPhase, streak: int) -> float:
        """Seconds to wait before the next call, after ``streak`` consecutive slow-phase answers."""
        base = self.interval
        if phase in (TaskPhase.NOT_READY, TaskPhase.UNKNOWN) and streak > 1:
            base = min(self.max_backoff, self.interval * 2 ** min(streak - 1, 16))
        return max(0.0, base * random.uniform(1 - self.jitter, 1 + self.jitter))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PollPolicy:
        return cls(**data)


class Waker:
    """A wait that someone else can cut short (the seed's EnqueueOwner lands here).

    Cheaper than ``asyncio.wait_for(event.wait(), delay)``, which creates a task per wait: one
    future and one timer per wait matter when ten thousand triggers poll on one loop. A ``set()``
    that arrives while nobody waits is kept for the next wait. Loop-bound: call ``set`` from the
    loop's thread (``loop.call_soon_threadsafe(waker.set)`` from another).
    """

    def __init__(self) -> None:
        self._future: asyncio.Future[None] | None = None
        self._pending = False

    def set(self) -> None:
        if self._future is not None and not self._future.done():
            self._future.set_result(None)
        else:
            self._pending = True

    def is_set(self) -> bool:
        return self._pending

    async def wait(self, delay: float) -> None:
        """Sleep ``delay`` seconds, or less if ``set()`` is called (or was, since the last wait)."""
        if self._pending:
            self._pending = False
            return
        loop = asyncio.get_running_loop()
        future = self._future = loop.create_future()
        timer = loop.call_later(delay, _resolve, future)
        try:
            await future
        finally:
            timer.cancel()
            self._future = None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


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


class _CallTimeout(Exception):
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
                raise _CallTimeout from None
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


def _watchdog() -> _Watchdog:
    loop = asyncio.get_running_loop()
    dog = _watchdogs.get(loop)
    if dog is None:
        dog = _watchdogs[loop] = _Watchdog(loop)
    return dog


class ExecutionDriver:
    """Drive one execution. Not thread-safe; one driver per execution per process.

    ``accepted`` says whether the executor already accepted a start (restore it from a snapshot);
    ``inputs_loader`` returns the inputs, needed only while the start is not accepted.
    ``on_change`` is called with each new status (after the event was recorded): the Airflow
    adapter uses it for the task log line.
    """

    def __init__(
        self,
        executor: Executor,
        task: tasks_pb2.TaskTemplate,
        task_ctx: TaskContext,
        *,
        inputs_loader: Callable[[], Awaitable[literals_pb2.LiteralMap]],
        policy: PollPolicy | None = None,
        accepted: bool = False,
        streak: int = 0,
        unknown_streak: int = 0,
        event_recorders: tuple[EventRecorder, ...] = (),
        on_change: Callable[[TaskContext, TaskStatus], None] | None = None,
        secrets_loader: Callable[[], Awaitable[dict[str, str]]] | None = None,
    ) -> None:
        self.executor = executor
        self.task = task
        self.ctx = task_ctx
        self.policy = policy or PollPolicy()
        self.accepted = accepted
        self.streak = streak
        self.unknown_streak = unknown_streak
        self._inputs_loader = inputs_loader
        self._recorders = event_recorders
        self._on_change = on_change
        self._secrets_loader = secrets_loader
        self._seen: tuple[TaskPhase, int] | None = (
            (task_ctx.phase, task_ctx.phase_version) if accepted else None
        )

    def snapshot(self) -> dict[str, Any]:
        """JSON-safe state to resume from in another process."""
        return {
            "task_ctx": self.ctx.to_dict(),
            "accepted": self.accepted,
            "streak": self.streak,
            "unknown_streak": self.unknown_streak,
        }

    async def _call(self, make: Callable[[], Awaitable[T]]) -> T:
        """Await one executor call; :class:`_CallTimeout` when *our* deadline passed (a
        ``TimeoutError`` raised by the executor itself is the executor's error, not ours)."""
        return await _watchdog().run(make, self.policy.call_timeout)

    async def step(self) -> TaskStatus:
        """One call to the executor (start or check), with every rule applied; returns the status."""
        executor_id = self.executor.get_id()
        try:
            if not self.accepted:
                inputs = await self._inputs_loader()
                start_ctx = self.ctx
                if self._secrets_loader is not None:  # only for this call: never kept or snapshotted
                    secrets = await self._secrets_loader()
                    start_ctx = dataclasses.replace(self.ctx, secret_environment=secrets)
                status = await self._call(lambda: self.executor.start_task(start_ctx, self.task, inputs))
                if status.phase not in (TaskPhase.NOT_READY, TaskPhase.UNKNOWN):
                    self.accepted = True
            else:
                status = await self._call(lambda: self.executor.check_task_status(self.ctx, self.task))
        except _CallTimeout:
            status = TaskStatus(
                TaskPhase.UNKNOWN,
                err=TaskError(
                    "CallTimeout",
                    f"executor {executor_id!r} did not answer within {self.policy.call_timeout:g}s",
                    ErrorOrigin.SYSTEM,
                ),
            )
        except Exception as exc:  # an executor bug or an unreachable backend: transient
            doing = "checking" if self.accepted else "starting"
            log.warning("executor %r raised while %s", executor_id, doing, exc_info=True)
            status = TaskStatus(
                TaskPhase.UNKNOWN,
                err=TaskError(
                    type(exc).__name__, f"executor {executor_id!r} raised: {exc}", ErrorOrigin.SYSTEM
                ),
            )

        # ``streak`` (NOT_READY or UNKNOWN in a row) paces the backoff; only UNKNOWNs in a row
        # count toward giving up: waiting for a quota is not a failure to report a status.
        self.streak = self.streak + 1 if status.phase in (TaskPhase.UNKNOWN, TaskPhase.NOT_READY) else 0
        self.unknown_streak = self.unknown_streak + 1 if status.phase is TaskPhase.UNKNOWN else 0
        if status.phase is TaskPhase.UNKNOWN and self.unknown_streak >= self.policy.unknown_limit:
            last = status.err.message if status.err else "no detail"
            status = retryable_failure(
                TaskError(
                    "StatusUnknown",
                    f"executor {executor_id!r} could not report a status {self.unknown_streak} times "
                    "in a row; "
                    f"last: {last}",
                    ErrorOrigin.SYSTEM,
                )
            )
        elif status.phase is TaskPhase.UNDEFINED:
            detail = f": {status.err.message}" if status.err else ""
            status = retryable_failure(
                TaskError(
                    "UndefinedPhase",
                    f"executor {executor_id!r} reported an undefined phase{detail}",
                    ErrorOrigin.SYSTEM,
                )
            )
        await self._observe(status)
        return status

    async def _observe(self, status: TaskStatus) -> None:
        self.ctx = self.ctx.with_status(status.phase, status.phase_version, status.state)
        key = (status.phase, status.phase_version)
        if key == self._seen:
            return
        self._seen = key
        event = build_task_event(
            self.ctx, status, producer_id=self.executor.get_id(), task_type=self.task.type
        )
        for recorder in self._recorders:
            try:
                await recorder.record_task_event(event)
            except Exception:  # losing an event must not fail the task
                log.warning("event recorder %r failed", recorder, exc_info=True)
        if self._on_change is not None:
            self._on_change(self.ctx, status)

    def next_delay(self, status: TaskStatus) -> float:
        return self.policy.delay(status.phase, self.streak)

    async def run(self, wake: Waker | None = None) -> TaskStatus:
        """Step until the execution is over (succeeded or failed); return the final status.

        ``wake``, when set by someone (an executor's enqueue-owner callback), cuts a wait short.
        Without one the driver waits on a waker of its own, which :func:`wake_owner` sets.
        """
        if wake is not None:
            return await self._run(wake)
        entry = (asyncio.get_running_loop(), Waker())
        owner = owner_key(self.ctx)
        with _owner_wakers_lock:
            _owner_wakers.setdefault(owner, set()).add(entry)
        try:
            return await self._run(entry[1])
        finally:
            with _owner_wakers_lock:
                entries = _owner_wakers.get(owner)
                if entries is not None:
                    entries.discard(entry)
                    if not entries:
                        del _owner_wakers[owner]

    async def _run(self, wake: Waker) -> TaskStatus:
        while True:
            status = await self.step()
            if status.phase.is_final_for_execution():
                return status
            await wake.wait(self.next_delay(status))
