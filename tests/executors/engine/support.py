"""What the engine tests share: a scripted executor, recorders, a fast policy, driver helpers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from flyteidl.core import literals_pb2, tasks_pb2
from flyteidl.event import event_pb2

from executors import (
    ExecutionDriver,
    Executor,
    ExecutorInitializationParameters,
    PollPolicy,
    TaskContext,
    TaskError,
    TaskPhase,
    TaskStatus,
)
from executors.engine.waking import Waker

RUNNING = TaskStatus(TaskPhase.RUNNING)
QUEUED = TaskStatus(TaskPhase.QUEUED)
SUCCEEDED = TaskStatus(TaskPhase.SUCCEEDED)
NOT_READY = TaskStatus(TaskPhase.NOT_READY, err=TaskError("ConcurrencyLimit", "2 running"))
UNKNOWN = TaskStatus(TaskPhase.UNKNOWN, err=TaskError("ApiDown", "api answered 503"))

# A script entry: a status to return, an exception to raise, or a coroutine function to await.
Entry = TaskStatus | BaseException | Callable[[], Awaitable[TaskStatus]]


class ScriptedExecutor(Executor):
    """Answers ``start_task``/``check_task_status`` from per-call scripts and records every call."""

    id = "scripted"

    def __init__(self, starts: Sequence[Entry] = (), checks: Sequence[Entry] = ()) -> None:
        self.starts = list(starts)
        self.checks = list(checks)
        self.calls: list[tuple[str, TaskContext]] = []
        self.inputs_seen: list[literals_pb2.LiteralMap] = []

    @property
    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.calls]

    async def initialize(self, params: ExecutorInitializationParameters) -> None:
        return None

    async def _answer(self, script: list[Entry], kind: str) -> TaskStatus:
        if not script:
            # Raised inside the driver it becomes UNKNOWN; the call list still shows the extra call.
            raise LookupError(f"script exhausted: unexpected {kind}")
        entry = script.pop(0)
        if isinstance(entry, TaskStatus):
            return entry
        if isinstance(entry, BaseException):
            raise entry
        return await entry()

    async def start_task(
        self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate, inputs: literals_pb2.LiteralMap
    ) -> TaskStatus:
        self.calls.append(("start", task_ctx))
        self.inputs_seen.append(inputs)
        return await self._answer(self.starts, "start")

    async def check_task_status(self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate) -> TaskStatus:
        self.calls.append(("check", task_ctx))
        return await self._answer(self.checks, "check")

    async def kill_task(self, task_ctx: TaskContext, reason: str) -> None:
        self.calls.append(("kill", task_ctx))

    async def resolve_outputs(
        self, task_ctx: TaskContext, *output_variables: str
    ) -> dict[str, literals_pb2.Literal]:
        return {}


class ListRecorder:
    def __init__(self) -> None:
        self.events: list[event_pb2.TaskExecutionEvent] = []

    async def record_task_event(self, event: event_pb2.TaskExecutionEvent) -> None:
        self.events.append(event)


class BrokenRecorder:
    def __init__(self) -> None:
        self.attempts = 0

    async def record_task_event(self, event: event_pb2.TaskExecutionEvent) -> None:
        self.attempts += 1
        raise OSError("event sink unreachable")


TEMPLATE = tasks_pb2.TaskTemplate(type="scripted-type")
INPUTS = literals_pb2.LiteralMap()
INPUTS.literals["x"].scalar.primitive.integer = 5


def fast(**overrides: Any) -> PollPolicy:
    values: dict[str, Any] = {
        "interval": 0.01,
        "max_backoff": 0.04,
        "jitter": 0.0,
        "unknown_limit": 10,
        "call_timeout": 5.0,
    }
    values.update(overrides)
    return PollPolicy(**values)


class Loader:
    def __init__(self, inputs: literals_pb2.LiteralMap = INPUTS) -> None:
        self.inputs = inputs
        self.calls = 0

    async def __call__(self) -> literals_pb2.LiteralMap:
        self.calls += 1
        return self.inputs


async def never_load() -> literals_pb2.LiteralMap:
    raise AssertionError("inputs must not be loaded once the start was accepted")


def make_driver(
    executor: Executor,
    ctx: TaskContext,
    *,
    policy: PollPolicy | None = None,
    loader: Callable[[], Awaitable[literals_pb2.LiteralMap]] | None = None,
    **kwargs: Any,
) -> ExecutionDriver:
    return ExecutionDriver(
        executor,
        TEMPLATE,
        ctx,
        inputs_loader=loader or Loader(),
        policy=policy or fast(),
        **kwargs,
    )


async def run(driver: ExecutionDriver, wake: Waker | None = None, timeout: float = 10) -> TaskStatus:
    return await asyncio.wait_for(driver.run(wake), timeout=timeout)


async def wait_until(predicate: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)
