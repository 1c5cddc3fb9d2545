"""ExecutionDriver: the state machine that takes one execution from start to a final phase.

Every caller runs this same code (the Airflow trigger, the worker with ``deferrable=False``, the
``run-typed-task`` CLI), so the paths cannot drift apart. It owns the rules of the phase table:

* the executor is asked to *start* until it accepts the task (NOT_READY means "not accepted, ask
  again"), then to *check* its status;
* NOT_READY and UNKNOWN back off (exponential with jitter, capped); an exception or a call that
  takes longer than ``call_timeout`` counts as UNKNOWN, never as a failure;
* ``unknown_limit`` consecutive UNKNOWNs end the execution as a retryable failure;
* UNDEFINED (an executor bug or illegal state) ends it as a retryable failure naming the executor;
* a deadline that passes kills the execution (:func:`kill_execution`) and ends it as a retryable
  ``Timeout`` failure;
* every change of phase or phase version is one ``TaskExecutionEvent`` and one ``on_change`` call.

It also owns the two routines around a run that every caller needs: :func:`retry_setup` (a store
or backend that is down when a process resumes is waited for, within the same UNKNOWN budget) and
:func:`kill_execution` (the one kill: time-bounded, retried while the executor
``requires_finalizer``).

The driver holds no resources: everything needed to resume is its :class:`DriverSnapshot`, which
is JSON-safe, so a restarted process resumes where the last one stopped and never starts twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from flyteidl.core import literals_pb2, tasks_pb2

from executors.core.context import TaskContext
from executors.core.interface import EventRecorder, Executor
from executors.core.phase import TaskPhase
from executors.core.status import ErrorOrigin, TaskError, TaskStatus, retryable_failure
from executors.engine import waking
from executors.engine.background import detach
from executors.engine.events import build_task_event
from executors.engine.output import OutputCopier
from executors.engine.policy import PollPolicy
from executors.engine.waking import Waker
from executors.engine.watchdog import CallTimeout, call_with_limit

T = TypeVar("T")
_log = logging.getLogger(__name__)

KEEP_INPUTS_BYTES = 64 * 1024
"""Inputs up to this size (serialized) are kept between two start attempts (NOT_READY, UNKNOWN),
so a start that waits for a slot does not read them again at each attempt; larger ones are."""


class Logger(Protocol):
    """Where the driver's few lines go (a ``logging.Logger``, an adapter, Airflow's task logger)."""

    def info(self, msg: str, /, *args: Any) -> Any: ...

    def warning(self, msg: str, /, *args: Any) -> Any: ...

    def error(self, msg: str, /, *args: Any) -> Any: ...


@dataclasses.dataclass(frozen=True)
class DriverSnapshot:
    """Where a driver stands: what another process needs to resume it without starting twice."""

    task_ctx: TaskContext
    accepted: bool = False
    """Whether the executor accepted a start: a resumed driver then only checks."""
    streak: int = 0
    """NOT_READY or UNKNOWN answers in a row (paces the backoff)."""
    unknown_streak: int = 0
    """UNKNOWN answers in a row (counts toward ``unknown_limit``)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_ctx": self.task_ctx.to_dict(),
            "accepted": self.accepted,
            "streak": self.streak,
            "unknown_streak": self.unknown_streak,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriverSnapshot:
        return cls(
            TaskContext.from_dict(data["task_ctx"]),
            accepted=bool(data.get("accepted")),
            streak=int(data.get("streak", 0)),
            unknown_streak=int(data.get("unknown_streak", 0)),
        )


class ExecutionDriver:
    """Drive one execution. Not thread-safe; one driver per execution per process.

    ``accepted`` says whether the executor already accepted a start (or use :meth:`resume`);
    ``inputs_loader`` returns the inputs, needed only while the start is not accepted (called once
    for all the start attempts when they are at most ``KEEP_INPUTS_BYTES``, else once per attempt).
    ``secrets_loader`` returns the secret environment of the start (never kept or snapshotted).
    ``on_change`` is called with each new status, after the event was recorded. ``output``
    copies what the execution prints while it runs (every ``policy.output_interval`` s) and once
    more when it is over, timed out included.
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
        output: OutputCopier | None = None,
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
        self.output = output
        self._next_copy: float | None = None  # loop time of the next copy of the output
        self._quiet = 0  # copies in a row that found no new output (they back off)
        self._inputs: literals_pb2.LiteralMap | None = None  # kept between start attempts
        self._seen: tuple[TaskPhase, int] | None = (
            (task_ctx.phase, task_ctx.phase_version) if accepted else None
        )

    @classmethod
    def resume(
        cls, executor: Executor, task: tasks_pb2.TaskTemplate, snapshot: DriverSnapshot, **kwargs: Any
    ) -> ExecutionDriver:
        """A driver that goes on from ``snapshot`` (the keyword arguments are ``__init__``'s)."""
        return cls(
            executor,
            task,
            snapshot.task_ctx,
            accepted=snapshot.accepted,
            streak=snapshot.streak,
            unknown_streak=snapshot.unknown_streak,
            **kwargs,
        )

    def snapshot(self) -> DriverSnapshot:
        """Where this driver stands (``.to_dict()`` is JSON-safe), to resume in another process."""
        return DriverSnapshot(self.ctx, self.accepted, self.streak, self.unknown_streak)

    async def step(self) -> TaskStatus:
        """One call to the executor (start or check), with every rule applied; returns the status."""
        executor_id = self.executor.get_id()
        try:
            status = await call_with_limit(self._call, self.policy.call_timeout)
        except CallTimeout:
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
            _log.warning("executor %r raised while %s", executor_id, doing, exc_info=True)
            status = TaskStatus(
                TaskPhase.UNKNOWN,
                err=TaskError(
                    type(exc).__name__,
                    f"executor {self.executor.get_id()!r} raised: {exc}",
                    ErrorOrigin.SYSTEM,
                ),
            )
        status = self._apply_rules(status)
        await self._observe(status)
        return status

    async def _call(self) -> TaskStatus:
        if self.accepted:
            return await self.executor.check_task_status(self.ctx, self.task)
        inputs = self._inputs if self._inputs is not None else await self._inputs_loader()
        start_ctx = self.ctx
        if self._secrets_loader is not None:  # only for this call: never kept or snapshotted
            secrets = await self._secrets_loader()
            start_ctx = dataclasses.replace(self.ctx, secret_environment=secrets)
        status = await self.executor.start_task(start_ctx, self.task, inputs)
        if status.phase not in (TaskPhase.NOT_READY, TaskPhase.UNKNOWN):
            self.accepted = True
            self._inputs = None
        elif self._inputs is None and inputs.ByteSize() <= KEEP_INPUTS_BYTES:
            self._inputs = inputs
        return status

    def _apply_rules(self, status: TaskStatus) -> TaskStatus:
        # ``streak`` (NOT_READY or UNKNOWN in a row) paces the backoff; only UNKNOWNs in a row
        # count toward giving up: waiting for a quota is not a failure to report a status.
        executor_id = self.executor.get_id()
        self.streak = self.streak + 1 if status.phase in (TaskPhase.UNKNOWN, TaskPhase.NOT_READY) else 0
        self.unknown_streak = self.unknown_streak + 1 if status.phase is TaskPhase.UNKNOWN else 0
        if status.phase is TaskPhase.UNKNOWN and self.unknown_streak >= self.policy.unknown_limit:
            last = status.err.message if status.err else "no detail"
            return retryable_failure(
                TaskError(
                    "StatusUnknown",
                    f"executor {executor_id!r} could not report a status {self.unknown_streak} times "
                    f"in a row; last: {last}",
                    ErrorOrigin.SYSTEM,
                )
            )
        if status.phase is TaskPhase.UNDEFINED:
            detail = f": {status.err.message}" if status.err else ""
            return retryable_failure(
                TaskError(
                    "UndefinedPhase",
                    f"executor {executor_id!r} reported an undefined phase{detail}",
                    ErrorOrigin.SYSTEM,
                )
            )
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
                _log.warning("event recorder %r failed", recorder, exc_info=True)
        if self._on_change is not None:
            self._on_change(self.ctx, status)

    def next_delay(self, status: TaskStatus) -> float:
        return self.policy.delay(status.phase, self.streak, watched=status.watched)

    async def run(
        self, wake: Waker | None = None, *, deadline: dt.datetime | None = None, log: Logger | None = None
    ) -> TaskStatus:
        """Step until the execution is over (succeeded or failed); return the final status.

        ``wake``, when set by someone, cuts a wait short; without one the driver waits on a waker of
        its own, which :func:`executors.engine.waking.wake_owner` sets for its owner. At
        ``deadline`` (an aware datetime) the execution is killed and the result is a retryable
        ``Timeout`` failure. ``log`` gets the kill's lines (the trigger passes its task logger).
        """
        if wake is not None:
            return await self._run(wake, deadline, log)
        waker = Waker()
        token = waking.register(self.ctx, waker)
        try:
            return await self._run(waker, deadline, log)
        finally:
            waking.unregister(token)

    async def _run(self, wake: Waker, deadline: dt.datetime | None, logger: Logger | None) -> TaskStatus:
        try:
            return await self._loop(wake, deadline, logger)
        except asyncio.CancelledError:
            # Stopped from outside (a triggerer shutting down): the next process goes on from here.
            if self.output is not None:
                await asyncio.shield(self.output.flush(self.ctx))
            raise

    async def _loop(self, wake: Waker, deadline: dt.datetime | None, logger: Logger | None) -> TaskStatus:
        while True:
            if deadline is not None and dt.datetime.now(dt.UTC) >= deadline:
                return await self._time_out(deadline, logger)
            status = await self.step()
            if status.phase.is_final_for_execution():
                await self.copy_output(final=True)
                return status
            delay = self.next_delay(status)
            if deadline is not None:
                delay = max(0.0, min(delay, (deadline - dt.datetime.now(dt.UTC)).total_seconds()))
            await self._wait(wake, delay)

    async def _wait(self, wake: Waker, delay: float) -> None:
        """Wait ``delay`` s for the next check (or a wake-up), copying the output meanwhile on its
        own cadence, kept across waits: checks may come more often than copies (a short poll
        interval) or far less often (a watched execution is checked every ``watched_interval`` s)."""
        every = self.policy.output_interval
        output = self.output
        if output is None or output.supported is False or every <= 0 or not self.accepted:
            await wake.wait(delay)
            return
        loop = asyncio.get_running_loop()
        until = loop.time() + delay
        if self._next_copy is None:
            self._next_copy = loop.time() + self.policy.output_delay()
        while (now := loop.time()) < until:
            if self._next_copy <= now:
                self._quiet = 0 if await output.copy(self.ctx) else self._quiet + 1
                self._next_copy = loop.time() + self.policy.output_delay(self._quiet)
                continue
            if await wake.wait(min(until, self._next_copy) - now):
                return

    async def copy_output(self, *, final: bool = False) -> None:
        """Copy the execution's new output (``final``: all that is left), if a copier was given."""
        if self.output is not None and self.accepted:
            await self.output.copy(self.ctx, final=final)

    async def _time_out(self, deadline: dt.datetime, logger: Logger | None) -> TaskStatus:
        when = deadline.isoformat()
        # Bounded: the final status must still come out (the try fails) if the backend will not listen.
        # Shielded: whoever runs this driver may give up at the same deadline (Airflow cancels a
        # trigger whose own timeout is that instant); the kill then goes on by itself.
        await asyncio.shield(detach(self.kill(f"timeout: still running at {when}", log=logger)))
        status = retryable_failure(
            TaskError("Timeout", f"the execution did not finish before {when}", ErrorOrigin.SYSTEM)
        )
        await self.copy_output(final=True)  # what it printed until it was killed
        await self._observe(status)
        return status

    async def kill(self, reason: str, *, budget: float | None = None, log: Logger | None = None) -> bool:
        """:func:`kill_execution` for this driver's execution, under its policy."""
        return await kill_execution(self.executor, self.ctx, reason, self.policy, budget=budget, log=log)


async def kill_execution(
    executor: Executor,
    task_ctx: TaskContext,
    reason: str,
    policy: PollPolicy | None = None,
    *,
    budget: float | None = None,
    log: Logger | None = None,
) -> bool:
    """The one kill routine: ``kill_task`` with a ``call_timeout`` per call; a failed call is
    retried with backoff while the executor ``requires_finalizer`` (it must not leak resources),
    for at most ``budget`` seconds (default: three ``call_timeout`` s). Returns whether a kill
    call succeeded; never raises (a kill is best effort and must not mask the reason for it)."""
    policy = policy or PollPolicy()
    logger = log or _log
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + (budget if budget is not None else 3 * policy.call_timeout)
    retry = executor.get_properties().requires_finalizer
    name = task_ctx.generated_name
    attempt = 0
    while True:
        attempt += 1
        try:
            await call_with_limit(lambda: executor.kill_task(task_ctx, reason), policy.call_timeout)
            logger.info("killed %s execution %s: %s", executor.get_id(), name, reason)
            return True
        except Exception as exc:
            detail = f"no answer within {policy.call_timeout:g}s" if isinstance(exc, CallTimeout) else exc
            logger.warning(
                "kill of %s failed (attempt %d): %s: %s", name, attempt, type(exc).__name__, detail
            )
            if not retry or loop.time() > give_up_at:
                logger.error("giving up killing %s: it may still be running", name)
                return False
            await asyncio.sleep(min(5.0, 0.2 * 2**attempt))


class SetupFailed(Exception):
    """:func:`retry_setup` gave up; ``status`` is the retryable failure to report."""

    def __init__(self, status: TaskStatus) -> None:
        super().__init__(status.err.message if status.err else "set-up failed")
        self.status = status


async def retry_setup(
    make: Callable[[], Awaitable[T]], policy: PollPolicy, what: str, *, log: Logger | None = None
) -> T:
    """``await make()`` (each try bounded by ``call_timeout``) until it works; a store or backend
    that is down when a process resumes an execution is waited for, ``policy.interval`` apart, up
    to ``unknown_limit`` tries, then :class:`SetupFailed` carries a retryable failure naming
    ``what`` and the last error."""
    logger = log or _log
    tries = 0
    while True:
        try:
            return await call_with_limit(make, policy.call_timeout)
        except Exception as exc:
            tries += 1
            detail = f"no answer within {policy.call_timeout:g}s" if isinstance(exc, CallTimeout) else exc
            logger.warning("cannot %s (%d/%d): %s", what, tries, policy.unknown_limit, detail)
            if tries >= policy.unknown_limit:
                raise SetupFailed(
                    retryable_failure(
                        TaskError(type(exc).__name__, f"cannot {what}: {detail}", ErrorOrigin.SYSTEM)
                    )
                ) from exc
            await asyncio.sleep(policy.interval)
