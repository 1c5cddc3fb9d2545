"""The local executor, for real: real processes, real files, real flyteidl protobufs.

What every executor must do (idempotent start and kill, re-attach from another process, what
``outputs.pb``/``error.pb`` mean, logs) is checked by the contract kit in ``test_contract.py``;
here is what is the local executor's own."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from flyteidl.core import literals_pb2, tasks_pb2

from executors import (
    DataStore,
    ExecutorInitializationParameters,
    TaskContext,
    TaskPhase,
)
from executors.backends.local import LocalExecutor
from tests.conftest import DOUBLER, INT, make_template, python_template
from tests.executors.backends.local.helpers import start, wait_final

DOUBLE_TEMPLATE = python_template(
    DOUBLER, "{{.input}}", "{{.outputPrefix}}", inputs={"x": INT}, outputs={"y": INT}
)


def int_inputs(**values: int) -> literals_pb2.LiteralMap:
    lm = literals_pb2.LiteralMap()
    for k, v in values.items():
        lm.literals[k].scalar.primitive.integer = v
    return lm


@pytest.fixture
async def executor(tmp_path: Path, store: DataStore) -> LocalExecutor:
    ex = LocalExecutor(state_root=str(tmp_path / "state"), kill_grace_period=2)
    await ex.initialize(ExecutorInitializationParameters(data_store=store))
    return ex


async def test_crash_is_retryable_with_the_log_tail(
    executor: LocalExecutor, store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    ctx = make_ctx()
    script = "import sys\nfor i in range(5000): print('line', i, file=sys.stderr)\nraise SystemExit(3)"
    template = python_template(script)
    await start(executor, store, ctx, template)
    status = await wait_final(executor, ctx, template)
    assert status.phase is TaskPhase.RETRYABLE_FAILURE
    assert status.err is not None and status.err.code == "ExitCode3"
    assert "exited with code 3" in status.err.message
    assert "line 4999" in status.err.message and "line 10\n" not in status.err.message
    assert len(status.err.message) < 2500  # huge logs are tailed, not copied


async def test_command_not_found_is_permanent(
    executor: LocalExecutor, store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    ctx = make_ctx()
    template = make_template(["definitely-not-a-command-xyz", "arg"])
    status = await start(executor, store, ctx, template)
    assert status.phase is TaskPhase.PERMANENT_FAILURE
    assert status.err is not None and status.err.code == "CommandNotFound"
    assert "definitely-not-a-command-xyz" in status.err.message
    assert (await executor.check_task_status(ctx, template)).phase is TaskPhase.PERMANENT_FAILURE


async def test_template_without_container_is_permanent(
    executor: LocalExecutor, store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    template = tasks_pb2.TaskTemplate(type="sql")
    template.id.name = "my.sql.task"
    status = await executor.start_task(make_ctx(), template, literals_pb2.LiteralMap())
    assert status.phase is TaskPhase.PERMANENT_FAILURE
    assert (
        status.err is not None
        and "my.sql.task" in status.err.message
        and "no container" in status.err.message
    )


async def test_unknown_placeholder_is_permanent(
    executor: LocalExecutor, store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    status = await executor.start_task(
        make_ctx(), make_template(["echo", "{{.nope}}"]), literals_pb2.LiteralMap()
    )
    assert status.phase is TaskPhase.PERMANENT_FAILURE
    assert (
        status.err is not None and status.err.code == "InvalidCommand" and "{{.nope}}" in status.err.message
    )


async def test_memory_data_dir_is_rejected(
    executor: LocalExecutor, make_ctx: Callable[..., TaskContext]
) -> None:
    ctx = make_ctx()
    ctx = TaskContext(task_execution_id=ctx.task_execution_id, data_dir="memory://somewhere/x")
    status = await executor.start_task(ctx, DOUBLE_TEMPLATE, int_inputs(x=1))
    assert status.phase is TaskPhase.PERMANENT_FAILURE
    assert status.err is not None and "memory://somewhere/x/inputs.pb" in status.err.message


TREE = textwrap.dedent(
    """
    import subprocess, sys, time
    children = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"]) for _ in range(3)]
    with open(sys.argv[1], "w") as fh:
        fh.write(" ".join(str(c.pid) for c in children))
    time.sleep(300)
    """
)


async def test_kill_stops_the_whole_process_tree(
    executor: LocalExecutor, store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path
) -> None:
    ctx = make_ctx()
    pids_file = tmp_path / "pids"
    template = python_template(TREE, str(pids_file))
    status = await start(executor, store, ctx, template)
    deadline = time.monotonic() + 10
    while not pids_file.exists() or not pids_file.read_text():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    tree = [status.state["pid"], *map(int, pids_file.read_text().split())]  # type: ignore[index]
    assert all(psutil.pid_exists(p) for p in tree)
    t0 = time.monotonic()
    await executor.kill_task(ctx, "user marked the task failed")
    assert time.monotonic() - t0 < 2  # SIGTERM was enough; no grace period wait
    gone = [not psutil.pid_exists(p) or psutil.Process(p).status() == psutil.STATUS_ZOMBIE for p in tree]
    assert all(gone), tree
    final = await executor.check_task_status(ctx, template)
    assert final.phase is TaskPhase.PERMANENT_FAILURE
    assert final.err is not None and final.err.code == "Killed" and "user marked" in final.err.message
    await executor.kill_task(ctx, "again")  # idempotent


async def test_kill_escalates_to_sigkill_after_the_grace_period(
    executor: LocalExecutor, store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    ctx = make_ctx()
    script = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(300)"
    template = python_template(script)
    status = await start(executor, store, ctx, template)
    stdout, _ = executor.log_paths(ctx)
    while "ready" not in Path(stdout).read_text():
        await asyncio.sleep(0.05)
    t0 = time.monotonic()
    await executor.kill_task(ctx, "stop")
    assert 1.5 < time.monotonic() - t0 < 6
    assert (
        not psutil.pid_exists(status.state["pid"])
        or psutil.Process(status.state["pid"]).status() == psutil.STATUS_ZOMBIE
    )  # type: ignore[index]


async def test_check_of_unstarted_execution_is_undefined(
    executor: LocalExecutor, make_ctx: Callable[..., TaskContext]
) -> None:
    status = await executor.check_task_status(make_ctx(), DOUBLE_TEMPLATE)
    assert status.phase is TaskPhase.UNDEFINED
    assert status.err is not None and "no local execution named" in status.err.message


async def test_not_ready_at_the_concurrency_limit(
    tmp_path: Path, store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    executor = LocalExecutor(state_root=str(tmp_path / "state"), max_concurrent=2)
    await executor.initialize(ExecutorInitializationParameters(data_store=store))
    template = python_template("import time; time.sleep(1)")
    ctxs = [make_ctx(node=f"n{i}") for i in range(3)]
    first = [await start(executor, store, c, template) for c in ctxs]
    assert [s.phase for s in first] == [TaskPhase.RUNNING, TaskPhase.RUNNING, TaskPhase.NOT_READY]
    assert first[2].err is not None and first[2].err.code == "ConcurrencyLimit"
    # A second process's executor (same state root) sees the same limit.
    other = LocalExecutor(state_root=str(tmp_path / "state"), max_concurrent=2)
    await other.initialize(ExecutorInitializationParameters(data_store=store))
    assert (await other.start_task(ctxs[2], template, literals_pb2.LiteralMap())).phase is TaskPhase.NOT_READY
    await wait_final(executor, ctxs[0], template)
    await wait_final(executor, ctxs[1], template)
    assert (
        await executor.start_task(ctxs[2], template, literals_pb2.LiteralMap())
    ).phase is TaskPhase.RUNNING
    assert (await wait_final(executor, ctxs[2], template)).phase is TaskPhase.SUCCEEDED


async def test_externally_killed_process_is_retryable(
    executor: LocalExecutor, store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    ctx = make_ctx()
    template = python_template("import time; time.sleep(300)")
    status = await start(executor, store, ctx, template)
    os.kill(status.state["pid"], signal.SIGKILL)  # type: ignore[index]
    final = await wait_final(executor, ctx, template)
    assert final.phase is TaskPhase.RETRYABLE_FAILURE
    assert final.err is not None and final.err.code == "Signal9" and "SIGKILL" in final.err.message


async def test_lost_supervisor_is_detected(
    executor: LocalExecutor, store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    ctx = make_ctx()
    template = python_template("import time; time.sleep(1)")
    await start(executor, store, ctx, template)
    pid = json.loads(Path(executor.state_dir(ctx), "pid.json").read_text())
    os.kill(pid["supervisor_pid"], signal.SIGKILL)
    assert (await executor.check_task_status(ctx, template)).phase is TaskPhase.RUNNING  # task still runs
    final = await wait_final(executor, ctx, template)
    assert final.phase is TaskPhase.RETRYABLE_FAILURE
    assert final.err is not None and final.err.code == "ProcessLost"


async def test_environment_is_template_plus_overrides_without_the_starters_secrets(
    executor: LocalExecutor,
    store: DataStore,
    make_ctx: Callable[..., TaskContext],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dataclasses

    from executors import TaskOverrides

    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql://secret")
    ctx = dataclasses.replace(make_ctx(), overrides=TaskOverrides(environment={"B": "override", "C": "3"}))
    script = "import json, os, sys; print(json.dumps(dict(os.environ)))"
    template = python_template(script, env={"A": "1", "B": "template"})
    await start(executor, store, ctx, template)
    assert (await wait_final(executor, ctx, template)).phase is TaskPhase.SUCCEEDED
    env = json.loads(Path(executor.log_paths(ctx)[0]).read_text())
    assert (env["A"], env["B"], env["C"]) == ("1", "override", "3")
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in env
    assert env["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable)
    assert env["FLYTE_INTERNAL_TASK_NAME"] == "tests.double"
