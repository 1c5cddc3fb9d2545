"""Processes a task leaves behind outside its process group (``setsid cmd &``, a double fork into
a new session) are stopped when the task exits and when it is killed: the supervisor is a child
subreaper, so they stay in its tree. Each test counts the survivors by a unique marker in argv."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from executors import DataStore, ExecutorInitializationParameters, TaskContext, TaskPhase
from executors.backends.local import LocalExecutor
from tests.conftest import make_template, python_template
from tests.executors.backends.local.helpers import (
    healthy_task_beside,
    kill_marked,
    new_marker,
    processes_with,
    start,
    wait_final,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="child subreaper: Linux")

SLEEPER = "import signal, sys, time\n{ignore}time.sleep(600)"

# A double fork into a new session (what a daemon does); the task itself then ends at once.
DOUBLE_FORK = textwrap.dedent(
    """
    import os, sys, time
    marker, then = sys.argv[1], sys.argv[2]
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execvp(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)", marker])
        os._exit(0)
    os.wait()
    print("forked", flush=True)
    time.sleep(float(then))
    """
)


@pytest.fixture
def marker() -> Iterator[str]:
    value = new_marker()
    yield value
    kill_marked(value)


@pytest.fixture
async def executor(tmp_path: Path, store: DataStore) -> LocalExecutor:
    ex = LocalExecutor(state_root=str(tmp_path / "state"), kill_grace_period=1)
    await ex.initialize(ExecutorInitializationParameters(data_store=store))
    return ex


def setsid_shell(marker: str, then: str = "exit 0", ignore_term: bool = False) -> list[str]:
    ignore = "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" if ignore_term else ""
    sleeper = SLEEPER.format(ignore=ignore)
    return ["sh", "-c", f'setsid "$0" -c "$1" {marker} & sleep 0.3; {then}', sys.executable, sleeper]


async def wait_for_marker(marker: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not processes_with(marker):
        assert time.monotonic() < deadline, f"the task never started its {marker} process"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("how", ["setsid", "double fork"])
async def test_processes_that_escaped_the_group_are_stopped_when_the_task_exits(
    how: str,
    marker: str,
    executor: LocalExecutor,
    store: DataStore,
    make_ctx: Callable[..., TaskContext],
    tmp_path: Path,
) -> None:
    ctx = make_ctx()
    if how == "setsid":
        template = make_template(setsid_shell(marker))
    else:
        template = python_template(DOUBLE_FORK, marker, "0")
    async with healthy_task_beside(tmp_path / "healthy"):
        assert (await start(executor, store, ctx, template)).phase is TaskPhase.RUNNING
        final = await wait_final(executor, ctx, template)
        assert final.phase is TaskPhase.SUCCEEDED, final
        assert processes_with(marker) == []  # 0 escaped processes left


async def test_an_escaped_process_that_ignores_sigterm_is_killed_after_the_grace_period(
    marker: str,
    executor: LocalExecutor,
    store: DataStore,
    make_ctx: Callable[..., TaskContext],
    tmp_path: Path,
) -> None:
    ctx = make_ctx()
    template = make_template(setsid_shell(marker, ignore_term=True))
    async with healthy_task_beside(tmp_path / "healthy"):
        await start(executor, store, ctx, template)
        t0 = time.monotonic()
        final = await wait_final(executor, ctx, template)
        assert final.phase is TaskPhase.SUCCEEDED, final
        assert time.monotonic() - t0 >= 0.9  # SIGTERM was ignored: SIGKILL after the 1 s grace period
        assert processes_with(marker) == []


@pytest.mark.parametrize("how", ["setsid", "double fork"])
async def test_kill_stops_processes_that_escaped_the_group(
    how: str,
    marker: str,
    executor: LocalExecutor,
    store: DataStore,
    make_ctx: Callable[..., TaskContext],
    tmp_path: Path,
) -> None:
    ctx = make_ctx()
    if how == "setsid":
        template = make_template(setsid_shell(marker, then="sleep 300"))
    else:
        template = python_template(DOUBLE_FORK, marker, "300")
    async with healthy_task_beside(tmp_path / "healthy"):
        await start(executor, store, ctx, template)
        await wait_for_marker(marker)
        await asyncio.sleep(0.4)  # the double fork's middle process has exited: the sleeper is an orphan
        t0 = time.monotonic()
        await executor.kill_task(ctx, "user marked the task failed")
        assert time.monotonic() - t0 < 5
        assert processes_with(marker) == []  # gone when kill_task returns
        final = await executor.check_task_status(ctx, template)
        assert final.phase is TaskPhase.PERMANENT_FAILURE
        assert final.err is not None and final.err.code == "Killed"
        assert "user marked the task failed" in final.err.message
