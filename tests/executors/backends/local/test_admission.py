"""Admission under ``max_concurrent``: a NOT_READY waiter is started as soon as a slot frees (the
executor wakes it through EnqueueOwner instead of letting it sleep its backoff), admission never
blocks (a busy running-list lock answers NOT_READY at once) and counting the running executions
costs no process-table scan per start."""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from flyteidl.core import literals_pb2

from executors import (
    DataStore,
    ExecutionDriver,
    ExecutorInitializationParameters,
    PollPolicy,
    TaskContext,
    TaskPhase,
)
from executors.backends.local import LocalExecutor
from executors.backends.local import admission as admission_module
from executors.backends.local import waiters as waiters_module
from harness.loop_gaps import loop_monitor
from tests.conftest import python_template
from tests.executors.backends.local.helpers import start, wait_final

# Appends "start <t>" and "end <t>" (wall clock) to the file in argv[1]; sleeps argv[2] seconds.
TIMED = (
    "import sys, time\n"
    "open(sys.argv[1], 'a').write(f'start {time.time()}\\n')\n"
    "time.sleep(float(sys.argv[2]))\n"
    "open(sys.argv[1], 'a').write(f'end {time.time()}\\n')\n"
)

# Long backoff on purpose: without a wake-up a waiter would sleep 1, 2, 4, ... seconds.
SLOW_BACKOFF = PollPolicy(interval=1.0, max_backoff=60.0, jitter=0.0, unknown_limit=5, call_timeout=30.0)


async def limited(tmp_path: Path, store: DataStore, n: int, **params: object) -> LocalExecutor:
    ex = LocalExecutor(state_root=str(tmp_path / "state"), max_concurrent=n)
    await ex.initialize(ExecutorInitializationParameters(data_store=store, **params))  # type: ignore[arg-type]
    return ex


async def fill(
    executor: LocalExecutor, store: DataStore, make_ctx: Callable[..., TaskContext], template: Any, n: int
) -> list[TaskContext]:
    """Start ``n`` executions (each holds a slot) and return their contexts."""
    running = [make_ctx(node=f"r{i}") for i in range(n)]
    for ctx in running:
        assert (await start(executor, store, ctx, template)).phase is TaskPhase.RUNNING
    return running


def counting(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[object]:
    """Replace ``owner.name`` with a wrapper that records each call's first argument (or None)."""
    calls: list[object] = []
    real = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[0] if args else None)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return calls


async def test_a_waiter_starts_within_a_second_of_a_slot_freeing(
    store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path
) -> None:
    executor = await limited(tmp_path, store, 2)
    times = tmp_path / "times"
    template = python_template(TIMED, str(times), "0.5")
    inputs = literals_pb2.LiteralMap()

    async def run(i: int) -> TaskPhase:
        ctx = make_ctx(node=f"t{i}")
        await store.write_protobuf(ctx.inputs_file, inputs)

        async def load() -> literals_pb2.LiteralMap:
            return inputs

        driver = ExecutionDriver(executor, template, ctx, inputs_loader=load, policy=SLOW_BACKOFF)
        return (await asyncio.wait_for(driver.run(), 60)).phase

    assert await asyncio.gather(*(run(i) for i in range(6))) == [TaskPhase.SUCCEEDED] * 6
    events = [line.split() for line in times.read_text().splitlines()]
    starts = sorted(float(t) for kind, t in events if kind == "start")
    ends = sorted(float(t) for kind, t in events if kind == "end")
    assert len(starts) == len(ends) == 6
    for i in range(2, 6):
        assert starts[i] >= ends[i - 2] - 0.05, "more than max_concurrent ran at once"
        assert starts[i] - ends[i - 2] < 1.0, (
            f"start {i} came {starts[i] - ends[i - 2]:.2f}s after a slot freed"
        )


async def test_the_enqueue_owner_callback_is_called_for_a_waiter_when_a_slot_frees(
    store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path
) -> None:
    calls: list[tuple[float, str]] = []
    executor = await limited(
        tmp_path, store, 1, enqueue_owner=lambda owner: calls.append((time.monotonic(), owner))
    )
    import dataclasses

    template = python_template("import time; time.sleep(0.5)")
    first = dataclasses.replace(make_ctx(node="first"), owner_id="dag/run/first")
    waiter = dataclasses.replace(make_ctx(node="waiter"), owner_id="dag/run/waiter")
    assert (await start(executor, store, first, template)).phase is TaskPhase.RUNNING
    assert (await start(executor, store, waiter, template)).phase is TaskPhase.NOT_READY
    deadline = time.monotonic() + 5
    while not any(owner == "dag/run/waiter" for _, owner in calls):
        assert time.monotonic() < deadline, f"never woken: {calls}"
        await asyncio.sleep(0.05)  # nobody checks the first task: the executor notices by itself
    assert (await executor.start_task(waiter, template, literals_pb2.LiteralMap())).phase is TaskPhase.RUNNING
    assert (await wait_final(executor, waiter, template)).phase is TaskPhase.SUCCEEDED
    await executor.close()


async def test_a_busy_running_list_answers_not_ready_without_blocking(
    store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path
) -> None:
    executor = await limited(tmp_path, store, 2)
    template = python_template("pass")
    ctx = make_ctx()
    fd = os.open(os.path.join(executor.state_root, "running.lock"), os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another process is admitting (or hung while doing so)
    try:
        async with loop_monitor() as gaps:
            t0 = time.monotonic()
            status = await asyncio.wait_for(start(executor, store, ctx, template), 3)
            took = time.monotonic() - t0
        assert status.phase is TaskPhase.NOT_READY, status
        assert status.err is not None and status.err.code == "AdmissionBusy"
        assert "running.lock" in status.err.message
        assert took < 1, took
        gaps.assert_below(0.2)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    assert (await start(executor, store, ctx, template)).phase is TaskPhase.RUNNING
    assert (await wait_final(executor, ctx, template)).phase is TaskPhase.SUCCEEDED
    await executor.close()


async def test_counting_the_running_executions_does_not_scan_processes_per_start(
    store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    executor = await limited(tmp_path, store, 3)
    template = python_template("import time; time.sleep(5)")
    running = await fill(executor, store, make_ctx, template, 3)
    made: list[int] = []
    real = psutil.Process

    class Counting(real):  # type: ignore[misc, valid-type]
        def __init__(self, pid: int | None = None) -> None:
            made.append(pid or 0)
            super().__init__(pid)

    monkeypatch.setattr(psutil, "Process", Counting)
    for i in range(20):
        status = await executor.start_task(make_ctx(node=f"w{i}"), template, literals_pb2.LiteralMap())
        assert status.phase is TaskPhase.NOT_READY
    assert len(made) <= 6, f"{len(made)} psutil.Process for 20 starts against 3 running entries"
    monkeypatch.undo()
    for ctx in running:
        await executor.kill_task(ctx, "test over")
    await executor.close()


async def test_a_count_that_found_every_slot_held_answers_the_next_starts_without_the_lock(
    store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    executor = await limited(tmp_path, store, 2)
    template = python_template("import time; time.sleep(30)")
    running = await fill(executor, store, make_ctx, template, 2)
    locks = counting(monkeypatch, executor._admission, "_lock")
    monkeypatch.setattr(admission_module, "FULL_FOR", 60.0)  # no count of the waiters' watch goes stale
    answers = [
        await executor.start_task(make_ctx(node=f"w{i}"), template, literals_pb2.LiteralMap())
        for i in range(30)
    ]
    assert {a.phase for a in answers} == {TaskPhase.NOT_READY}
    assert {a.err.code for a in answers if a.err} == {"ConcurrencyLimit"}
    assert len(locks) <= 1, f"{len(locks)} lock acquisitions (and counts) for 30 starts against a full list"
    # A slot that frees here is seen by the very next start, not FULL_FOR later.
    await executor.kill_task(running[0], "make room")
    assert (await wait_final(executor, running[0], template)).phase is TaskPhase.PERMANENT_FAILURE
    freed = make_ctx(node="after-a-kill")
    assert (await start(executor, store, freed, template)).phase is TaskPhase.RUNNING
    for ctx in (running[1], freed):
        await executor.kill_task(ctx, "test over")
    await executor.close()


@pytest.mark.parametrize("watched", [True, False])
async def test_while_every_running_execution_is_watched_a_full_count_holds_longer_and_is_looked_at_less(
    store: DataStore,
    make_ctx: Callable[..., TaskContext],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    watched: bool,
) -> None:
    # Its exit watch clears the count the moment a watched execution ends, so a count that found
    # every slot held by watched executions stays true for WATCHED_FULL_FOR, not FULL_FOR.
    executor = await limited(tmp_path, store, 2)
    if not watched:
        executor._exits.max_watches = 0
    template = python_template("import time; time.sleep(30)")
    running = await fill(executor, store, make_ctx, template, 2)
    assert len(executor._exits) == (2 if watched else 0)
    monkeypatch.setattr(admission_module, "FULL_FOR", 0.0)  # an unwatched count is stale at once
    monkeypatch.setattr(waiters_module, "SLOT_POLL", (0.05, 0.05))
    counts = counting(monkeypatch, executor._admission, "count_running")
    locks = counting(monkeypatch, executor._admission, "_lock")
    waiter = make_ctx(node="waiter")
    for i in range(10):
        again = await executor.start_task(make_ctx(node=f"w{i}"), template, literals_pb2.LiteralMap())
        assert again.phase is TaskPhase.NOT_READY
    await asyncio.sleep(1.0)  # the waiters' watch of the running list looks meanwhile
    if watched:
        assert len(locks) <= 1, f"{len(locks)} locks for 10 starts against watched, full slots"
        assert len(counts) <= 2, f"{len(counts)} counts in 1 s with every running execution watched"
    else:
        assert len(locks) >= 9 and len(counts) >= 10  # the check above can fail
    # A watched end still frees its slot at once.
    await executor.kill_task(running[0], "make room")
    assert (await wait_final(executor, running[0], template)).phase is TaskPhase.PERMANENT_FAILURE
    assert (await start(executor, store, waiter, template)).phase is TaskPhase.RUNNING
    for ctx in (running[1], waiter):
        await executor.kill_task(ctx, "test over")
    await executor.close()


async def test_a_slot_freed_by_another_process_is_taken_within_a_second(
    store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path
) -> None:
    executor = await limited(tmp_path, store, 1)
    other_process = await limited(tmp_path, store, 1)  # same state root, its own memory
    template = python_template("import time; time.sleep(30)")
    first, waiter = make_ctx(node="first"), make_ctx(node="waiter")
    assert (await start(executor, store, first, template)).phase is TaskPhase.RUNNING
    assert (await start(executor, store, waiter, template)).phase is TaskPhase.NOT_READY
    await other_process.kill_task(first, "freed elsewhere")
    t0 = time.monotonic()
    while (
        await executor.start_task(waiter, template, literals_pb2.LiteralMap())
    ).phase is TaskPhase.NOT_READY:
        assert time.monotonic() - t0 < 1.0 + admission_module.FULL_FOR, "the freed slot was never seen"
        await asyncio.sleep(0.05)
    await executor.kill_task(waiter, "test over")
    await executor.close()
    await other_process.close()


async def test_a_waiter_asking_again_while_every_slot_is_held_is_answered_from_memory(
    store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    executor = await limited(tmp_path, store, 1)
    template = python_template("import time; time.sleep(30)")
    first, waiter = make_ctx(node="first"), make_ctx(node="waiter")
    assert (await start(executor, store, first, template)).phase is TaskPhase.RUNNING
    launches = counting(monkeypatch, executor._launcher, "launch")
    monkeypatch.setattr(admission_module, "FULL_FOR", 60.0)
    inputs = literals_pb2.LiteralMap()
    assert (await start(executor, store, waiter, template)).phase is TaskPhase.NOT_READY
    assert len(launches) == 1  # the first answer: admission looked at its claim and the list
    for _ in range(20):
        again = await executor.start_task(waiter, template, inputs)
        assert again.phase is TaskPhase.NOT_READY and again.err is not None
        assert again.err.code == "ConcurrencyLimit"
    assert len(launches) == 1, f"{len(launches) - 1} admissions for 20 starts that asked again"
    # After RECHECK_EVERY, admission looks again (another process may have started it meanwhile).
    monkeypatch.setattr(waiters_module, "RECHECK_EVERY", 0.0)
    assert (await executor.start_task(waiter, template, inputs)).phase is TaskPhase.NOT_READY
    assert len(launches) == 2
    # A slot that frees wakes it: the next start is admitted in full, and launches.
    monkeypatch.setattr(waiters_module, "RECHECK_EVERY", 300.0)
    await executor.kill_task(first, "make room")
    assert (await executor.start_task(waiter, template, inputs)).phase is TaskPhase.RUNNING
    await executor.kill_task(waiter, "test over")
    await executor.close()
