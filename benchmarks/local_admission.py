"""Admission through the local executor's ``max_concurrent``: N short tasks started at once on one
event loop, each driven by ``ExecutionDriver.run()`` with the default poll policy (5 s interval,
NOT_READY backoff up to 60 s). Without a wake-up the waiters sleep their backoff while slots sit
idle; with it (the executor calls EnqueueOwner when a slot frees) the wall time approaches the
ideal ``ceil(N / max_concurrent) x task seconds``.

    .venv/bin/python -m benchmarks.local_admission [--quick]

Figures: the wall time against that ideal, and how long a freed slot stayed idle (the start of the
i-th task against the end of the (i - max_concurrent)-th, from the executor's own records:
``pid.json`` started_at, ``exit.json`` ended_at).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import tempfile
import time
from pathlib import Path

from flyteidl.core import identifier_pb2, literals_pb2, tasks_pb2

from benchmarks.common import Report, cli, percentile
from executors import (
    DataStore,
    ExecutionDriver,
    ExecutorInitializationParameters,
    PollPolicy,
    TaskContext,
    TaskExecutionID,
    TaskPhase,
)
from executors.backends.local import LocalExecutor
from executors.backends.local.executor import state_dirs

FULL = (200, 1.0, 4)  # tasks, seconds each, max_concurrent
QUICK = (24, 0.5, 4)


def _template(seconds: float) -> tasks_pb2.TaskTemplate:
    template = tasks_pb2.TaskTemplate(type="container")
    template.id.resource_type = identifier_pb2.TASK
    template.id.name = "bench.sleep"
    template.container.image = "ignored"
    template.container.command.extend(["sleep", f"{seconds:g}"])
    return template


def _identifier(node: str) -> identifier_pb2.TaskExecutionIdentifier:
    ident = identifier_pb2.TaskExecutionIdentifier()
    ident.task_id.resource_type = identifier_pb2.TASK
    ident.task_id.project, ident.task_id.domain, ident.task_id.name = "bench", "development", "bench.sleep"
    ident.node_execution_id.node_id = node
    ident.node_execution_id.execution_id.name = "admission"
    return ident


async def _wave(root: Path, tasks: int, seconds: float, limit: int) -> tuple[float, list[TaskPhase]]:
    store = DataStore()
    executor = LocalExecutor(state_root=str(root / "state"), max_concurrent=limit)
    await executor.initialize(ExecutorInitializationParameters(data_store=store))
    template = _template(seconds)
    inputs = literals_pb2.LiteralMap()

    async def load() -> literals_pb2.LiteralMap:
        return inputs

    async def one(i: int) -> TaskPhase:
        ctx = TaskContext(
            task_execution_id=TaskExecutionID.create(_identifier(f"t{i}")),
            data_dir=str(root / "data" / f"t{i}"),
            owner_id=f"bench/t{i}",
        )
        driver = ExecutionDriver(executor, template, ctx, inputs_loader=load, policy=PollPolicy())
        return (await driver.run()).phase

    t0 = time.monotonic()
    phases = await asyncio.gather(*(one(i) for i in range(tasks)))
    wall = time.monotonic() - t0
    await executor.close()
    return wall, list(phases)


def _records(state_root: Path) -> tuple[list[float], list[float]]:
    starts, ends = [], []
    for state_dir in state_dirs(str(state_root)).values():
        pid = json.loads(Path(state_dir, "pid.json").read_text())
        exited = json.loads(Path(state_dir, "exit.json").read_text())
        starts.append(float(pid["started_at"]))
        ends.append(float(exited["ended_at"]))
    return sorted(starts), sorted(ends)


def run(quick: bool) -> Report:
    tasks, seconds, limit = QUICK if quick else FULL
    report = Report("local_admission")
    with tempfile.TemporaryDirectory(prefix="bench-admission-") as tmp:
        root = Path(tmp)
        wall, phases = asyncio.run(_wave(root, tasks, seconds, limit))
        starts, ends = _records(root / "state")
    succeeded = sum(p is TaskPhase.SUCCEEDED for p in phases)
    ideal = math.ceil(tasks / limit) * seconds
    idle = [max(0.0, starts[i] - ends[i - limit]) for i in range(limit, len(starts))]
    events = sorted([(t, 1) for t in starts] + [(t, -1) for t in ends], key=lambda e: (e[0], e[1]))
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    report.add(
        f"{tasks} x {seconds:g} s tasks, max_concurrent={limit}: wall time",
        wall,
        "s",
        baseline=ideal,
        baseline_label=f"ideal ceil({tasks}/{limit}) x {seconds:g} s",
        notes=f"{succeeded}/{tasks} succeeded; default PollPolicy (5 s, backoff to 60 s)",
    )
    if starts and ends:
        report.add(
            "executions' span: first start to last end",
            ends[-1] - starts[0],
            "s",
            baseline=ideal,
            baseline_label="ideal",
            notes="the wall time adds the last task's final poll (interval 5 s)",
        )
    if idle:
        report.add("idle slot after a task ended: mean", sum(idle) / len(idle), "s")
        report.add("idle slot after a task ended: p95", percentile(idle, 95), "s")
        report.add("idle slot after a task ended: max", max(idle), "s")
    report.add("executions running at once: peak", float(peak), "", notes=f"max_concurrent={limit}")
    report.notes.append(f"cpu count {os.cpu_count()}; one event loop, ExecutionDriver.run() per task")
    return report


if __name__ == "__main__":
    cli(run)
