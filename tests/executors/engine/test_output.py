"""Output copied while an execution runs (the driver's own cadence, also for a watched execution),
once more at its end, each line once across processes (the cursor kept in the execution's
folder), and never at the task's expense."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from flyteidl.core import literals_pb2

from executors import (
    DataStore,
    ExecutorInitializationParameters,
    PollPolicy,
    TaskContext,
    TaskPhase,
)
from executors.backends.local import LocalExecutor
from executors.core.output import OutputChunk, OutputLines
from executors.engine import submission
from executors.engine.driver import DriverSnapshot
from executors.engine.output import OutputCopier
from tests.conftest import python_template

# Prints a line, waits for a file, prints a last line without a newline.
GATED = textwrap.dedent(
    """
    import os, sys, time
    print("first line", flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    while not os.path.exists(sys.argv[1]):
        time.sleep(0.02)
    sys.stdout.write("last line, no newline")
    """
)


@pytest.fixture
async def local(tmp_path: Path, store: DataStore) -> LocalExecutor:
    ex = LocalExecutor(state_root=str(tmp_path / "state"), kill_grace_period=2)
    await ex.initialize(ExecutorInitializationParameters(data_store=store))
    return ex


class Lines:
    """A sink that remembers what it got."""

    def __init__(self) -> None:
        self.got: list[str] = []

    def __call__(self, pieces: Sequence[OutputLines]) -> None:
        self.got += [f"{piece.stream}:{line}" for piece in pieces for line in piece.lines()]


async def wait_for(condition: Callable[[], bool], timeout: float = 20) -> None:
    loop = asyncio.get_running_loop()
    until = loop.time() + timeout
    while not condition():
        assert loop.time() < until, "timed out"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize(
    "policy",
    [
        # Checked every 30 s (watched, 20 s poll): only the output's own cadence shows the lines.
        PollPolicy(interval=20, watched_interval=30, output_interval=0.1, call_timeout=30),
        # Checked every 0.05 s, copied every 0.3 s: the copy is due across many short waits.
        PollPolicy(interval=0.05, watched_interval=0.05, output_interval=0.3, jitter=0, call_timeout=30),
    ],
    ids=["checks-rarer-than-copies", "checks-more-often-than-copies"],
)
async def test_output_reaches_the_sink_while_the_execution_runs_and_the_rest_at_its_end(
    local: LocalExecutor,
    store: DataStore,
    make_ctx: Callable[..., TaskContext],
    tmp_path: Path,
    policy: PollPolicy,
) -> None:
    release = tmp_path / "release"
    template = python_template(GATED, str(release))
    ctx = make_ctx(node="gated")
    await submission.submit(store, template, literals_pb2.LiteralMap(), ctx)
    sink = Lines()
    driver = submission.open_driver(
        local, template, DriverSnapshot(ctx), store, policy=policy, output=sink, output_reader="try-1"
    )
    run = asyncio.create_task(driver.run())
    try:
        await wait_for(lambda: "stdout:first line" in sink.got and "stderr:to stderr" in sink.got)
        assert not run.done()
        release.touch()
        final = await asyncio.wait_for(run, 20)  # the exit watch wakes the driver
    finally:
        run.cancel()
        await local.kill_task(ctx, "test over")  # a failed check leaves no process behind
    assert final.phase is TaskPhase.SUCCEEDED, final
    assert sink.got == ["stdout:first line", "stderr:to stderr", "stdout:last line, no newline"]
    assert Path(submission.output_cursor_file(ctx, "try-1")).exists()


async def test_a_second_process_goes_on_from_the_cursor_without_repeating_a_line(
    local: LocalExecutor, store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path
) -> None:
    release = tmp_path / "release"
    template = python_template(GATED, str(release))
    ctx = make_ctx(node="two-readers")
    await submission.submit(store, template, literals_pb2.LiteralMap(), ctx)
    await local.start_task(ctx, template, literals_pb2.LiteralMap())
    try:
        await _two_readers(local, store, ctx, template, release)
    finally:
        await local.kill_task(ctx, "test over")  # a failed check leaves no process behind


async def _two_readers(
    local: LocalExecutor, store: DataStore, ctx: TaskContext, template: Any, release: Path
) -> None:
    cursor_file = submission.output_cursor_file(ctx, "try-1")
    first, second, other_try = Lines(), Lines(), Lines()
    before = OutputCopier(local, first, store=store, cursor_file=cursor_file)
    await wait_for(
        lambda: Path(local.log_paths(ctx)[1]).exists() and Path(local.log_paths(ctx)[1]).stat().st_size > 0
    )
    await before.copy(ctx)
    await before.flush(ctx)  # what a stopping trigger does (a copy only queues the write)
    assert first.got == ["stdout:first line", "stderr:to stderr"]
    release.touch()
    while not (await local.check_task_status(ctx, template)).phase.is_final_for_execution():
        await asyncio.sleep(0.05)
    # A restarted triggerer: a new copier, the same cursor file.
    after = OutputCopier(local, second, store=store, cursor_file=cursor_file)
    await after.copy(ctx, final=True)
    assert second.got == ["stdout:last line, no newline"]
    # Another try copies into its own log: all of it.
    await OutputCopier(
        local, other_try, store=store, cursor_file=submission.output_cursor_file(ctx, "try-2")
    ).copy(ctx, final=True)
    # One read: stdout's new lines, then stderr's (the two files cannot be ordered across).
    assert other_try.got == ["stdout:first line", "stdout:last line, no newline", "stderr:to stderr"]


class Failing(LocalExecutor):
    """A backend whose output cannot be read (its API is down)."""

    async def read_output(
        self,
        task_ctx: TaskContext,
        cursor: Mapping[str, Any] | None,
        *,
        max_bytes: int = 64_000,
        final: bool = False,
    ) -> OutputChunk:
        raise ConnectionError("logs API down")


async def test_a_failing_read_is_said_once_and_never_raises(
    tmp_path: Path, store: DataStore, make_ctx: Callable[..., TaskContext], caplog: pytest.LogCaptureFixture
) -> None:
    executor = Failing(state_root=str(tmp_path / "state"))
    copier = OutputCopier(executor, Lines())
    for _ in range(3):
        await copier.copy(make_ctx(node="x"))
    warnings = [r for r in caplog.records if "cannot copy the output" in r.getMessage()]
    assert len(warnings) == 1 and "logs API down" in warnings[0].getMessage()
    assert copier.supported is None


async def test_an_executor_without_incremental_output_is_noted_as_such(
    store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    from tests.executors.engine.support import ScriptedExecutor

    copier = OutputCopier(ScriptedExecutor(), Lines())
    await copier.copy(make_ctx(node="x"))
    assert copier.supported is False


async def test_the_final_copy_is_bounded_and_says_what_it_left(
    local: LocalExecutor, store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    template = python_template("for i in range(20000): print(f'line {i:05d}')")
    ctx = make_ctx(node="chatty")
    await local.start_task(ctx, template, literals_pb2.LiteralMap())
    while not (await local.check_task_status(ctx, template)).phase.is_final_for_execution():
        await asyncio.sleep(0.05)
    sink = Lines()
    await OutputCopier(local, sink, max_bytes=10_000, final_max_bytes=50_000).copy(ctx, final=True)
    assert sink.got[0] == "stdout:line 00000"
    assert 4_000 < len(sink.got) < 5_000  # ~50 KB of 11-byte lines
    assert "more output than 50,000 bytes was left" in sink.got[-1]


async def test_a_cancelled_driver_keeps_where_its_copy_stood(
    local: LocalExecutor, store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path
) -> None:
    """The cursor is written at most every save_every s, and once more when the driver is
    cancelled (a triggerer shutting down): the next process repeats nothing."""
    release = tmp_path / "release"
    script = "import os, sys, time\nprint('a', flush=True)\ntime.sleep(0.5)\nprint('b', flush=True)\n"
    script += "while not os.path.exists(sys.argv[1]): time.sleep(0.02)\n"
    template = python_template(script, str(release))
    ctx = make_ctx(node="cancelled")
    await submission.submit(store, template, literals_pb2.LiteralMap(), ctx)
    sink = Lines()
    policy = PollPolicy(interval=20, watched_interval=30, output_interval=0.1, call_timeout=30)
    driver = submission.open_driver(
        local, template, DriverSnapshot(ctx), store, policy=policy, output=sink, output_reader="try-1"
    )
    run = asyncio.create_task(driver.run())
    try:
        await wait_for(lambda: sink.got == ["stdout:a", "stdout:b"])
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        later = Lines()
        cursor_file = submission.output_cursor_file(ctx, "try-1")
        await OutputCopier(local, later, store=store, cursor_file=cursor_file).copy(ctx)
        assert later.got == [], "a line copied before the cancel came again"
    finally:
        run.cancel()
        await local.kill_task(ctx, "test over")  # a failed check leaves no process behind


async def test_a_timed_out_execution_keeps_what_it_printed_until_the_kill(
    local: LocalExecutor, store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path
) -> None:
    import datetime as dt

    template = python_template(GATED, str(tmp_path / "never-released"))
    ctx = make_ctx(node="timed-out")
    await submission.submit(store, template, literals_pb2.LiteralMap(), ctx)
    sink = Lines()
    # No live copy before the deadline (60 s interval): only the copy after the kill can show it.
    policy = PollPolicy(interval=0.2, watched_interval=0.2, output_interval=60, call_timeout=30)
    driver = submission.open_driver(
        local, template, DriverSnapshot(ctx), store, policy=policy, output=sink, output_reader="try-1"
    )
    await driver.step()
    await wait_for(
        lambda: (
            Path(local.log_paths(ctx)[0]).exists() and b"first" in Path(local.log_paths(ctx)[0]).read_bytes()
        )
    )
    try:
        final = await asyncio.wait_for(
            driver.run(deadline=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.5)), 30
        )
    finally:
        await local.kill_task(ctx, "test over")
    assert (
        final.phase is TaskPhase.RETRYABLE_FAILURE and final.err is not None and final.err.code == "Timeout"
    )
    assert "stdout:first line" in sink.got and "stderr:to stderr" in sink.got, sink.got


def test_copies_that_find_nothing_back_off_to_the_watched_interval() -> None:
    policy = PollPolicy(output_interval=5, watched_interval=30, jitter=0)
    assert [policy.output_delay(quiet) for quiet in range(6)] == [5, 10, 20, 30, 30, 30]
    # Never below output_interval, whatever watched_interval says.
    assert PollPolicy(output_interval=5, watched_interval=1, jitter=0).output_delay(3) == 5


class Counting(LocalExecutor):
    """The local executor, counting its read_output calls."""

    reads = 0

    async def read_output(
        self,
        task_ctx: TaskContext,
        cursor: Mapping[str, Any] | None,
        *,
        max_bytes: int = 64_000,
        final: bool = False,
    ) -> OutputChunk:
        type(self).reads += 1
        return await super().read_output(task_ctx, cursor, max_bytes=max_bytes, final=final)


async def test_a_quiet_execution_is_read_less_and_less_often_and_a_new_line_still_comes(
    tmp_path: Path, store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    """A task printing nothing costs the driver a read every watched_interval, not every
    output_interval; the first line after the silence shows within one watched_interval."""
    executor = Counting(state_root=str(tmp_path / "state"))
    await executor.initialize(ExecutorInitializationParameters(data_store=store))
    release = tmp_path / "release"
    script = "import os, sys, time\nwhile not os.path.exists(sys.argv[1]): time.sleep(0.02)\nprint('late', flush=True)\n"
    script += "time.sleep(30)\n"
    template = python_template(script, str(release))
    ctx = make_ctx(node="quiet")
    await submission.submit(store, template, literals_pb2.LiteralMap(), ctx)
    sink = Lines()
    policy = PollPolicy(interval=30, watched_interval=0.8, output_interval=0.05, jitter=0, call_timeout=30)
    driver = submission.open_driver(
        executor, template, DriverSnapshot(ctx), store, policy=policy, output=sink, output_reader="try-1"
    )
    run = asyncio.create_task(driver.run())
    try:
        await asyncio.sleep(3)
        # Without the back-off: 3 / 0.05 = 60 reads. With it: 0.05, 0.1, 0.2, 0.4, then 0.8 s.
        assert Counting.reads <= 10, Counting.reads
        release.touch()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await wait_for(lambda: "stdout:late" in sink.got, timeout=5)
        assert loop.time() - t0 < 2.0  # one watched_interval (0.8 s), with room for a slow machine
    finally:
        run.cancel()
        await executor.kill_task(ctx, "test over")
