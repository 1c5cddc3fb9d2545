"""ExecutorTrigger on the real LocalExecutor: real processes, real files, real protobufs.

Each execution is prepared the way ``ExecutorOperator`` does it: the execution folder gets
``task.pb`` and ``inputs.pb`` (through ``executors.DataStore``), the first ``ExecutionDriver.step()``
starts it (unless a test wants the trigger to start it), and the trigger is built from
``ExecutionHandle.to_dict()``, exactly what ``defer()`` hands to the triggerer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from flyteidl.core import literals_pb2, tasks_pb2

from airflow_provider import executor_pool
from airflow_provider.execution import ExecutionHandle, open_driver
from airflow_provider.triggers import ExecutorTrigger
from executors import (
    DataStore,
    OwnerReference,
    PollPolicy,
    TaskContext,
    TaskExecutionID,
    TaskOverrides,
    TaskPhase,
    TaskStatus,
)
from executors.backends.local import LocalExecutor
from executors.engine import submission
from executors.engine.driver import DriverSnapshot
from executors.testing import ContractTasks
from tests.conftest import DOUBLER, INT, make_identifier, python_template

POLICY = PollPolicy(interval=0.1, max_backoff=0.3, jitter=0.0, unknown_limit=10, call_timeout=30.0)

DOUBLE = python_template(DOUBLER, "{{.input}}", "{{.outputPrefix}}", inputs={"x": INT}, outputs={"y": INT})

# Appends one line to a marker file per process start, then sleeps.
SLEEPER = "import sys, time\nopen(sys.argv[1], 'a').write('started\\n')\ntime.sleep(float(sys.argv[2]))"

# Spawns a child (same process group), writes both pids, sleeps.
TREE = textwrap.dedent(
    """
    import os, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    with open(sys.argv[1] + ".tmp", "w") as fh:
        fh.write(f"{os.getpid()} {child.pid}")
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    time.sleep(300)
    """
)


@dataclasses.dataclass
class Prepared:
    handle: ExecutionHandle
    ctx: TaskContext
    first: TaskStatus | None
    """What the operator's first ``step()`` answered (None: the trigger starts it)."""

    def local_dir(self) -> Path:
        """The local executor's records of this execution (under its state_root)."""
        return Path(LocalExecutor(**self.handle.executor_config).state_dir(self.ctx))

    def pid(self) -> int:
        return int(json.loads((self.local_dir() / "pid.json").read_text())["pid"])


@pytest.fixture
def config(tmp_path: Path) -> dict[str, Any]:
    return {"state_root": str(tmp_path / "local-state"), "kill_grace_period": 2}


async def prepare(
    tmp_path: Path,
    template: tasks_pb2.TaskTemplate,
    config: dict[str, Any],
    *,
    name: str = "task",
    inputs: literals_pb2.LiteralMap | None = None,
    start: bool = True,
    deadline: dt.datetime | None = None,
) -> Prepared:
    store = DataStore()
    ctx = TaskContext(
        task_execution_id=TaskExecutionID.create(make_identifier(node=name)),
        data_dir=str(tmp_path / "executions" / name),
        owner_id=f"dag/run/{name}",
        owner_reference=OwnerReference(kind="TaskInstance", name=f"dag.{name}"),
    )
    await submission.submit(store, template, inputs or literals_pb2.LiteralMap(), ctx)
    handle = ExecutionHandle(
        executor_id="local",
        executor_config=config,
        driver=DriverSnapshot(ctx, accepted=False),
        policy=POLICY,
        deadline=deadline.isoformat() if deadline else None,
    )
    first = None
    if start:
        executor = await executor_pool.get_executor("local", config, store)
        driver = open_driver(handle, executor, template, store, None)
        first = await driver.step()
        handle = handle.with_driver(driver)
    return Prepared(handle, ctx, first)


def trigger_for(prepared: Prepared) -> ExecutorTrigger:
    return ExecutorTrigger(handle=prepared.handle.to_dict())


async def run_to_end(trigger: ExecutorTrigger, timeout: float = 30) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    return await asyncio.wait_for(collect(), timeout)


def final_status(payloads: list[dict[str, Any]]) -> TaskStatus:
    assert len(payloads) == 1, payloads
    return TaskStatus.from_dict(payloads[0]["status"])


async def wait_for(predicate: Any, timeout: float = 15, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def int_inputs(**values: int) -> literals_pb2.LiteralMap:
    lm = literals_pb2.LiteralMap()
    for key, value in values.items():
        lm.literals[key].scalar.primitive.integer = value
    return lm


async def stop_execution(prepared: Prepared, config: dict[str, Any]) -> None:
    executor = LocalExecutor(**config)
    await executor.kill_task(prepared.ctx, "test cleanup")


# -- serialization -----------------------------------------------------------------------------


async def test_serialize_is_json_safe_and_round_trips(tmp_path: Path, config: dict[str, Any]) -> None:
    ctx = TaskContext(
        task_execution_id=TaskExecutionID.create(make_identifier(node="ser[3]", attempt=2)),
        data_dir=str(tmp_path / "ser"),
        owner_id="dag/run/ser[3]",
        owner_reference=OwnerReference(kind="TaskInstance", name="dag.ser[3]"),
        overrides=TaskOverrides(config={"k": "v"}, environment={"GREETING": "héllo"}),
        labels={"team": "data"},
        custom_state={"job": {"id": 7, "tags": ["a", "b"]}},
        phase=TaskPhase.RUNNING,
        phase_version=3,
    )
    handle = ExecutionHandle(
        executor_id="local",
        executor_config={**config, "max_concurrent": 4},
        driver=DriverSnapshot(ctx, accepted=True, streak=2, unknown_streak=1),
        policy=POLICY,
        deadline=dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC).isoformat(),
    )
    classpath, kwargs = ExecutorTrigger(handle=handle.to_dict()).serialize()

    assert classpath == "airflow_provider.triggers.ExecutorTrigger"
    from airflow.sdk._shared.module_loading import import_string

    assert import_string(classpath) is ExecutorTrigger
    text = json.dumps(kwargs)  # raises on anything not JSON-safe
    again = ExecutorTrigger(**json.loads(text))
    assert again.serialize() == (classpath, kwargs)
    assert again.handle == handle
    assert again.handle.task_ctx == ctx  # nothing lost: custom state, overrides, phase, ...
    assert again.handle.deadline_at == dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


# -- run() on the real local executor ----------------------------------------------------------


async def test_run_yields_one_succeeded_event(tmp_path: Path, config: dict[str, Any]) -> None:
    prepared = await prepare(tmp_path, DOUBLE, config, inputs=int_inputs(x=21))
    assert prepared.first is not None and prepared.first.phase is TaskPhase.RUNNING

    payloads = await run_to_end(trigger_for(prepared))

    status = final_status(payloads)
    assert status.phase is TaskPhase.SUCCEEDED and status.err is None
    json.dumps(payloads[0])  # the event payload goes through the DB too
    handle = ExecutionHandle.from_dict(payloads[0]["handle"])
    assert handle.driver.accepted is True
    assert handle.task_ctx.phase is TaskPhase.SUCCEEDED
    assert handle.task_ctx.generated_name == prepared.ctx.generated_name
    outputs = literals_pb2.LiteralMap.FromString(Path(prepared.ctx.outputs_file).read_bytes())
    assert outputs.literals["y"].scalar.primitive.integer == 42


@pytest.mark.parametrize(
    ("recoverable", "phase"),
    [(True, TaskPhase.RETRYABLE_FAILURE), (False, TaskPhase.PERMANENT_FAILURE)],
    ids=["RECOVERABLE", "NON_RECOVERABLE"],
)
async def test_run_reports_the_error_document(
    recoverable: bool, phase: TaskPhase, tmp_path: Path, config: dict[str, Any]
) -> None:
    task = ContractTasks(sys.executable).write_error(
        code="BadThing", message="the input was odd", recoverable=recoverable, exit_code=1
    )
    prepared = await prepare(tmp_path, task, config)

    status = final_status(await run_to_end(trigger_for(prepared)))

    assert status.phase is phase
    assert status.err is not None
    assert (status.err.code, status.err.message) == ("BadThing", "the input was odd")


@pytest.mark.parametrize("started_by_operator", [True, False], ids=["operator-started", "trigger-started"])
async def test_restarted_trigger_reattaches_and_never_starts_twice(
    started_by_operator: bool, tmp_path: Path, config: dict[str, Any]
) -> None:
    marker = tmp_path / "starts.txt"
    template = python_template(SLEEPER, str(marker), "2")
    prepared = await prepare(tmp_path, template, config, start=started_by_operator)
    first = trigger_for(prepared)
    _, kwargs = first.serialize()
    stored_kwargs = json.loads(json.dumps(kwargs))  # what the triggerer keeps in its DB

    task = asyncio.ensure_future(run_to_end(first))
    await wait_for(lambda: marker.exists() and marker.read_text() == "started\n", what="the process")
    await asyncio.sleep(0.3)  # the trigger polls the running process a few times
    task.cancel()  # the triggerer died
    with pytest.raises(asyncio.CancelledError):
        await task
    await first.cleanup()
    pid = prepared.pid()
    assert not gone(pid), "a dead triggerer must leave the execution running"

    second = ExecutorTrigger(**stored_kwargs)
    status = final_status(await run_to_end(second))

    assert status.phase is TaskPhase.SUCCEEDED
    assert marker.read_text() == "started\n"  # one process start in all
    assert prepared.pid() == pid


async def test_on_kill_kills_the_process_tree(tmp_path: Path, config: dict[str, Any]) -> None:
    pids_file = tmp_path / "pids"
    prepared = await prepare(tmp_path, python_template(TREE, str(pids_file)), config)
    trigger = trigger_for(prepared)
    task = asyncio.ensure_future(run_to_end(trigger))
    await wait_for(pids_file.exists, what="the process tree")
    tree = [int(p) for p in pids_file.read_text().split()]
    assert len(tree) == 2 and not any(gone(p) for p in tree)

    task.cancel()  # what the triggerer does before on_kill
    with pytest.raises(asyncio.CancelledError):
        await task
    await trigger.on_kill()

    assert all(gone(p) for p in tree), [(p, gone(p)) for p in tree]
    killed = json.loads((prepared.local_dir() / "killed.json").read_text())
    assert "stopped by a user action" in killed["reason"]
    after = await LocalExecutor(**config).check_task_status(prepared.ctx, tasks_pb2.TaskTemplate())
    assert after.phase is TaskPhase.PERMANENT_FAILURE
    assert after.err is not None and after.err.code == "Killed"


async def test_on_kill_after_the_terminal_event_does_nothing(tmp_path: Path, config: dict[str, Any]) -> None:
    prepared = await prepare(tmp_path, DOUBLE, config, inputs=int_inputs(x=1))
    trigger = trigger_for(prepared)
    assert final_status(await run_to_end(trigger)).phase is TaskPhase.SUCCEEDED

    await trigger.on_kill()

    assert not (prepared.local_dir() / "killed.json").exists()
    after = await LocalExecutor(**config).check_task_status(prepared.ctx, DOUBLE)
    assert after.phase is TaskPhase.SUCCEEDED


async def test_cleanup_kills_nothing(tmp_path: Path, config: dict[str, Any]) -> None:
    marker = tmp_path / "starts.txt"
    prepared = await prepare(tmp_path, python_template(SLEEPER, str(marker), "30"), config)
    trigger = trigger_for(prepared)
    task = asyncio.ensure_future(run_to_end(trigger))
    await wait_for(marker.exists, what="the process")
    pid = prepared.pid()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    try:
        await trigger.cleanup()
        await asyncio.sleep(0.5)
        assert not gone(pid)
        assert not (prepared.local_dir() / "killed.json").exists()
        status = await LocalExecutor(**config).check_task_status(prepared.ctx, tasks_pb2.TaskTemplate())
        assert status.phase is TaskPhase.RUNNING
    finally:
        await stop_execution(prepared, config)


async def test_deadline_kills_the_execution_and_fails_retryably(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    marker = tmp_path / "starts.txt"
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    prepared = await prepare(tmp_path, python_template(SLEEPER, str(marker), "60"), config, deadline=deadline)
    pid = prepared.pid()
    t0 = time.monotonic()

    status = final_status(await run_to_end(trigger_for(prepared)))

    elapsed = time.monotonic() - t0
    assert status.phase is TaskPhase.RETRYABLE_FAILURE
    assert status.err is not None and status.err.code == "Timeout"
    assert deadline.isoformat() in status.err.message
    assert elapsed < 5, elapsed
    assert dt.datetime.now(dt.UTC) >= deadline
    assert gone(pid)
    assert (prepared.local_dir() / "killed.json").exists()


async def test_not_ready_waits_for_a_free_slot(tmp_path: Path, config: dict[str, Any]) -> None:
    config = {**config, "max_concurrent": 1}
    marker1, marker2 = tmp_path / "first.txt", tmp_path / "second.txt"
    first = await prepare(tmp_path, python_template(SLEEPER, str(marker1), "1.5"), config, name="first")
    assert first.first is not None and first.first.phase is TaskPhase.RUNNING
    second = await prepare(tmp_path, python_template(SLEEPER, str(marker2), "0"), config, name="second")
    assert second.first is not None and second.first.phase is TaskPhase.NOT_READY
    assert second.first.err is not None and second.first.err.code == "ConcurrencyLimit"
    assert second.handle.driver.accepted is False

    # Count what the shared executor (same loop, same configuration) answers the second trigger.
    executor = await executor_pool.get_executor("local", config, DataStore())
    answers: list[TaskPhase] = []
    real_start = executor.start_task

    async def counting_start(ctx: TaskContext, task: Any, inputs: Any) -> TaskStatus:
        status = await real_start(ctx, task, inputs)
        if ctx.generated_name == second.ctx.generated_name:
            answers.append(status.phase)
        return status

    executor.start_task = counting_start  # type: ignore[method-assign]

    task = asyncio.ensure_future(run_to_end(trigger_for(second)))
    await wait_for(lambda: len(answers) >= 2, what="the trigger to ask again")
    assert not task.done()
    assert set(answers) == {TaskPhase.NOT_READY}
    assert not marker2.exists() and not (second.local_dir() / "claim").exists()  # no process

    status = final_status(await asyncio.wait_for(task, 30))

    assert status.phase is TaskPhase.SUCCEEDED
    assert answers[-1] is TaskPhase.RUNNING and answers.count(TaskPhase.RUNNING) == 1
    first_exit = json.loads((first.local_dir() / "exit.json").read_text())
    assert first_exit["exit_code"] == 0
    assert marker2.read_text() == "started\n"
    assert os.path.getmtime(first.local_dir() / "exit.json") <= os.path.getmtime(marker2)


async def test_the_event_loop_is_never_blocked(tmp_path: Path, config: dict[str, Any]) -> None:
    """A triggerer runs thousands of triggers on one loop: every file and process operation of a
    trigger (launch, status checks, the deadline kill) must leave the loop free."""
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    tick = asyncio.ensure_future(ticker())
    await asyncio.sleep(0.05)
    # One the trigger itself starts and sees succeed, one killed at its deadline.
    succeeding = await prepare(tmp_path, DOUBLE, config, name="ok", inputs=int_inputs(x=2), start=False)
    timing_out = await prepare(
        tmp_path,
        python_template(TREE, str(tmp_path / "pids")),
        config,
        name="late",
        deadline=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.5),
    )
    results = await asyncio.gather(run_to_end(trigger_for(succeeding)), run_to_end(trigger_for(timing_out)))
    stop.set()
    await tick

    assert final_status(results[0]).phase is TaskPhase.SUCCEEDED
    assert final_status(results[1]).phase is TaskPhase.RETRYABLE_FAILURE
    assert len(gaps) > 50
    print(f"max gap {max(gaps):.3f}s over {len(gaps)} ticks")
    assert max(gaps) < 0.2, f"the loop was blocked for {max(gaps):.3f}s"
