"""A task's logs keep the most recent output within ``max_log_bytes`` per file (one rotation to
``.1``: at most about twice the cap on disk), say so, and still end up in the failure message and
the task log; a task writing faster than the supervisor drains never deadlocks or loses its exit
status."""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from executors import DataStore, ErrorOrigin, ExecutorInitializationParameters, TaskContext, TaskPhase
from executors.backends.local import LocalExecutor
from tests.conftest import python_template
from tests.executors.backends.local.helpers import healthy_task_beside, start, wait_final

CAP = 100_000

# Prints ``megabytes`` MB of numbered lines to the stream named in argv, then a last line.
CHATTY = textwrap.dedent(
    """
    import sys
    stream = getattr(sys, sys.argv[1])
    line = "x" * 90
    for i in range(int(float(sys.argv[2]) * 1_000_000) // 100):
        stream.write(f"{i:08d} {line}\\n")
    stream.write("THE END\\n")
    stream.flush()
    sys.exit(int(sys.argv[3]))
    """
)


async def capped_executor(tmp_path: Path, store: DataStore, cap: int = CAP) -> LocalExecutor:
    ex = LocalExecutor(state_root=str(tmp_path / "state"), max_log_bytes=cap)
    await ex.initialize(ExecutorInitializationParameters(data_store=store))
    return ex


def log_sizes(path: str) -> tuple[int, int]:
    older = path + ".1"
    return os.path.getsize(path), os.path.getsize(older) if os.path.exists(older) else 0


async def test_a_huge_stdout_keeps_only_the_most_recent_output(
    store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path
) -> None:
    executor = await capped_executor(tmp_path, store)
    ctx = make_ctx()
    template = python_template(CHATTY, "stdout", "20", "0")  # 20 MB through a 100 kB cap
    async with healthy_task_beside(tmp_path / "healthy"):
        await start(executor, store, ctx, template)
        final = await wait_final(executor, ctx, template, timeout=60)
        assert final.phase is TaskPhase.SUCCEEDED, final
    stdout, _ = executor.log_paths(ctx)
    current, older = log_sizes(stdout)
    assert current <= CAP and older <= CAP and current + older <= 2 * CAP, (current, older)
    text = Path(stdout).read_text()
    assert text.rstrip().endswith("THE END")  # the most recent output is kept
    assert "max_log_bytes" in text.splitlines()[0]  # and the truncation is noted
    assert "00000000 " not in text + Path(stdout + ".1").read_text()  # the oldest is gone
    logs = await executor.read_logs(ctx)
    assert logs is not None and "THE END" in logs


async def test_a_huge_stderr_before_a_crash_still_gives_its_last_lines_in_the_message(
    store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path
) -> None:
    executor = await capped_executor(tmp_path, store)
    ctx = make_ctx()
    template = python_template(CHATTY, "stderr", "5", "9")
    async with healthy_task_beside(tmp_path / "healthy"):
        await start(executor, store, ctx, template)
        final = await wait_final(executor, ctx, template, timeout=60)
    assert final.phase is TaskPhase.RETRYABLE_FAILURE, final
    assert final.err is not None and (final.err.code, final.err.origin) == ("ExitCode9", ErrorOrigin.USER)
    assert "THE END" in final.err.message and len(final.err.message) < 2500
    current, older = log_sizes(executor.log_paths(ctx)[1])
    assert current <= CAP and older <= CAP


async def test_a_task_flooding_both_streams_neither_blocks_nor_loses_its_exit_status(
    store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path
) -> None:
    executor = await capped_executor(tmp_path, store, cap=1 << 20)
    ctx = make_ctx()
    script = textwrap.dedent(
        """
        import os, sys, threading
        chunk = b"y" * 65536
        def flood(fd):
            for _ in range(400):  # 25 MiB per stream, both at once
                os.write(fd, chunk)
        threads = [threading.Thread(target=flood, args=(fd,)) for fd in (1, 2)]
        for t in threads: t.start()
        for t in threads: t.join()
        os.write(2, b"\\nbye\\n")
        sys.exit(7)
        """
    )
    template = python_template(script)
    t0 = time.monotonic()
    await start(executor, store, ctx, template)
    final = await wait_final(executor, ctx, template, timeout=60)
    assert final.phase is TaskPhase.RETRYABLE_FAILURE and final.err is not None, final
    assert final.err.code == "ExitCode7" and "bye" in final.err.message
    assert time.monotonic() - t0 < 60
    for path in executor.log_paths(ctx):
        current, older = log_sizes(path)
        assert current <= 1 << 20 and older <= 1 << 20


@pytest.mark.parametrize("cap", [0, -5, "lots"])
def test_max_log_bytes_must_be_positive(cap: object) -> None:
    with pytest.raises(ValueError, match=r"^local executor option max_log_bytes: must be a whole number > 0"):
        LocalExecutor(max_log_bytes=cap)  # type: ignore[arg-type]
