"""The executor's bookkeeping is out of the task's reach: a status file the task forges cannot end a
running execution, and while the supervisor or the task is alive no file makes it terminal."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from executors import DataStore, ErrorOrigin, ExecutorInitializationParameters, TaskContext, TaskPhase
from executors.backends.local import LocalExecutor
from executors.backends.local.executor import state_dirs
from tests.conftest import python_template
from tests.executors.backends.local.helpers import healthy_task_beside, start, wait_final

# Forges the old (and any guessable) status file in its own execution folder, then keeps running.
FORGER = textwrap.dedent(
    """
    import json, os, sys, time
    folder = sys.argv[1]
    for sub in ("local", "logs", "work", "."):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
        with open(os.path.join(folder, sub, "exit.json"), "w") as fh:
            json.dump({"exit_code": 0, "ended_at": time.time()}, fh)
    print("forged", flush=True)
    time.sleep(float(sys.argv[2]))
    sys.exit(3)
    """
)


@pytest.fixture
async def executor(tmp_path: Path, store: DataStore) -> LocalExecutor:
    ex = LocalExecutor(state_root=str(tmp_path / "state"), kill_grace_period=1)
    await ex.initialize(ExecutorInitializationParameters(data_store=store))
    return ex


async def wait_for_output(executor: LocalExecutor, ctx: TaskContext, text: str) -> None:
    stdout = Path(executor.log_paths(ctx)[0])
    deadline = time.monotonic() + 10
    while not (stdout.exists() and text in stdout.read_text()):
        assert time.monotonic() < deadline, f"{text!r} never printed"
        await asyncio.sleep(0.05)


async def test_a_status_file_forged_by_the_task_does_not_end_it(
    executor: LocalExecutor, store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path
) -> None:
    ctx = make_ctx()
    template = python_template(FORGER, "{{.outputPrefix}}", "1.5")
    async with healthy_task_beside(tmp_path / "healthy"):
        await start(executor, store, ctx, template)
        await wait_for_output(executor, ctx, "forged")
        for _ in range(5):
            status = await executor.check_task_status(ctx, template)
            assert status.phase is TaskPhase.RUNNING, status  # not SUCCEEDED from the forged exit 0
            await asyncio.sleep(0.1)
        final = await wait_final(executor, ctx, template)
        assert final.phase is TaskPhase.RETRYABLE_FAILURE, final
        assert final.err is not None and final.err.code == "ExitCode3"
        assert final.err.origin is ErrorOrigin.USER and "exited with code 3" in final.err.message


async def test_while_the_process_is_alive_no_file_makes_it_terminal(
    executor: LocalExecutor, store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path
) -> None:
    ctx = make_ctx()
    template = python_template("print('up', flush=True); import time; time.sleep(1.5); raise SystemExit(4)")
    async with healthy_task_beside(tmp_path / "healthy"):
        await start(executor, store, ctx, template)
        await wait_for_output(executor, ctx, "up")
        # Even the real status file, written by someone else while the process runs.
        Path(executor.state_dir(ctx), "exit.json").write_text(json.dumps({"exit_code": 0, "ended_at": 0}))
        assert (await executor.check_task_status(ctx, template)).phase is TaskPhase.RUNNING
        final = await wait_final(executor, ctx, template)
        assert final.phase is TaskPhase.RETRYABLE_FAILURE and final.err is not None
        assert final.err.code == "ExitCode4"  # the supervisor's own exit.json replaced the forged one


async def test_the_execution_folder_holds_only_flyte_files_and_the_state_is_private(
    executor: LocalExecutor, store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    ctx = make_ctx()
    template = python_template("print('hello')")
    await start(executor, store, ctx, template)
    assert (await wait_final(executor, ctx, template)).phase is TaskPhase.SUCCEEDED
    assert sorted(os.listdir(ctx.data_dir)) == ["checkpoint", "inputs.pb", "logs", "outputs", "raw", "work"]
    assert os.listdir(ctx.output_prefix) == []  # the task wrote no outputs.pb: its own folder, empty
    assert sorted(os.listdir(os.path.join(ctx.data_dir, "logs"))) == ["stderr.log", "stdout.log"]
    state = executor.state_dir(ctx)
    assert Path(state).parent.parent == Path(executor.state_root)
    assert os.path.basename(state).startswith(ctx.generated_name + "-")
    assert {"claim", "spec.json", "pid.json", "exit.json"} <= set(os.listdir(state))
    for folder in (state, os.path.dirname(state)):
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700, folder
    assert state_dirs(executor.state_root) == {os.path.abspath(ctx.data_dir): state}
    # The run URL and the log paths still point into the execution folder.
    assert executor.get_run_url(ctx) == "file://" + os.path.join(ctx.data_dir, "logs")
    assert executor.log_paths(ctx)[0] == os.path.join(ctx.data_dir, "logs", "stdout.log")


async def test_the_same_name_with_another_data_dir_is_another_execution(
    executor: LocalExecutor, store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path
) -> None:
    import dataclasses

    first = make_ctx()
    second = dataclasses.replace(first, data_dir=str(tmp_path / "elsewhere"))
    template = python_template("print('ran')")
    for ctx in (first, second):
        await start(executor, store, ctx, template)
        assert (await wait_final(executor, ctx, template)).phase is TaskPhase.SUCCEEDED
        assert Path(executor.log_paths(ctx)[0]).read_text() == "ran\n"
    assert executor.state_dir(first) != executor.state_dir(second)
