"""What the driver owns around the polling loop: the deadline, set-up retries, the one kill routine."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

import pytest
from flyteidl.core import execution_pb2

from executors import ExecutorProperties, TaskContext, TaskPhase
from executors.engine.driver import SetupFailed, kill_execution, retry_setup
from tests.executors.engine.support import RUNNING, ListRecorder, ScriptedExecutor, fast, make_driver


class KillScripted(ScriptedExecutor):
    """A scripted executor whose kills fail ``failures`` times (or hang), optionally needing a finalizer."""

    def __init__(self, *, failures: int = 0, hang: bool = False, finalizer: bool = False) -> None:
        super().__init__(starts=[RUNNING], checks=[RUNNING] * 1000)
        self.failures, self.hang, self.finalizer = failures, hang, finalizer
        self.kills: list[str] = []

    def get_properties(self) -> ExecutorProperties:
        return ExecutorProperties(requires_finalizer=self.finalizer)

    async def kill_task(self, task_ctx: TaskContext, reason: str) -> None:
        self.kills.append(reason)
        if self.hang:
            await asyncio.sleep(3600)
        if len(self.kills) <= self.failures:
            raise ConnectionError(f"kill {len(self.kills)} refused")


async def test_a_deadline_kills_the_execution_and_ends_as_a_retryable_timeout(
    make_ctx: Callable[..., TaskContext],
) -> None:
    executor, recorder = KillScripted(), ListRecorder()
    driver = make_driver(executor, make_ctx(), event_recorders=(recorder,))
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.2)
    status = await asyncio.wait_for(driver.run(deadline=deadline), 10)
    assert status.phase is TaskPhase.RETRYABLE_FAILURE
    assert status.err is not None and status.err.code == "Timeout"
    assert f"did not finish before {deadline.isoformat()}" in status.err.message
    assert executor.kills == [f"timeout: still running at {deadline.isoformat()}"]
    assert executor.kinds.count("check") >= 2  # it polled until the deadline, not just once
    assert (
        recorder.events[-1].phase == execution_pb2.TaskExecution.RETRYABLE_FAILED
    )  # an event like any other
    assert driver.ctx.phase is TaskPhase.RETRYABLE_FAILURE


async def test_a_deadline_already_past_kills_before_any_call(make_ctx: Callable[..., TaskContext]) -> None:
    executor = KillScripted()
    driver = make_driver(executor, make_ctx())
    status = await driver.run(deadline=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    assert status.phase is TaskPhase.RETRYABLE_FAILURE
    assert executor.kinds == [] and len(executor.kills) == 1


async def test_a_kill_is_tried_once_when_the_executor_needs_no_finalizer(
    make_ctx: Callable[..., TaskContext],
) -> None:
    executor = KillScripted(failures=5)
    assert await kill_execution(executor, make_ctx(), "stop", fast()) is False
    assert len(executor.kills) == 1


async def test_a_kill_is_retried_until_it_works_when_the_executor_requires_a_finalizer(
    make_ctx: Callable[..., TaskContext],
) -> None:
    executor = KillScripted(failures=2, finalizer=True)
    assert await kill_execution(executor, make_ctx(), "stop", fast(), budget=30) is True
    assert len(executor.kills) == 3


async def test_a_hanging_kill_is_cut_at_call_timeout_and_the_retries_at_the_budget(
    make_ctx: Callable[..., TaskContext], caplog: pytest.LogCaptureFixture
) -> None:
    executor = KillScripted(hang=True, finalizer=True)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with caplog.at_level(logging.WARNING, logger="executors.engine.driver"):
        killed = await asyncio.wait_for(
            kill_execution(executor, make_ctx(), "stop", fast(call_timeout=0.1), budget=0.5), 10
        )
    assert killed is False
    assert 0.5 <= loop.time() - started < 5
    assert len(executor.kills) >= 2  # retried after each timed-out call
    assert "no answer within 0.1s" in caplog.text
    assert "giving up killing" in caplog.text


async def test_set_up_is_retried_then_gives_up_with_a_retryable_failure_naming_the_cause() -> None:
    calls = 0

    async def down() -> str:
        nonlocal calls
        calls += 1
        raise ConnectionError(f"store down ({calls})")

    with pytest.raises(SetupFailed) as failed:
        await retry_setup(down, fast(unknown_limit=3), "resume the execution")
    assert calls == 3
    status = failed.value.status
    assert status.phase is TaskPhase.RETRYABLE_FAILURE
    assert status.err is not None and status.err.code == "ConnectionError"
    assert status.err.message == "cannot resume the execution: store down (3)"


async def test_set_up_that_recovers_returns_its_value() -> None:
    answers = [ConnectionError("down"), "ready"]

    async def flaky() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert await retry_setup(flaky, fast(unknown_limit=3), "open") == "ready"


async def test_a_hanging_set_up_counts_as_a_failed_try() -> None:
    async def hang() -> str:
        await asyncio.sleep(3600)
        return "never"

    with pytest.raises(SetupFailed, match="no answer within 0.05s"):
        await asyncio.wait_for(retry_setup(hang, fast(unknown_limit=2, call_timeout=0.05), "open"), 10)
