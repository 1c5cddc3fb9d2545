"""Fault injection: a data store that is down, a backend that is unreachable or hangs, an executor
that raises in each of its methods. Real pieces throughout: fsspec filesystems that really fail
(``flaky_fs``), the real local executor behind a fault-injecting wrapper (``FaultyExecutor``),
the real driver, operator and trigger.

For each fault the tests pin down what the Airflow task becomes (retryable or not, with which
message) and that the event loop goes on serving other triggers. Rows marked ``xfail(strict=True)``
are product bugs: the assertion states the right behaviour.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from flyteidl.core import literals_pb2, tasks_pb2

from airflow_provider.adoption import STATE_KEY
from airflow_provider.execution import ExecutionHandle
from airflow_provider.identity import execution_folder
from airflow_provider.operators import ExecutorOperator
from executors import (
    DataStore,
    ExecutionDriver,
    ExecutorInitializationParameters,
    PollPolicy,
    TaskContext,
    TaskExecutionID,
    TaskPhase,
    TaskStatus,
)
from executors.backends.local import LocalExecutor
from harness.loop_gaps import loop_monitor
from tests.conftest import INT, make_identifier, python_template
from tests.reliability_units.flaky_fs import FlakyLocalFileSystem, FlakyMemoryFileSystem
from tests.reliability_units.support import (
    DOUBLE,
    FAULTY_ID,
    REPO,
    FaultyExecutor,
    MemoryTaskStateStore,
    context_for,
    healthy_run,
    int_inputs,
    local_pid,
    prepare_trigger,
    process_gone,
    run_trigger,
    wait_for,
)

# A task that reaches its data through the flakyfile:// protocol (it registers it itself, never
# failing) and counts its runs in a marker file: argv = repo, input, output prefix, template, marker.
FLAKY_TASK = """
import sys
sys.path.insert(0, sys.argv[1])
import tests.reliability_units.flaky_fs  # registers flakyfile://
from executors import task_io
open(sys.argv[5], "a").write("ran\\n")
i = task_io.read_inputs(sys.argv[2], sys.argv[4])
task_io.write_outputs(sys.argv[3], {"y": 2 * i["x"]}, sys.argv[4])
"""

# Counts its runs, then sleeps: argv = marker, seconds.
SLEEPER = "import sys, time\nopen(sys.argv[1], 'a').write('ran\\n')\ntime.sleep(float(sys.argv[2]))"

COUNTING_DOUBLE = python_template(
    "import sys\n"
    "from executors import task_io\n"
    "open(sys.argv[4], 'a').write('ran\\n')\n"
    "i = task_io.read_inputs(sys.argv[1], sys.argv[3])\n"
    "task_io.write_outputs(sys.argv[2], {'y': 2 * i['x']}, sys.argv[3])\n",
    "{{.input}}",
    "{{.outputPrefix}}",
    "{{.taskTemplatePath}}",
    "MARKER",
    inputs={"x": INT},
    outputs={"y": INT},
)


def counting_double(marker: Path) -> tasks_pb2.TaskTemplate:
    template = tasks_pb2.TaskTemplate()
    template.CopyFrom(COUNTING_DOUBLE)
    template.container.command[-1] = str(marker)
    return template


@pytest.fixture(autouse=True)
def healthy_stores() -> Iterator[None]:
    FlakyMemoryFileSystem.down = False
    FlakyLocalFileSystem.rule = None
    yield
    FlakyMemoryFileSystem.down = False
    FlakyLocalFileSystem.rule = None


@pytest.fixture
def fast_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__PROVIDER_EXECUTORS__UNKNOWN_LIMIT", "4")
    monkeypatch.setenv("AIRFLOW__PROVIDER_EXECUTORS__CALL_TIMEOUT", "2")


def flaky_op(tmp_path: Path, data_dir: str, marker: Path, **kwargs: Any) -> ExecutorOperator:
    return ExecutorOperator(
        task_id="flaky",
        command=[
            "python",
            "-c",
            FLAKY_TASK,
            REPO,
            "{{.input}}",
            "{{.outputPrefix}}",
            "{{.taskTemplatePath}}",
            str(marker),
        ],
        input_types={"x": int},
        output_types={"y": int},
        inputs={"x": 21},
        data_dir=data_dir,
        deferrable=False,
        poll_interval=0.05,
        executor_options={"state_root": str(tmp_path / "local-state")},
        **kwargs,
    )


def runs_of(marker: Path) -> int:
    return marker.read_text().count("ran\n") if marker.exists() else 0


# -- the data store ---------------------------------------------------------------------------------


def test_store_down_at_start_is_retryable_and_names_the_reference(tmp_path: Path) -> None:
    data_dir = f"flakymem://bucket/{uuid.uuid4().hex}"
    op = flaky_op(tmp_path, data_dir, tmp_path / "marker")
    states = MemoryTaskStateStore()
    FlakyMemoryFileSystem.down = True

    with pytest.raises(AirflowException) as raised:
        op.execute(context_for(op, states))  # type: ignore[arg-type]

    assert not isinstance(raised.value, AirflowFailException)  # retryable
    message = str(raised.value)
    assert "data store unavailable at start" in message
    assert f"{data_dir}/unit_dag/manual__unit/flaky/1/task.pb" in message
    assert "ConnectionError" in message
    assert FlakyMemoryFileSystem.failures > 0
    assert states.data == {}  # nothing recorded: nothing started
    assert not (tmp_path / "local-state" / "executions").exists()
    assert runs_of(tmp_path / "marker") == 0


def test_store_down_at_start_then_back_the_next_try_runs(tmp_path: Path) -> None:
    data_dir = f"flakyfile://{tmp_path / 'data'}"
    marker = tmp_path / "marker"
    op = flaky_op(tmp_path, data_dir, marker)
    states = MemoryTaskStateStore()
    FlakyLocalFileSystem.rule = lambda op_name, path: True  # everything fails

    with pytest.raises(AirflowException) as raised:
        op.execute(context_for(op, states))  # type: ignore[arg-type]
    assert not isinstance(raised.value, AirflowFailException)
    assert f"{data_dir}/unit_dag/manual__unit/flaky/1/task.pb" in str(raised.value)

    FlakyLocalFileSystem.rule = None
    context = context_for(op, states, try_number=2)
    assert op.execute(context) == {"y": 42}  # type: ignore[arg-type]
    assert runs_of(marker) == 1


def test_template_on_a_store_that_is_down_is_retryable(tmp_path: Path) -> None:
    reference = f"flakymem://templates/{uuid.uuid4().hex}/task.pb"
    asyncio.run(DataStore().write_protobuf(reference, DOUBLE))
    op = ExecutorOperator(
        task_id="t", task_template=reference, inputs={"x": 1}, data_dir=str(tmp_path / "d"), deferrable=False
    )
    FlakyMemoryFileSystem.down = True

    with pytest.raises(AirflowException) as raised:
        op.execute(context_for(op))  # type: ignore[arg-type]

    assert reference in str(raised.value)
    assert not isinstance(raised.value, AirflowFailException)


def test_store_down_at_output_resolution_the_outputs_are_not_lost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = f"flakyfile://{tmp_path / 'data'}"
    marker = tmp_path / "marker"
    op = flaky_op(tmp_path, data_dir, marker)
    states = MemoryTaskStateStore()
    tripped: list[str] = []

    def down_right_after_the_success_check(op_name: str, path: str) -> bool:
        if tripped:
            return True
        if op_name == "info" and path.endswith("/outputs.pb"):
            tripped.append(path)  # the status check saw the outputs; the store goes down now
        return False

    FlakyLocalFileSystem.rule = down_right_after_the_success_check
    with pytest.raises(AirflowException) as raised:
        op.execute(context_for(op, states))  # type: ignore[arg-type]

    assert not isinstance(raised.value, AirflowFailException)  # retryable
    message = str(raised.value)
    outputs = f"{data_dir}/unit_dag/manual__unit/flaky/1/outputs/outputs.pb"
    assert "succeeded but its outputs could not be read" in message and outputs in message, message
    assert "ConnectionError" in message
    assert runs_of(marker) == 1
    record = states.get(STATE_KEY)
    assert record is not None and ExecutionHandle.from_dict(record).task_ctx.outputs_file == outputs

    # The store is back; Airflow retries: the new try adopts the succeeded execution.
    FlakyLocalFileSystem.rule = None
    context = context_for(op, states, try_number=2)
    capsys.readouterr()
    assert op.execute(context) == {"y": 42}  # type: ignore[arg-type]
    assert runs_of(marker) == 1, "the succeeded execution must not run again"
    assert "re-attached to flaky-0-" in capsys.readouterr().out  # the task log says so
    try2 = execution_folder(
        str(tmp_path / "data"),
        dag_id="unit_dag",
        run_id="manual__unit",
        task_id="flaky",
        map_index=-1,
        try_number=2,
    )
    assert not Path(try2).exists()


async def test_store_down_during_the_success_check_is_unknown_not_a_permanent_failure(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    data_dir = f"flakyfile://{tmp_path / 'data'}"
    store = DataStore()
    executor = LocalExecutor(state_root=str(tmp_path / "local-state"))
    await executor.initialize(ExecutorInitializationParameters(data_store=store))
    ctx = TaskContext(
        task_execution_id=TaskExecutionID.create(make_identifier(node="flaky")), data_dir=data_dir
    )
    template = python_template(
        FLAKY_TASK,
        REPO,
        "{{.input}}",
        "{{.outputPrefix}}",
        "{{.taskTemplatePath}}",
        str(marker),
        inputs={"x": INT},
        outputs={"y": INT},
    )
    inputs = int_inputs(x=21)
    await store.write_protobuf(ctx.task_template_file, template)
    await store.write_protobuf(ctx.inputs_file, inputs)
    outages: list[str] = []

    def down_for_two_outputs_checks(op_name: str, path: str) -> bool:
        if op_name == "info" and path.endswith("/outputs.pb") and len(outages) < 2:
            outages.append(path)
            return True
        return False

    async def load() -> literals_pb2.LiteralMap:
        return inputs

    FlakyLocalFileSystem.rule = down_for_two_outputs_checks
    policy = PollPolicy(interval=0.05, max_backoff=0.1, jitter=0.0, unknown_limit=5, call_timeout=5)
    driver = ExecutionDriver(executor, template, ctx, inputs_loader=load, policy=policy)
    final = await asyncio.wait_for(driver.run(), 30)

    assert runs_of(marker) == 1 and outages, "the task ran and the store was down during the check"
    assert final.phase is TaskPhase.SUCCEEDED, final


# -- the backend unreachable while polling ----------------------------------------------------------


async def faulty_executor(tmp_path: Path, **options: Any) -> FaultyExecutor:
    executor = FaultyExecutor(state_root=str(tmp_path / "local-state"), kill_grace_period=1, **options)
    await executor.initialize(ExecutorInitializationParameters(data_store=DataStore()))
    return executor


async def prepared_driver(
    tmp_path: Path, executor: Any, template: Any, policy: PollPolicy, seen: list[TaskStatus], x: int = 21
) -> ExecutionDriver:
    store = DataStore()
    ctx = TaskContext(
        task_execution_id=TaskExecutionID.create(make_identifier(node="faulty")),
        data_dir=str(tmp_path / "executions" / "faulty"),
    )
    inputs = int_inputs(x=x)
    await store.write_protobuf(ctx.task_template_file, template)
    await store.write_protobuf(ctx.inputs_file, inputs)

    async def load() -> literals_pb2.LiteralMap:
        return inputs

    return ExecutionDriver(
        executor, template, ctx, inputs_loader=load, policy=policy, on_change=lambda _c, s: seen.append(s)
    )


async def test_backend_unreachable_while_polling_is_unknown_then_recovers(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    executor = await faulty_executor(tmp_path, fail="check_task_status", times=3)
    policy = PollPolicy(interval=0.05, max_backoff=0.1, jitter=0.0, unknown_limit=5, call_timeout=5)
    seen: list[TaskStatus] = []
    driver = await prepared_driver(tmp_path, executor, counting_double(marker), policy, seen)

    async with loop_monitor() as gaps:
        final, healthy = await asyncio.gather(asyncio.wait_for(driver.run(), 30), healthy_run(tmp_path, 5))

    assert healthy == 10
    phases = [s.phase for s in seen]
    # The task may still run when the backend is back (one RUNNING more), depending on timing.
    assert phases[:2] == [TaskPhase.RUNNING, TaskPhase.UNKNOWN] and phases[-1] is TaskPhase.SUCCEEDED, phases
    assert set(phases[2:-1]) <= {TaskPhase.RUNNING}, phases
    unknown = seen[1].err
    assert unknown is not None and unknown.code == "ConnectionError"
    assert f"executor {FAULTY_ID!r} raised" in unknown.message and "backend unreachable" in unknown.message
    assert final.phase is TaskPhase.SUCCEEDED
    assert executor.failures["check_task_status"] == 3 and driver.unknown_streak == 0
    outputs = await executor.resolve_outputs(driver.ctx, "y")
    assert outputs["y"].scalar.primitive.integer == 42
    assert runs_of(marker) == 1
    gaps.assert_below(0.2)


async def test_backend_unreachable_too_long_is_a_retryable_failure(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    executor = await faulty_executor(tmp_path, fail="check_task_status")
    # The local executor underneath watches the execution (its start says so): checks would wait
    # watched_interval; this test is about the checks, so they come every 20 ms.
    policy = PollPolicy(
        interval=0.02, watched_interval=0.02, max_backoff=0.05, jitter=0.0, unknown_limit=3, call_timeout=5
    )
    driver = await prepared_driver(
        tmp_path, executor, python_template(SLEEPER, str(marker), "30"), policy, []
    )
    try:
        final = await asyncio.wait_for(driver.run(), 30)
        assert final.phase is TaskPhase.RETRYABLE_FAILURE and final.err is not None
        assert final.err.code == "StatusUnknown"
        assert f"executor {FAULTY_ID!r} could not report a status 3 times in a row" in final.err.message
        assert "backend unreachable" in final.err.message
        assert not process_gone(
            local_pid(driver.ctx.data_dir, tmp_path / "local-state")
        )  # still running: a later try decides
    finally:
        await executor.inner.kill_task(driver.ctx, "test cleanup")


async def test_backend_unreachable_through_a_trigger_recovers(tmp_path: Path) -> None:
    config = {"state_root": str(tmp_path / "local-state"), "fail": "check_task_status", "times": 3}
    policy = PollPolicy(interval=0.05, max_backoff=0.1, jitter=0.0, unknown_limit=5, call_timeout=5)
    faulty = await prepare_trigger(
        tmp_path,
        DOUBLE,
        name="faulty",
        config=config,
        executor_id=FAULTY_ID,
        inputs=int_inputs(x=4),
        policy=policy,
        start=True,
    )
    healthy = await prepare_trigger(
        tmp_path, DOUBLE, name="healthy", config={"state_root": config["state_root"]}, inputs=int_inputs(x=5)
    )
    async with loop_monitor() as gaps:
        statuses = await asyncio.gather(run_trigger(faulty.trigger()), run_trigger(healthy.trigger()))
    assert [s.phase for s in statuses] == [TaskPhase.SUCCEEDED, TaskPhase.SUCCEEDED]
    out = literals_pb2.LiteralMap.FromString(Path(faulty.ctx.outputs_file).read_bytes())
    assert out.literals["y"].scalar.primitive.integer == 8
    gaps.assert_below(0.2)


def test_backend_unreachable_in_the_worker_recovers(tmp_path: Path, fast_config: None) -> None:
    op = ExecutorOperator(
        task_id="faulty",
        executor_id=FAULTY_ID,
        command=list(DOUBLE.container.command),
        input_types={"x": int},
        output_types={"y": int},
        inputs={"x": 3},
        data_dir=str(tmp_path / "data"),
        deferrable=False,
        poll_interval=0.05,
        executor_options={
            "state_root": str(tmp_path / "local-state"),
            "fail": "check_task_status",
            "times": 3,
        },
    )
    assert op.execute(context_for(op)) == {"y": 6}  # type: ignore[arg-type]


# -- an executor method that hangs --------------------------------------------------------------------


async def test_hanging_check_becomes_unknown_and_the_loop_serves_other_triggers(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    executor = await faulty_executor(tmp_path, fail="check_task_status", how="hang", times=2)
    policy = PollPolicy(interval=0.05, max_backoff=0.1, jitter=0.0, unknown_limit=5, call_timeout=0.3)
    seen: list[TaskStatus] = []
    driver = await prepared_driver(tmp_path, executor, counting_double(marker), policy, seen)
    others = [
        await prepare_trigger(
            tmp_path,
            DOUBLE,
            name=f"other-{i}",
            config={"state_root": str(tmp_path / "o")},
            inputs=int_inputs(x=i),
        )
        for i in range(3)
    ]

    async with loop_monitor() as gaps:
        final, *statuses = await asyncio.gather(
            asyncio.wait_for(driver.run(), 30), *(run_trigger(o.trigger()) for o in others)
        )

    assert final.phase is TaskPhase.SUCCEEDED
    assert [s.phase for s in statuses] == [TaskPhase.SUCCEEDED] * 3
    # The two hanging checks become UNKNOWN (one phase change: both come in a row). On a loaded
    # machine a real check can also overrun the 0.3 s limit: that is one more UNKNOWN, as it must.
    timeouts = [s for s in seen if s.phase is TaskPhase.UNKNOWN]
    assert timeouts, seen
    for timeout in timeouts:
        assert timeout.err is not None and timeout.err.code == "CallTimeout", timeout
        assert f"executor {FAULTY_ID!r} did not answer within 0.3s" in timeout.err.message
    assert executor.failures["check_task_status"] == 2
    assert runs_of(marker) == 1
    gaps.assert_below(0.2)


async def test_start_that_launches_then_hangs_is_asked_again_without_a_second_launch(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    executor = await faulty_executor(tmp_path, fail="start_task", how="hang_after", times=1)
    policy = PollPolicy(interval=0.05, max_backoff=0.1, jitter=0.0, unknown_limit=5, call_timeout=0.5)
    seen: list[TaskStatus] = []
    driver = await prepared_driver(tmp_path, executor, counting_double(marker), policy, seen)

    final = await asyncio.wait_for(driver.run(), 30)

    assert final.phase is TaskPhase.SUCCEEDED
    assert (
        seen[0].phase is TaskPhase.UNKNOWN and seen[0].err is not None and seen[0].err.code == "CallTimeout"
    )
    assert executor.calls["start_task"] == 2  # asked again after the timeout ...
    assert runs_of(marker) == 1  # ... which re-attached to the process the first call launched


@pytest.mark.parametrize("method", ["kill_task", "initialize"])
async def test_a_hanging_kill_or_initialize_does_not_hold_the_trigger_forever(
    tmp_path: Path, method: str
) -> None:
    config = {
        "state_root": str(tmp_path / "local-state"),
        "fail": method,
        "how": "hang",
        "kill_grace_period": 1,
    }
    policy = PollPolicy(interval=0.05, max_backoff=0.1, jitter=0.0, unknown_limit=3, call_timeout=0.3)
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.5)
    prepared = await prepare_trigger(
        tmp_path,
        python_template(SLEEPER, str(tmp_path / "marker"), "30"),
        name="hangs",
        config=config,
        executor_id=FAULTY_ID,
        policy=policy,
        deadline=deadline,
        start=method == "kill_task",  # initialize would hang in the "operator" too
    )
    try:
        status = await run_trigger(prepared.trigger(), timeout=3)  # 0.5 s deadline + 3 x 0.3 s: plenty
        assert status.phase is TaskPhase.RETRYABLE_FAILURE
    finally:
        await LocalExecutor(state_root=config["state_root"], kill_grace_period=1).kill_task(
            prepared.ctx, "cleanup"
        )


# -- an executor that raises in each method ----------------------------------------------------------

EXPLODES = "RuntimeError"
FRAGMENT = "failed: backend unreachable"


def faulty_op(tmp_path: Path, method: str, **kwargs: Any) -> ExecutorOperator:
    kwargs.setdefault("command", list(DOUBLE.container.command))
    if kwargs["command"] == list(DOUBLE.container.command):
        kwargs.update(input_types={"x": int}, output_types={"y": int}, inputs={"x": 3})
    return ExecutorOperator(
        task_id="faulty",
        executor_id=FAULTY_ID,
        data_dir=str(tmp_path / "data"),
        deferrable=False,
        poll_interval=0.05,
        executor_options={
            "state_root": str(tmp_path / "local-state"),
            "fail": method,
            "error": EXPLODES,
            "kill_grace_period": 1,
        },
        **kwargs,
    )


# What the Airflow task becomes when the executor raises RuntimeError in each method (worker side,
# deferrable=False).
WORKER_TABLE = {
    "initialize": ("AirflowException", ["could not be initialized", "initialize " + FRAGMENT]),
    "start_task": ("AirflowException", ["StatusUnknown", f"executor {FAULTY_ID!r} raised", "start_task"]),
    "check_task_status": ("AirflowException", ["StatusUnknown", "check_task_status " + FRAGMENT]),
    "resolve_outputs": ("AirflowException", ["outputs could not be read", "resolve_outputs " + FRAGMENT]),
    "read_logs": ("success", []),  # logs are a courtesy: a warning, outputs published
}


@pytest.mark.parametrize("method", sorted(WORKER_TABLE))
def test_executor_raising_in_each_method_worker_side(
    tmp_path: Path, method: str, fast_config: None, capsys: pytest.CaptureFixture[str]
) -> None:
    expect, fragments = WORKER_TABLE[method]
    op = faulty_op(tmp_path, method)
    context = context_for(op)
    try:
        result = op.execute(context)  # type: ignore[arg-type]
        kind, message = "success", ""
    except AirflowFailException as exc:
        kind, message = "AirflowFailException", str(exc)
    except AirflowException as exc:
        kind, message = "AirflowException", str(exc)
    except Exception as exc:
        kind, message = f"raw {type(exc).__name__}", str(exc)
    assert kind == expect, message
    for fragment in fragments:
        assert fragment in message, message
    if kind == "success":
        assert result == {"y": 6}
        assert "could not read the output of faulty-0-" in capsys.readouterr().out  # a warning only


def test_worker_timeout_with_a_failing_kill_still_says_timeout(tmp_path: Path, fast_config: None) -> None:
    op = faulty_op(
        tmp_path, "kill_task", command=["python", "-c", SLEEPER, str(tmp_path / "m"), "30"], timeout=1
    )
    folder = execution_folder(
        str(tmp_path / "data"),
        dag_id="unit_dag",
        run_id="manual__unit",
        task_id="faulty",
        map_index=-1,
        try_number=1,
    )
    try:
        with pytest.raises(AirflowException, match="did not finish before"):
            op.execute(context_for(op))  # type: ignore[arg-type]
    finally:
        asyncio.run(_kill_folder(tmp_path, folder))


async def _kill_folder(tmp_path: Path, folder: str) -> None:
    ctx = TaskContext(task_execution_id=TaskExecutionID.create(make_identifier()), data_dir=folder)
    await LocalExecutor(state_root=str(tmp_path / "local-state"), kill_grace_period=1).kill_task(
        ctx, "cleanup"
    )


# Triggerer side: what the trigger's event says, for each method raising (always), while a healthy
# trigger shares the loop. The trigger never calls resolve_outputs or read_logs (the worker does).
TRIGGER_TABLE = {
    "initialize": (TaskPhase.RETRYABLE_FAILURE, "RuntimeError", "cannot resume the execution"),
    "start_task": (TaskPhase.RETRYABLE_FAILURE, "StatusUnknown", "start_task " + FRAGMENT),
    "check_task_status": (TaskPhase.RETRYABLE_FAILURE, "StatusUnknown", "check_task_status " + FRAGMENT),
    "kill_task": (TaskPhase.RETRYABLE_FAILURE, "Timeout", "did not finish before"),
    "resolve_outputs": (TaskPhase.SUCCEEDED, None, ""),
    "read_logs": (TaskPhase.SUCCEEDED, None, ""),
}


@pytest.mark.parametrize("method", sorted(TRIGGER_TABLE))
async def test_executor_raising_in_each_method_trigger_side(tmp_path: Path, method: str) -> None:
    phase, code, fragment = TRIGGER_TABLE[method]
    state_root = str(tmp_path / "local-state")
    # kill_task fails twice, then works: the executor requires a finalizer, so the trigger retries.
    config = {
        "state_root": state_root,
        "fail": method,
        "error": EXPLODES,
        "kill_grace_period": 1,
        "times": 2 if method == "kill_task" else -1,
    }
    policy = PollPolicy(interval=0.05, max_backoff=0.1, jitter=0.0, unknown_limit=3, call_timeout=5)
    marker = tmp_path / "marker"
    template, deadline = counting_double(marker), None
    if method == "kill_task":
        template = python_template(SLEEPER, str(marker), "30")
        deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.5)
    faulty = await prepare_trigger(
        tmp_path,
        template,
        name="faulty",
        config=config,
        executor_id=FAULTY_ID,
        inputs=int_inputs(x=2),
        policy=policy,
        deadline=deadline,
        start=method == "kill_task",
    )

    async with loop_monitor() as gaps:
        status, healthy = await asyncio.gather(
            run_trigger(faulty.trigger(), timeout=30), healthy_run(tmp_path, 7)
        )

    assert healthy == 14
    assert status.phase is phase, status
    if code is not None:
        assert status.err is not None and status.err.code == code, status
        assert fragment in status.err.message, status.err.message
    if method == "kill_task":
        assert process_gone(local_pid(faulty.ctx.data_dir, tmp_path / "local-state")), (
            "the kill was retried until it worked"
        )
    if phase is TaskPhase.SUCCEEDED:
        assert runs_of(marker) == 1
    gaps.assert_below(0.2)
    await LocalExecutor(state_root=state_root).kill_task(faulty.ctx, "test cleanup")


async def test_on_kill_retries_a_failing_kill_until_it_works(tmp_path: Path) -> None:
    state_root = str(tmp_path / "local-state")
    config = {"state_root": state_root, "fail": "kill_task", "times": 2, "kill_grace_period": 1}
    marker = tmp_path / "marker"
    prepared = await prepare_trigger(
        tmp_path,
        python_template(SLEEPER, str(marker), "30"),
        name="killed",
        config=config,
        executor_id=FAULTY_ID,
        start=True,
    )
    trigger = prepared.trigger()
    task = asyncio.ensure_future(run_trigger(trigger))
    await wait_for(marker.exists, what="the process")
    pid = local_pid(prepared.ctx.data_dir, tmp_path / "local-state")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    async with loop_monitor() as gaps:
        await asyncio.gather(asyncio.wait_for(trigger.on_kill(), 20), healthy_run(tmp_path, 9))

    assert process_gone(pid)
    gaps.assert_below(0.2)


# -- adopting an earlier try's execution ---------------------------------------------------------------


def test_a_new_try_stops_an_earlier_execution_it_cannot_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__PROVIDER_EXECUTORS__UNKNOWN_LIMIT", "2")
    marker = tmp_path / "marker"
    op = faulty_op(tmp_path, "check_task_status", command=["python", "-c", SLEEPER, str(marker), "30"])
    op.executor_options["error"] = "ConnectionError"
    states = MemoryTaskStateStore()
    folders = [
        execution_folder(
            str(tmp_path / "data"),
            dag_id="unit_dag",
            run_id="manual__unit",
            task_id="faulty",
            map_index=-1,
            try_number=n,
        )
        for n in (1, 2)
    ]
    try:
        with pytest.raises(AirflowException, match="StatusUnknown"):
            op.execute(context_for(op, states))  # type: ignore[arg-type]
        first = local_pid(folders[0], tmp_path / "local-state")
        assert not process_gone(first)

        with pytest.raises(AirflowException, match="StatusUnknown"):
            op.execute(context_for(op, states, try_number=2))  # type: ignore[arg-type]

        assert runs_of(marker) == 2  # the new try started its own execution ...
        assert process_gone(first), "... and the earlier one, which could not be checked, is still running"
    finally:
        for folder in folders:
            asyncio.run(_kill_folder(tmp_path, folder))
