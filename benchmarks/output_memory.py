"""Benchmark: live output does not grow the process that copies it, whatever the task prints.

A real local execution writes 1 GiB to stdout (1 MiB blocks of 100-byte lines) while this process
drives it with ``ExecutionDriver``, as a trigger does, copying its output every 0.5 s into a sink
that counts the lines and keeps nothing. The baseline is the same execution driven without
copying, in the same run. Measured: the peak RSS of this process above its RSS before the start
(sampled every 20 ms), with and without the copy. The supervisor keeps at most ``max_log_bytes``
(64 MiB) per log on disk; the copy reads at most 256 KB per copy, so most of the output rotates
away unread, and the task log says so.
"""

from __future__ import annotations

import asyncio
import gc
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import psutil
from flyteidl.core import literals_pb2

from benchmarks.common import Report, cli
from executors import DataStore, ExecutorInitializationParameters, PollPolicy, TaskContext, TaskExecutionID
from executors.backends.local import LocalExecutor
from executors.core.output import OutputLines
from executors.data.task_template import build_task_template
from executors.engine import submission
from executors.engine.driver import DriverSnapshot

GIB, QUICK_BYTES = 1 << 30, 128 << 20
GROWTH_TARGET_MIB = 16.0
"""Copying may add at most this much to the peak RSS of driving the same execution."""

WRITER = (
    "import sys\n"
    "block = (b'x' * 99 + b'\\n') * 10486\n"
    "out = sys.stdout.buffer\n"
    "for _ in range(int(sys.argv[1]) // len(block)): out.write(block)\n"
    "out.flush()\n"
)


async def _drive(root: Path, label: str, size: int, copy: bool) -> tuple[float, float, int]:
    """Peak RSS growth (MiB), wall seconds and lines copied for one execution."""
    store = DataStore()
    executor = LocalExecutor(state_root=str(root / "state"))
    await executor.initialize(ExecutorInitializationParameters(data_store=store))
    template = build_task_template(["python", "-c", WRITER, str(size)], name=f"bench.output.{label}")
    from benchmarks.local_admission import _identifier

    ctx = TaskContext(
        task_execution_id=TaskExecutionID.create(_identifier(label)), data_dir=str(root / label)
    )
    await submission.submit(store, template, literals_pb2.LiteralMap(), ctx)
    lines = [0]

    def count(pieces: Sequence[OutputLines]) -> None:
        lines[0] += sum(piece.count() for piece in pieces)

    policy = PollPolicy(interval=0.5, watched_interval=0.5, output_interval=0.5, call_timeout=30)
    driver = submission.open_driver(
        executor, template, DriverSnapshot(ctx), store, policy=policy, output=count if copy else None
    )
    process = psutil.Process()
    gc.collect()
    before = peak = process.memory_info().rss
    t0 = time.monotonic()
    run = asyncio.create_task(driver.run())
    while not run.done():
        peak = max(peak, process.memory_info().rss)
        await asyncio.sleep(0.02)
    final = await run
    wall = time.monotonic() - t0
    await executor.close()
    if not final.phase.name == "SUCCEEDED":
        raise RuntimeError(f"{label}: {final}")
    return (peak - before) / 2**20, wall, lines[0]


def run(quick: bool) -> Report:
    size = QUICK_BYTES if quick else GIB
    report = Report("output_memory")
    with tempfile.TemporaryDirectory(prefix="bench-output-") as tmp:
        root = Path(tmp)
        base_growth, base_wall, _ = asyncio.run(_drive(root, "plain", size, copy=False))
        growth, wall, lines = asyncio.run(_drive(root, "copied", size, copy=True))
    report.add(
        f"a task printing {size / 2**20:,.0f} MiB, copied live: peak RSS growth of the driving process",
        growth,
        "MiB",
        baseline=base_growth,
        baseline_label="the same execution driven without copying",
        target=f"<= baseline + {GROWTH_TARGET_MIB:g} MiB",
        met=growth <= base_growth + GROWTH_TARGET_MIB,
        notes=(
            f"{lines:,} lines copied (0.5 s interval, <= 256 KB per copy); wall {wall:.1f} s vs "
            f"{base_wall:.1f} s; 1 run each"
        ),
    )
    return report


if __name__ == "__main__":
    cli(run)
