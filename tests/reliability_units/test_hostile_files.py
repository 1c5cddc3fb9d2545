"""Hostile task files: a task controls ``outputs.pb``, ``error.pb`` and ``logs/stderr.log``, and
makes them a FIFO, a symlink to ``/dev/zero``, a symlink to a valid file outside its execution
folder, a directory, or a (sparse) file over the cap.

Every case runs a REAL local execution whose command does the damage, at two levels (as in
``test_bad_input_corpus``):

* executor level: the real :class:`LocalExecutor` and :class:`ExecutionDriver` to the final phase,
  then ``resolve_outputs`` for a success: the outcome is the phase, or ``SUCCEEDED->Error``;
* operator level: ``ExecutorOperator._execute`` (``deferrable=False``) on the test's loop: the
  Airflow exception (``AirflowFailException``: no retry).

Each outcome must name the file and what is wrong with it, come promptly (no read waits for
anything), and the /dev/zero cases must not grow the process's memory. Then ten hostile FIFO tasks
are polled twenty times each on one loop beside a healthy task: the healthy one succeeds on time and
the loop's default thread pool still has every thread free.

Against code without the guarded reader these tests fail rather than hang: a FIFO read is bounded by
the driver's call timeout (its stuck thread is released at the end of the test, see
:func:`hostile_files.release_fifos`) and an unbounded read ends in MemoryError under
:func:`hostile_files.address_space_limit`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred
from flyteidl.core import errors_pb2, execution_pb2, literals_pb2, tasks_pb2

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
from executors.backends.outputs import REFUSED_ERROR_FILE
from executors.data.storage import RefusedDataError
from harness.loop_gaps import loop_monitor
from tests.conftest import INT, make_identifier, python_template
from tests.reliability_units.hostile_files import (
    MiB,
    address_space_limit,
    fifos_released,
    rss_sampled,
)
from tests.reliability_units.support import (
    DOUBLE,
    context_for,
    healthy_run,
    int_inputs,
    prepare_trigger,
    run_trigger,
)

CALL_TIMEOUT = 2.0
POLICY = PollPolicy(interval=0.02, max_backoff=0.05, jitter=0.0, unknown_limit=2, call_timeout=CALL_TIMEOUT)
CASE_TIMEOUT = 45.0
"""A ceiling per case: with the guarded reader each takes about a second (a process start)."""

HOSTILE_TASK = r"""
import os, sys
out, folder, how, name, code, arg = sys.argv[1:7]
code = int(code)
# outputs.pb / error.pb are in the output prefix; logs/ is in the execution folder (inputPrefix).
path = os.path.join(folder if name.startswith("logs/") else out, name)
os.makedirs(os.path.dirname(path), exist_ok=True)
if os.path.lexists(path):
    os.unlink(path)  # logs/stderr.log: our stderr still writes to the file we were given
if how == "fifo":
    os.mkfifo(path)
elif how == "symlink":
    os.symlink(arg, path)
elif how == "directory":
    os.mkdir(path)
elif how == "sparse":
    with open(path, "wb") as fh:
        fh.truncate(int(arg))
print(f"made {name} a {how}")
sys.stderr.write(f"made {name} a {how}\n")
sys.exit(code)
"""

FAIL, RETRY = "AirflowFailException", "AirflowException"


@dataclasses.dataclass(frozen=True)
class Hostile:
    id: str
    how: str
    name: str
    code: int
    executor_outcome: str
    operator_outcome: str
    problem: str
    """What the message must say right after ``<the file>: `` (``{outside}``: the outside folder)."""
    arg: str = ""
    outputs: bool = False
    code_in_message: str = ""

    def template(self, outside: Path) -> tasks_pb2.TaskTemplate:
        arg = self.arg.format(outside=outside)
        outputs = {"y": INT} if self.outputs else None
        return python_template(
            HOSTILE_TASK,
            "{{.outputPrefix}}",
            "{{.inputPrefix}}",
            self.how,
            self.name,
            str(self.code),
            arg,
            outputs=outputs,
        )

    def path(self, ctx: TaskContext) -> Path:
        """Where the task makes its hostile file: ``logs/`` is in the execution folder, the ``.pb``
        files are in the output prefix."""
        return hostile_path(ctx, self.name)


def hostile_path(ctx: TaskContext, name: str) -> Path:
    return Path(ctx.data_dir if name.startswith("logs/") else ctx.output_prefix) / name


PERMANENT, RETRYABLE = "PERMANENT_FAILURE", "RETRYABLE_FAILURE"
OUT = "SUCCEEDED->RefusedDataError"

CASES = [
    Hostile("error-pb-fifo", "fifo", "error.pb", 1, PERMANENT, FAIL, "is a FIFO, not a regular file",
            code_in_message=REFUSED_ERROR_FILE),
    # flytekit's entrypoint reports a user error by writing error.pb and exiting 0.
    Hostile("error-pb-fifo-exit-0", "fifo", "error.pb", 0, PERMANENT, FAIL, "is a FIFO, not a regular file",
            outputs=True, code_in_message=REFUSED_ERROR_FILE),
    Hostile("error-pb-dev-zero", "symlink", "error.pb", 1, PERMANENT, FAIL,
            "symlink out of the execution folder", arg="/dev/zero"),
    # A valid RECOVERABLE document outside: read, it would make the task retry.
    Hostile("error-pb-symlink-out", "symlink", "error.pb", 1, PERMANENT, FAIL,
            "symlink out of the execution folder", arg="{outside}/error.pb"),
    Hostile("error-pb-directory", "directory", "error.pb", 1, PERMANENT, FAIL,
            "is a directory, not a regular file"),
    Hostile("error-pb-over-the-cap", "sparse", "error.pb", 1, PERMANENT, FAIL,
            "2 MiB (2097152 bytes) exceeds the 1 MiB cap", arg=str(2 * MiB)),
    # The exit code decides (a retry); the log tail names the file it would not read.
    Hostile("stderr-log-fifo", "fifo", "logs/stderr.log", 1, RETRYABLE, RETRY,
            "is a FIFO, not a regular file", code_in_message="ExitCode1"),
    Hostile("stderr-log-dev-zero", "symlink", "logs/stderr.log", 1, RETRYABLE, RETRY,
            "symlink out of the execution folder", arg="/dev/zero", code_in_message="ExitCode1"),
    Hostile("outputs-pb-fifo", "fifo", "outputs.pb", 0, OUT, FAIL, "is a FIFO, not a regular file",
            outputs=True),
    Hostile("outputs-pb-dev-zero", "symlink", "outputs.pb", 0, OUT, FAIL,
            "symlink out of the execution folder", arg="/dev/zero", outputs=True),
    # A valid LiteralMap outside the folder: read, it would be published as this task's outputs.
    Hostile("outputs-pb-symlink-out", "symlink", "outputs.pb", 0, OUT, FAIL,
            "symlink out of the execution folder", arg="{outside}/outputs.pb", outputs=True),
    Hostile("outputs-pb-directory", "directory", "outputs.pb", 0, OUT, FAIL,
            "is a directory, not a regular file", outputs=True),
    Hostile("outputs-pb-over-the-cap", "sparse", "outputs.pb", 0, "SUCCEEDED->DataTooLargeError", FAIL,
            "65 MiB (68157440 bytes) exceeds the 64 MiB cap", arg=str(65 * MiB), outputs=True),
]  # fmt: skip


def outside_folder(tmp: Path) -> Path:
    """A folder outside every execution folder, holding a valid error.pb (RECOVERABLE) and a valid
    outputs.pb (``y = 1``): what a symlink out of the folder would make us read."""
    outside = tmp / "elsewhere"
    outside.mkdir(parents=True, exist_ok=True)
    doc = errors_pb2.ErrorDocument()
    doc.error.code, doc.error.message = "FromElsewhere", "not this task's error"
    doc.error.kind = errors_pb2.ContainerError.RECOVERABLE
    doc.error.origin = execution_pb2.ExecutionError.USER
    (outside / "error.pb").write_bytes(doc.SerializeToString())
    (outside / "outputs.pb").write_bytes(int_inputs(y=1).SerializeToString())
    return outside


@dataclasses.dataclass
class Outcome:
    kind: str
    message: str


async def local_executor(tmp: Path) -> LocalExecutor:
    executor = LocalExecutor(state_root=str(tmp / "local-state"), kill_grace_period=1)
    await executor.initialize(ExecutorInitializationParameters(data_store=DataStore()))
    return executor


def hostile_ctx(tmp: Path, name: str) -> TaskContext:
    return TaskContext(
        task_execution_id=TaskExecutionID.create(make_identifier(node=name)),
        data_dir=str(tmp / "data" / name),
    )


async def drive(executor: LocalExecutor, template: tasks_pb2.TaskTemplate, ctx: TaskContext) -> Outcome:
    store = DataStore()
    await store.write_protobuf(ctx.task_template_file, template)
    await store.write_protobuf(ctx.inputs_file, literals_pb2.LiteralMap())

    async def no_inputs() -> literals_pb2.LiteralMap:
        return literals_pb2.LiteralMap()

    driver = ExecutionDriver(executor, template, ctx, inputs_loader=no_inputs, policy=POLICY)
    status = await driver.run()
    if status.phase is TaskPhase.SUCCEEDED and template.interface.outputs.variables:
        try:
            await asyncio.wait_for(executor.resolve_outputs(driver.ctx, "y"), CALL_TIMEOUT)
        except Exception as exc:
            return Outcome(f"SUCCEEDED->{type(exc).__name__}", str(exc))
    return Outcome(status.phase.name, str(status.err) if status.err else "")


def assert_names_the_file(case: Hostile, outcome: Outcome, path: Path, outside: Path) -> None:
    expected = f"{path}: {case.problem.format(outside=outside)}"
    assert expected in outcome.message, f"{case.id}: {expected!r} not in {outcome.message[:2000]!r}"
    assert case.code_in_message in outcome.message, outcome.message[:2000]
    assert len(outcome.message) < 4000, len(outcome.message)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_hostile_file_at_the_executor_level(case: Hostile, tmp_path: Path) -> None:
    outside = outside_folder(tmp_path)
    ctx = hostile_ctx(tmp_path, "bad")
    executor = await local_executor(tmp_path)
    with fifos_released(tmp_path), address_space_limit(), rss_sampled() as rss:
        started = time.monotonic()
        outcome = await asyncio.wait_for(drive(executor, case.template(outside), ctx), CASE_TIMEOUT)
        logs = await asyncio.wait_for(executor.read_logs(ctx), CALL_TIMEOUT)
        elapsed = time.monotonic() - started
    print(f"{case.id}: {outcome.kind} in {elapsed:.2f}s; {rss}")
    assert outcome.kind == case.executor_outcome, f"{case.id}: {outcome}"
    assert_names_the_file(case, outcome, case.path(ctx), outside)
    assert rss.growth < 64 * MiB, f"{case.id}: {rss}"
    assert logs is not None and "made" in logs  # the task's stdout is still shown
    if case.name.startswith("logs/"):
        assert f"[log not shown: {Path(ctx.data_dir) / case.name}: " in logs, logs


def op_for(tmp: Path, case: Hostile, outside: Path) -> ExecutorOperator:
    template = case.template(outside)
    return ExecutorOperator(
        task_id="hostile",
        command=list(template.container.command),
        output_types={"y": int} if case.outputs else None,
        data_dir=str(tmp / "data"),
        deferrable=False,
        poll_interval=0.05,
        executor_options={"state_root": str(tmp / "local-state"), "kill_grace_period": 1},
    )


async def run_op(op: ExecutorOperator) -> Outcome:
    context = context_for(op)
    try:
        await asyncio.wait_for(op._execute(context), CASE_TIMEOUT)  # type: ignore[arg-type]
    except (Exception, TaskDeferred) as exc:
        if isinstance(exc, AirflowFailException):
            return Outcome(FAIL, str(exc))
        if isinstance(exc, AirflowException):
            return Outcome(RETRY, str(exc))
        return Outcome(type(exc).__name__, str(exc))
    return Outcome("success", str(context["ti"].xcoms))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_hostile_file_at_the_operator_level(case: Hostile, tmp_path: Path) -> None:
    outside = outside_folder(tmp_path)
    op = op_for(tmp_path, case, outside)
    folder = execution_folder(
        str(tmp_path / "data"), dag_id="unit_dag", run_id="manual__unit", task_id="hostile", map_index=-1,
        try_number=1,
    )  # fmt: skip
    with fifos_released(tmp_path), address_space_limit(), rss_sampled() as rss:
        outcome = await run_op(op)
    print(f"{case.id}: {outcome.kind}; {rss}")
    assert outcome.kind == case.operator_outcome, f"{case.id}: {outcome}"
    folder_ctx = TaskContext(TaskExecutionID.create(make_identifier()), data_dir=folder)  # its layout
    assert_names_the_file(case, outcome, case.path(folder_ctx), outside)
    assert rss.growth < 96 * MiB, f"{case.id}: {rss}"


# -- ten hostile FIFO tasks and a healthy one on one loop -------------------------------------------

FIFO_MIX = (
    [("error.pb", 1)] * 3 + [("error.pb", 0)] * 2 + [("logs/stderr.log", 1)] * 3 + [("outputs.pb", 0)] * 2
)
POLLS = 20


def pool_size() -> int:
    """The size of asyncio's default thread pool (``ThreadPoolExecutor()``'s default)."""
    return min(32, (os.cpu_count() or 1) + 4)


async def all_pool_threads_free(loop: asyncio.AbstractEventLoop, timeout: float = 5.0) -> float:
    """Run ``pool_size()`` jobs that each wait for all the others: they only all finish if every
    thread of the loop's default pool is free. Returns how long it took."""
    barrier = threading.Barrier(pool_size(), timeout=timeout)
    started = time.monotonic()
    await asyncio.wait_for(
        asyncio.gather(*(loop.run_in_executor(None, barrier.wait) for _ in range(pool_size()))), timeout + 1
    )
    return time.monotonic() - started


async def ended(executor: LocalExecutor, ctx: TaskContext, template: tasks_pb2.TaskTemplate) -> None:
    """Wait until the process has ended: a check says something else than RUNNING/QUEUED, or
    does not answer (an unguarded reader stuck on the FIFO: the process has ended too)."""
    while True:
        try:
            status = await asyncio.wait_for(executor.check_task_status(ctx, template), CALL_TIMEOUT)
        except TimeoutError:
            return
        if status.phase not in (TaskPhase.RUNNING, TaskPhase.QUEUED):
            return
        await asyncio.sleep(0.05)


async def test_a_healthy_task_beside_ten_hostile_fifo_tasks_succeeds_on_time(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    executor = await local_executor(tmp_path)
    baseline_started = time.monotonic()
    assert await healthy_run(tmp_path / "baseline", 3) == 6
    baseline = time.monotonic() - baseline_started

    hostile: list[tuple[TaskContext, tasks_pb2.TaskTemplate, str, int]] = []

    async def poll(ctx: TaskContext, template: tasks_pb2.TaskTemplate) -> list[TaskStatus | str]:
        """What a triggerer does: check (each call bounded by the call timeout), and resolve the
        outputs of a success, twenty times over."""
        seen: list[TaskStatus | str] = []
        for _ in range(POLLS):
            try:
                status = await asyncio.wait_for(executor.check_task_status(ctx, template), CALL_TIMEOUT)
            except TimeoutError:
                seen.append("check timed out")
                continue
            if status.phase is TaskPhase.SUCCEEDED:
                try:
                    await asyncio.wait_for(executor.resolve_outputs(ctx, "y"), CALL_TIMEOUT)
                except TimeoutError:
                    seen.append("resolve timed out")
                    continue
                except RefusedDataError as exc:
                    seen.append(str(exc))
                    continue
            seen.append(status)
        return seen

    with fifos_released(tmp_path):  # inside the test: the loop's teardown waits for stuck threads
        for i, (name, code) in enumerate(FIFO_MIX):
            case = Hostile(f"fifo-{i}", "fifo", name, code, "", "", "", outputs=name == "outputs.pb")
            ctx = hostile_ctx(tmp_path, f"fifo-{i}")
            template = case.template(tmp_path)
            store = DataStore()
            await store.write_protobuf(ctx.task_template_file, template)
            await store.write_protobuf(ctx.inputs_file, literals_pb2.LiteralMap())
            status = await executor.start_task(ctx, template, literals_pb2.LiteralMap())
            assert status.phase is TaskPhase.RUNNING, status
            hostile.append((ctx, template, name, code))
        await asyncio.wait_for(asyncio.gather(*(ended(executor, ctx, t) for ctx, t, *_ in hostile)), 30)

        async with loop_monitor() as gaps:
            started = time.monotonic()
            healthy = asyncio.ensure_future(healthy_run(tmp_path / "healthy", 21))
            results = await asyncio.gather(*(poll(ctx, template) for ctx, template, *_ in hostile))
            polled = time.monotonic() - started
            assert await asyncio.wait_for(healthy, max(20.0, 4 * baseline)) == 42
            healthy_took = time.monotonic() - started
        pool_took = await all_pool_threads_free(loop)
        one_took = time.monotonic()
        assert await asyncio.wait_for(loop.run_in_executor(None, lambda: 42), 1.0) == 42
        one_took = time.monotonic() - one_took

    print(
        f"healthy alone {baseline:.2f}s, beside {len(hostile)} hostile FIFO tasks polled {POLLS}x: "
        f"{healthy_took:.2f}s; {len(hostile) * POLLS} polls in {polled:.2f}s; all {pool_size()} pool "
        f"threads free in {pool_took:.3f}s; one run_in_executor in {one_took * 1000:.1f} ms; "
        f"max loop gap {gaps.worst:.3f}s"
    )
    for (ctx, _template, name, code), seen in zip(hostile, results, strict=True):
        path = f"{hostile_path(ctx, name)}: is a FIFO, not a regular file"
        assert len(seen) == POLLS
        for item in seen:
            if name == "outputs.pb":
                assert item == path, item
                continue
            assert isinstance(item, TaskStatus), (name, code, item)
            assert item.err is not None and path in item.err.message, item
            if name == "error.pb":
                assert item.phase is TaskPhase.PERMANENT_FAILURE and item.err.code == REFUSED_ERROR_FILE, item
            else:
                assert item.phase is TaskPhase.RETRYABLE_FAILURE and item.err.code == "ExitCode1", item
    assert healthy_took < max(15.0, 3 * baseline), f"healthy took {healthy_took:.2f}s (alone {baseline:.2f}s)"
    assert polled < 10, f"{len(hostile) * POLLS} polls took {polled:.2f}s"
    gaps.assert_below(0.2)


async def test_hostile_fifo_triggers_end_and_healthy_triggers_succeed(tmp_path: Path) -> None:
    """The same through ``ExecutorTrigger`` s, as a triggerer runs them: each hostile one ends with
    a final event, healthy ones beside them succeed, the loop is never blocked."""
    config = {"state_root": str(tmp_path / "local-state"), "kill_grace_period": 1}
    prepared: dict[str, Any] = {}
    for i, (name, code) in enumerate(FIFO_MIX):
        if name == "outputs.pb":
            continue  # a trigger reports SUCCEEDED; the operator reads the outputs (see above)
        case = Hostile(f"fifo-{i}", "fifo", name, code, "", "", "")
        prepared[f"fifo-{i}"] = await prepare_trigger(
            tmp_path, case.template(tmp_path), name=f"fifo-{i}", config=config, policy=POLICY
        )
    for i in range(2):
        prepared[f"healthy-{i}"] = await prepare_trigger(
            tmp_path, DOUBLE, name=f"healthy-{i}", config=config, inputs=int_inputs(x=i), policy=POLICY
        )
    names = list(prepared)
    with fifos_released(tmp_path):
        async with loop_monitor() as gaps:
            results = await asyncio.gather(*(run_trigger(prepared[n].trigger(), timeout=60) for n in names))
    statuses = dict(zip(names, results, strict=True))
    expected: dict[str, Callable[[TaskStatus], bool]] = {
        "error.pb": lambda s: s.phase is TaskPhase.PERMANENT_FAILURE,
        "logs/stderr.log": lambda s: s.phase is TaskPhase.RETRYABLE_FAILURE,
    }
    for i, (name, _code) in enumerate(FIFO_MIX):
        if name == "outputs.pb":
            continue
        status = statuses[f"fifo-{i}"]
        ctx = prepared[f"fifo-{i}"].ctx
        assert expected[name](status), (name, status)
        assert status.err is not None and f"{hostile_path(ctx, name)}: is a FIFO" in status.err.message
    for i in range(2):
        assert statuses[f"healthy-{i}"].phase is TaskPhase.SUCCEEDED, statuses[f"healthy-{i}"]
    print(f"max loop gap {gaps.worst:.3f}s over {len(gaps.gaps)} ticks")
    gaps.assert_below(0.2)
