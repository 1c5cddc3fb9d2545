"""Exactly one execution per try: what a new try does with the execution an earlier try recorded."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any

import pytest
from flyteidl.core import literals_pb2

from airflow_provider.adoption import STATE_KEY, adopt_previous, remember
from airflow_provider.execution import ExecutionHandle
from executors import DataStore, TaskContext, TaskError, TaskPhase, TaskStatus
from executors.engine import submission
from executors.engine.driver import DriverSnapshot
from tests.executors.engine.support import RUNNING, SUCCEEDED, TEMPLATE, ScriptedExecutor, fast

log = logging.getLogger("tests.adoption")


class StateStore:
    """Airflow's task state store, as the operator uses it (``get`` / ``set`` of JSON values)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value


async def earlier_try(
    make_ctx: Callable[..., TaskContext], store: DataStore, *, deferred: bool
) -> tuple[dict[str, Any], TaskContext, TaskContext]:
    """A context whose state store records try 1's execution; returns it, try 1's and try 2's ctx."""
    first, second = make_ctx(attempt=0), make_ctx(attempt=1)
    await submission.submit(store, TEMPLATE, literals_pb2.LiteralMap(), first)
    context: dict[str, Any] = {"task_state_store": StateStore()}
    handle = ExecutionHandle("scripted", {}, DriverSnapshot(first, accepted=True), fast())
    remember(context, handle, deferred=deferred)  # type: ignore[arg-type]
    assert context["task_state_store"].values[STATE_KEY]["deferred"] is deferred
    return context, first, second


@pytest.mark.parametrize(
    ("answer", "deferred", "adopted"),
    [
        (RUNNING, False, True),  # its worker was lost between start and defer: adopt it
        (RUNNING, True, False),  # its trigger owned it: the task was cleared, start afresh
        (SUCCEEDED, True, True),  # done: publish its outputs, run nothing again
    ],
    ids=["running-never-deferred", "running-deferred", "succeeded"],
)
async def test_adopts_what_is_still_useful_and_stops_the_rest(
    make_ctx: Callable[..., TaskContext], store: DataStore, answer: TaskStatus, deferred: bool, adopted: bool
) -> None:
    context, first, second = await earlier_try(make_ctx, store, deferred=deferred)
    executor = ScriptedExecutor(checks=[answer])
    handle = await adopt_previous(context, executor, store, second, fast(), log)  # type: ignore[arg-type]
    if adopted:
        assert handle is not None and handle.task_ctx.generated_name == first.generated_name
        assert handle.driver.accepted and handle.task_ctx.phase is answer.phase
        assert executor.kinds == ["check"]
    else:
        assert handle is None
        assert executor.kinds == ["check", "kill"]


@pytest.mark.parametrize(
    "answer",
    [
        TaskStatus(TaskPhase.UNDEFINED, err=TaskError("Garbled", "banana")),
        ConnectionError("backend down"),
    ],
    ids=["undefined", "raises"],
)
async def test_an_answer_the_executor_could_not_give_stops_the_old_execution(
    make_ctx: Callable[..., TaskContext], store: DataStore, answer: TaskStatus | BaseException
) -> None:
    context, _, second = await earlier_try(make_ctx, store, deferred=False)
    executor = ScriptedExecutor(checks=[answer])
    assert await adopt_previous(context, executor, store, second, fast(), log) is None  # type: ignore[arg-type]
    assert executor.kinds == ["check", "kill"]


async def test_the_check_is_a_driver_step_bounded_and_recorded(
    make_ctx: Callable[..., TaskContext], store: DataStore
) -> None:
    """The check has the driver's time limit and records the change of phase as an event."""

    async def hang() -> TaskStatus:
        await asyncio.sleep(3600)
        return RUNNING

    context, first, second = await earlier_try(make_ctx, store, deferred=False)
    executor = ScriptedExecutor(checks=[hang])
    handle = await asyncio.wait_for(
        adopt_previous(context, executor, store, second, fast(call_timeout=0.1), log),  # type: ignore[arg-type]
        10,
    )
    assert handle is None and executor.kinds == ["check", "kill"]  # timed out: UNKNOWN, stopped
    events = sorted(os.listdir(os.path.join(first.data_dir, "events")))
    assert len(events) == 1 and "-undefined-" in events[0]  # UNKNOWN, recorded like any other phase


async def test_no_record_a_record_of_this_try_or_of_another_executor_is_left_alone(
    make_ctx: Callable[..., TaskContext], store: DataStore
) -> None:
    executor = ScriptedExecutor(checks=[RUNNING])
    assert await adopt_previous({}, executor, store, make_ctx(), fast(), log) is None  # type: ignore[arg-type]
    context, first, _ = await earlier_try(make_ctx, store, deferred=False)
    assert await adopt_previous(context, executor, store, first, fast(), log) is None  # type: ignore[arg-type]
    record = context["task_state_store"].values[STATE_KEY]
    context["task_state_store"].values[STATE_KEY] = {**record, "executor_id": "ray"}
    assert await adopt_previous(context, executor, store, make_ctx(attempt=1), fast(), log) is None  # type: ignore[arg-type]
    context["task_state_store"].values[STATE_KEY] = {"written by": "another version"}
    assert await adopt_previous(context, executor, store, make_ctx(attempt=1), fast(), log) is None  # type: ignore[arg-type]
    assert executor.kinds == []
