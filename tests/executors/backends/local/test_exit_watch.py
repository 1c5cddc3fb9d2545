"""Exit watches (``exit_watch.py``): while a watched process of a running execution lives, its checks
are answered from memory (no thread, no file); its end wakes the owner at once; a recycled pid is
never watched; no descriptor is left behind; a check from another loop still reads the disk."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flyteidl.core import literals_pb2

from executors import (
    DataStore,
    ExecutionDriver,
    ExecutorInitializationParameters,
    PollPolicy,
    TaskContext,
    TaskPhase,
    TaskStatus,
)
from executors.backends.local import LocalExecutor, exit_watch
from executors.backends.local import executor as local_executor
from executors.backends.local.exit_watch import open_pidfds
from executors.backends.local.processes import create_time
from tests.conftest import python_template
from tests.executors.backends.local.helpers import start, wait_final

pytestmark = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="no pidfd on this OS")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def disk_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every status read from disk, by state folder."""
    reads: list[str] = []
    real = local_executor.status_from_disk

    def counting(state_dir: str, *args: Any, **kwargs: Any) -> Any:
        reads.append(state_dir)
        return real(state_dir, *args, **kwargs)

    monkeypatch.setattr(local_executor, "status_from_disk", counting)
    return reads


async def local(tmp_path: Path, store: DataStore, **params: Any) -> LocalExecutor:
    ex = LocalExecutor(state_root=str(tmp_path / "state"), kill_grace_period=1)
    await ex.initialize(ExecutorInitializationParameters(data_store=store, **params))
    return ex


async def test_checks_of_a_watched_execution_read_nothing_from_disk(
    store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path, disk_reads: list[str]
) -> None:
    executor = await local(tmp_path, store)
    template = python_template("import time; time.sleep(30)")
    ctx = make_ctx()
    assert (await start(executor, store, ctx, template)).phase is TaskPhase.RUNNING
    statuses = [await executor.check_task_status(ctx, template) for _ in range(50)]
    assert {s.phase for s in statuses} == {TaskPhase.RUNNING}
    assert statuses[0].state == {"pid": statuses[0].state["pid"]} and statuses[0].state["pid"] > 0
    assert disk_reads == [], f"{len(disk_reads)} disk reads for 50 checks of a watched execution"
    await executor.kill_task(ctx, "test over")
    final = await wait_final(executor, ctx, template)
    assert final.phase is TaskPhase.PERMANENT_FAILURE and final.err is not None and final.err.code == "Killed"
    assert len(executor._exits) == 0
    await executor.close()


async def test_the_end_wakes_the_driver_at_once_instead_of_after_its_poll_interval(
    store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path
) -> None:
    woken: list[str] = []
    executor = await local(tmp_path, store, enqueue_owner=woken.append)
    ctx = dataclasses.replace(make_ctx(), owner_id="dag/run/task")
    template = python_template("import time; time.sleep(0.5)")
    inputs = literals_pb2.LiteralMap()
    await store.write_protobuf(ctx.inputs_file, inputs)

    async def load() -> literals_pb2.LiteralMap:
        return inputs

    # A 20 s poll interval: without a wake-up the end would be seen 20 s after the start.
    policy = PollPolicy(interval=20.0, jitter=0.0, call_timeout=30.0)
    driver = ExecutionDriver(executor, template, ctx, inputs_loader=load, policy=policy)
    t0 = time.monotonic()
    final = await asyncio.wait_for(driver.run(), 10)
    took = time.monotonic() - t0
    assert final.phase is TaskPhase.SUCCEEDED, final
    assert took < 5.0, f"the end was seen {took:.1f}s after the start of a 0.5 s task"
    assert woken == ["dag/run/task"]
    await executor.close()


async def test_a_watched_execution_is_checked_rarely_and_its_end_is_still_seen_at_once(
    store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path
) -> None:
    executor = await local(tmp_path, store)
    ctx = dataclasses.replace(make_ctx(), owner_id="dag/run/task")
    template = python_template("import time; time.sleep(2)")
    inputs = literals_pb2.LiteralMap()
    calls: list[TaskStatus] = []
    real_start, real_check = executor.start_task, executor.check_task_status

    async def start_task(*args: Any) -> TaskStatus:
        calls.append(await real_start(*args))
        return calls[-1]

    async def check_task_status(*args: Any) -> TaskStatus:
        calls.append(await real_check(*args))
        return calls[-1]

    executor.start_task, executor.check_task_status = start_task, check_task_status  # type: ignore[method-assign]

    async def load() -> literals_pb2.LiteralMap:
        return inputs

    # Every 0.1 s unwatched: about 20 checks over the 2 s; watched, the next check is 30 s away.
    policy = PollPolicy(interval=0.1, watched_interval=30.0, jitter=0.0, call_timeout=30.0)
    driver = ExecutionDriver(executor, template, ctx, inputs_loader=load, policy=policy)
    t0 = time.monotonic()
    final = await asyncio.wait_for(driver.run(), 10)
    took = time.monotonic() - t0
    assert final.phase is TaskPhase.SUCCEEDED, final
    assert calls[0].phase is TaskPhase.RUNNING and calls[0].watched, "the start did not say it watches"
    assert len(calls) <= 3, f"{len(calls)} calls for a watched 2 s execution: {[str(c) for c in calls]}"
    assert took < 4.0, f"the end was seen {took:.1f}s after the start of a 2 s task"
    assert not final.watched
    await executor.close()


async def test_statuses_say_watched_only_while_a_watch_stands(
    store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = python_template("import time; time.sleep(30)")
    watching = await local(tmp_path, store)
    ctx = make_ctx()
    assert (await start(watching, store, ctx, template)).watched
    assert (await watching.check_task_status(ctx, template)).watched  # from memory
    monkeypatch.setattr(exit_watch, "TRUST_FOR", -1.0)
    assert (await watching.check_task_status(ctx, template)).watched  # read from disk, renewed
    blind = await local(tmp_path, store)
    blind._exits.max_watches = 0  # no room: every check reads the disk and promises nothing
    other = make_ctx()
    assert not (await start(blind, store, other, template)).watched
    assert not (await blind.check_task_status(other, template)).watched
    for executor, each in ((watching, ctx), (blind, other)):
        await executor.kill_task(each, "test over")
        assert not (await wait_final(executor, each, template)).watched
        await executor.close()


async def test_a_watched_reading_is_trusted_only_for_a_while_and_renewed_without_new_descriptors(
    store: DataStore,
    make_ctx: Callable[..., TaskContext],
    tmp_path: Path,
    disk_reads: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    executor = await local(tmp_path, store)
    template = python_template("import time; time.sleep(30)")
    ctx = make_ctx()
    assert (await start(executor, store, ctx, template)).phase is TaskPhase.RUNNING
    fds = open_fds()
    monkeypatch.setattr(exit_watch, "TRUST_FOR", -1.0)  # every answer from memory is stale
    for _ in range(5):
        assert (await executor.check_task_status(ctx, template)).phase is TaskPhase.RUNNING
    assert len(disk_reads) == 5
    assert open_fds() == fds, "a renewed reading opened descriptors again"
    assert len(executor._exits) == 1
    await executor.kill_task(ctx, "test over")
    await wait_final(executor, ctx, template)
    await executor.close()


async def test_no_descriptor_outlives_the_execution_or_the_executor(
    store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path
) -> None:
    executor = await local(tmp_path, store)
    before = open_fds()
    short = make_ctx(node="short")
    long = make_ctx(node="long")
    assert (await start(executor, store, short, python_template("pass"))).phase is TaskPhase.RUNNING
    assert (await start(executor, store, long, python_template("import time; time.sleep(30)"))).phase is (
        TaskPhase.RUNNING
    )
    assert (await wait_final(executor, short, python_template("pass"))).phase is TaskPhase.SUCCEEDED
    assert len(executor._exits) == 1
    await executor.close()  # the long one still runs: closing drops its watch
    assert len(executor._exits) == 0
    assert open_fds() == before
    other = LocalExecutor(state_root=executor.state_root, kill_grace_period=1)
    await other.kill_task(long, "test over")


async def test_without_room_for_watches_every_check_reads_the_disk(
    store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path, disk_reads: list[str]
) -> None:
    executor = await local(tmp_path, store)
    executor._exits.max_watches = 0
    template = python_template("import time; time.sleep(30)")
    ctx = make_ctx()
    assert (await start(executor, store, ctx, template)).phase is TaskPhase.RUNNING
    for _ in range(3):
        assert (await executor.check_task_status(ctx, template)).phase is TaskPhase.RUNNING
    assert len(disk_reads) == 3
    await executor.kill_task(ctx, "test over")
    await wait_final(executor, ctx, template)
    await executor.close()


def test_a_pid_recorded_with_another_create_time_is_not_watched(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    me = os.getpid()
    (state_dir / "pid.json").write_text(json.dumps({"pid": me, "create_time": 1.0}))
    assert open_pidfds(str(state_dir)) is None, "a recycled pid (another create time) was watched"
    (state_dir / "pid.json").write_text(json.dumps({"pid": me, "create_time": create_time(me)}))
    fds = open_pidfds(str(state_dir))
    assert fds is not None and len(fds) == 1
    exit_watch.close_fds(fds)
    (state_dir / "pid.json").write_text(json.dumps({"pid": 2**22 + 12345, "create_time": 1.0}))
    assert open_pidfds(str(state_dir)) is None  # no such process


def test_a_check_from_a_new_loop_reads_the_disk_and_watches_there(
    store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path, disk_reads: list[str]
) -> None:
    template = python_template("import time; time.sleep(30)")
    ctx = make_ctx()

    async def first() -> LocalExecutor:
        executor = await local(tmp_path, store)
        assert (await start(executor, store, ctx, template)).phase is TaskPhase.RUNNING
        return executor

    executor = asyncio.run(first())  # its loop is closed now, with a watch registered on it
    fds = open_fds()

    async def second() -> list[TaskPhase]:
        return [(await executor.check_task_status(ctx, template)).phase for _ in range(3)]

    assert asyncio.run(second()) == [TaskPhase.RUNNING] * 3
    assert len(disk_reads) == 1, "the first check on the new loop reads the disk, the next ones do not"
    assert open_fds() == fds, "the closed loop's descriptors were not given back"

    async def over() -> None:
        await executor.kill_task(ctx, "test over")
        await wait_final(executor, ctx, template)
        await executor.close()

    asyncio.run(over())
