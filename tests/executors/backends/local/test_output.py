"""The local executor's ``read_output``: each line of stdout.log and stderr.log once, in order,
across the supervisor's rotations, without trusting the files (the task controls them)."""

from __future__ import annotations

import asyncio
import os
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from executors import DataStore, ExecutorInitializationParameters, TaskContext
from executors.backends.local import LocalExecutor
from executors.backends.local.output import read_new_output, unchanged
from executors.core.output import OutputChunk
from tests.conftest import python_template
from tests.executors.backends.local.helpers import start


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "exec" / "logs").mkdir(parents=True)
    return tmp_path / "exec"


def paths(folder: Path) -> dict[str, str]:
    return {"stdout": str(folder / "logs" / "stdout.log"), "stderr": str(folder / "logs" / "stderr.log")}


def read(folder: Path, cursor: Any, max_bytes: int = 64_000, final: bool = False) -> OutputChunk:
    return read_new_output(paths(folder), str(folder), cursor, max_bytes, final)


def texts(chunk: OutputChunk) -> list[str]:
    return [f"{stream}:{text}" for stream, text in chunk.lines()]


def append(path: Path, text: str) -> None:
    with open(path, "a") as fh:
        fh.write(text)


def test_each_line_once_and_a_partial_line_waits_for_its_end(folder: Path) -> None:
    out, err = folder / "logs" / "stdout.log", folder / "logs" / "stderr.log"
    append(out, "one\ntw")
    append(err, "oops\n")
    first = read(folder, None)
    assert texts(first) == ["stdout:one", "stderr:oops"]
    assert not first.more  # a line still being written is not "more waiting": nothing to read now
    assert texts(read(folder, first.cursor)) == []
    assert unchanged(paths(folder), first.cursor) is False  # "tw" is waiting
    append(out, "o\nthree\n")
    second = read(folder, first.cursor)
    assert texts(second) == ["stdout:two", "stdout:three"]
    assert unchanged(paths(folder), second.cursor) is True
    append(out, "last, no newline")
    assert texts(read(folder, second.cursor)) == []
    assert texts(read(folder, second.cursor, final=True)) == ["stdout:last, no newline"]


def test_a_read_is_bounded_and_says_more_is_waiting(folder: Path) -> None:
    append(folder / "logs" / "stdout.log", "".join(f"line {i:04d}\n" for i in range(1000)))
    seen: list[str] = []
    cursor = None
    for _ in range(100):
        chunk = read(folder, cursor, max_bytes=2_000)
        assert sum(len(piece.text) + 1 for piece in chunk.pieces) <= 2_000
        seen += [text for _, text in chunk.lines()]
        cursor = chunk.cursor
        if not chunk.more:
            break
    assert seen == [f"line {i:04d}" for i in range(1000)]


def test_a_rotation_between_two_reads_loses_nothing(folder: Path) -> None:
    out = folder / "logs" / "stdout.log"
    append(out, "a1\na2\n")
    first = read(folder, None)
    append(out, "a3\n")
    os.replace(out, str(out) + ".1")  # what the supervisor does at max_log_bytes
    append(out, "b1\n")
    assert texts(read(folder, first.cursor)) == ["stdout:a3", "stdout:b1"]


def test_two_rotations_between_two_reads_say_output_was_lost(folder: Path) -> None:
    out = folder / "logs" / "stdout.log"
    append(out, "a1\n")
    first = read(folder, None)
    for text in ("a2\n", "b1\n"):
        append(out, text)
        os.replace(out, str(out) + ".1")
    append(out, "c1\n")
    lines = texts(read(folder, first.cursor))
    assert "rotated away" in lines[0], lines
    assert lines[1:] == ["stdout:b1", "stdout:c1"]


def test_a_log_truncated_in_place_is_read_again_from_its_start(folder: Path) -> None:
    out = folder / "logs" / "stdout.log"
    append(out, "a long first line\n")
    first = read(folder, None)
    out.write_text("new\n")
    assert texts(read(folder, first.cursor)) == ["stdout:new"]


def test_a_fifo_or_a_symlink_out_is_never_read_and_said_once(folder: Path, tmp_path: Path) -> None:
    os.mkfifo(folder / "logs" / "stdout.log")  # opening it for reading would block forever
    secret = tmp_path / "secret.txt"
    secret.write_text("do not show\n")
    os.symlink(secret, folder / "logs" / "stderr.log")
    first = read(folder, None)
    notes = [text for _, text in first.lines()]
    assert len(notes) == 2, notes
    assert "not a regular file" in notes[0] and "FIFO" in notes[0].upper()
    assert "symlink out of the execution folder" in notes[1]
    assert "do not show" not in " ".join(texts(first))
    assert texts(read(folder, first.cursor)) == []  # said once, not at every poll


# About 4 KB/s of numbered lines (12 KB in all): with a 4 KB max_log_bytes stdout.log rotates three
# times, and a reader two seconds late still finds the rest of its file in stdout.log.1.
TICKER = textwrap.dedent(
    """
    import sys, time
    for i in range(600):
        print(f"tick {i:03d} ..........", flush=True)
        if i % 5 == 4:
            print(f"warn {i:03d}", file=sys.stderr, flush=True)
        if i % 10 == 9:
            time.sleep(0.05)
    """
)


async def test_a_real_execution_read_while_it_runs_gives_each_line_once_across_rotations(
    store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path
) -> None:
    executor = LocalExecutor(state_root=str(tmp_path / "state"), max_log_bytes=4_000)
    await executor.initialize(ExecutorInitializationParameters(data_store=store))
    ctx = make_ctx(node="ticker")
    template = python_template(TICKER)
    await start(executor, store, ctx, template)
    seen: list[str] = []
    cursor = None
    reads = 0
    try:
        async with asyncio.timeout(60):  # a reader that never reaches the end fails, never hangs
            while True:
                over = (await executor.check_task_status(ctx, template)).phase.is_final_for_execution()
                more = True
                while more:  # as the engine's copier does: read on while more is waiting
                    chunk = await executor.read_output(ctx, cursor, max_bytes=1_500, final=over)
                    reads += 1
                    seen += texts(chunk)
                    cursor, more = chunk.cursor, chunk.more
                if over:
                    break
                await asyncio.sleep(0.3)  # ~1.2 KB printed meanwhile: most reads find a rotation behind them
    finally:
        await executor.kill_task(ctx, "test over")
        await executor.close()
    ticks = [t for t in seen if t.startswith("stdout:tick")]
    warns = [t for t in seen if t.startswith("stderr:warn")]
    assert ticks == [f"stdout:tick {i:03d} .........." for i in range(600)], (reads, seen[:20])
    assert warns == [f"stderr:warn {i:03d}" for i in range(4, 600, 5)]
    assert reads > 5, "read only after the end: the test tests nothing"
    assert os.path.exists(executor.log_paths(ctx)[0] + ".1"), "the log never rotated: the test tests nothing"
