"""Benchmark 2: what ExecutorOperator adds to a task, in the worker.

``execute()`` is called directly with a minimal context (a task instance that records XCom
pushes, as tests/airflow_provider/test_operators.py does), many times, each with a fresh run id
(so a fresh execution folder), and timed from entry to:

* **defer**: the ``TaskDeferred`` exception. The executor (``bench-instant``, registered here)
  answers RUNNING at once, so what is measured is the operator: template and inputs checked and
  converted, execution identity and folder, ``task.pb``/``inputs.pb`` written, executor pool,
  driver step, the phase event written, the trigger built;
* **cache hit**: the return of ``execute()`` for a cached task whose catalog entry exists (filled
  by the first call): key computed, entry read, ``outputs.pb`` written, outputs read back and
  pushed to XCom;
* **resume**: ``execute_complete()`` with a SUCCEEDED trigger event (outputs resolved and pushed).

Baseline, in the same run: a no-op deferrable operator whose ``execute`` immediately calls
``self.defer`` with a trivial trigger (and whose ``execute_complete`` returns None).
Target: under 20 ms added per task at p50 (defer and cache hit).
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from benchmarks.common import Report, cli, fmt, log, summary_ms
from executors import Cache
from harness.fake_ti import FakeTI

ITERATIONS, QUICK_ITERATIONS = 400, 60
WARMUP = 10
ADDED_TARGET_MS = 20.0

INSTANT_ID = "bench-instant"


def _register_instant_executor() -> None:
    from flyteidl.core import literals_pb2, tasks_pb2

    from executors import Executor, ExecutorInitializationParameters, TaskContext, TaskPhase, TaskStatus
    from executors.engine.registry import default_registry

    class InstantExecutor(Executor):
        """RUNNING at once on start (or SUCCEEDED when the config says so); outputs from memory."""

        id = INSTANT_ID

        def __init__(self, *, succeed: bool | str = False) -> None:
            self.succeed = str(succeed).lower() in ("1", "true")

        async def initialize(self, params: ExecutorInitializationParameters) -> None:
            return None

        async def start_task(
            self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate, inputs: literals_pb2.LiteralMap
        ) -> TaskStatus:
            return TaskStatus(TaskPhase.SUCCEEDED if self.succeed else TaskPhase.RUNNING)

        async def check_task_status(self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate) -> TaskStatus:
            return TaskStatus(TaskPhase.RUNNING)

        async def kill_task(self, task_ctx: TaskContext, reason: str) -> None:
            return None

        async def resolve_outputs(
            self, task_ctx: TaskContext, *output_variables: str
        ) -> dict[str, literals_pb2.Literal]:
            out = {}
            for name in output_variables:
                literal = literals_pb2.Literal()
                literal.scalar.primitive.integer = 42
                out[name] = literal
            return out

    if INSTANT_ID not in default_registry.known_ids():
        default_registry.register(InstantExecutor, source="benchmarks/operator_overhead.py")


def _noop_classes() -> tuple[type, type]:
    from airflow.sdk import BaseOperator
    from airflow.triggers.base import BaseTrigger, TriggerEvent

    class NoopTrigger(BaseTrigger):
        def serialize(self) -> tuple[str, dict[str, Any]]:
            return ("benchmarks.operator_overhead.NoopTrigger", {})

        async def run(self) -> AsyncIterator[TriggerEvent]:
            yield TriggerEvent(None)

    class NoopDeferrableOperator(BaseOperator):
        def execute(self, context: Any) -> None:
            self.defer(trigger=NoopTrigger(), method_name="execute_complete")

        def execute_complete(self, context: Any, event: Any = None) -> None:
            return None

    return NoopTrigger, NoopDeferrableOperator


def _time_defer(op: Any, contexts: list[dict[str, Any]]) -> tuple[list[float], list[Any]]:
    from airflow.sdk.exceptions import TaskDeferred

    times, deferrals = [], []
    for context in contexts:
        start = time.perf_counter()
        try:
            op.execute(context)
        except TaskDeferred as deferred:
            times.append(time.perf_counter() - start)
            deferrals.append(deferred)
        else:
            raise RuntimeError(f"{op.task_id} did not defer")
    return times, deferrals


def _time_calls(call: Callable[[dict[str, Any]], Any], contexts: list[dict[str, Any]]) -> list[float]:
    times = []
    for context in contexts:
        start = time.perf_counter()
        call(context)
        times.append(time.perf_counter() - start)
    return times


def task_contexts(op: Any, label: str, count: int) -> list[dict[str, Any]]:
    """``count`` minimal contexts for calling ``op.execute()`` directly, each with a fresh run id."""
    return [
        {"ti": FakeTI(task_id=op.task_id, dag_id="bench_dag", run_id=f"manual__{label}_{i}"), "task": op}
        for i in range(count)
    ]


def _profile(fn: Callable[[], Any], top: int = 14) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    buf = io.StringIO()
    stats = pstats.Stats(profiler, stream=buf).strip_dirs().sort_stats("cumulative")
    stats.print_stats(top)
    return buf.getvalue().strip()


def run(quick: bool) -> Report:
    iterations = QUICK_ITERATIONS if quick else ITERATIONS
    workdir = Path(tempfile.mkdtemp(prefix="bench-operator-"))
    os.environ["AIRFLOW__PROVIDER_EXECUTORS__DATA_DIR"] = str(workdir / "data")
    os.environ["AIRFLOW__PROVIDER_EXECUTORS__CATALOG_URL"] = str(workdir / "catalog")
    os.environ["AIRFLOW__PROVIDER_EXECUTORS__POLL_INTERVAL"] = "5"

    from airflow.sdk.bases.operator import ExecutorSafeguard
    from airflow.sdk.exceptions import TaskDeferred

    from airflow_provider.operators import ExecutorOperator
    from executors import TaskPhase, TaskStatus

    # The task runner calls execute() with a sentinel; called directly, Airflow's safeguard would log
    # a warning per call (for both operators). Its test mode skips that, like the task runner.
    ExecutorSafeguard.test_mode = True
    _register_instant_executor()
    _, noop_cls = _noop_classes()
    report = Report("2. operator overhead")

    common: dict[str, Any] = {
        "executor_id": INSTANT_ID,
        "command": ["python", "-c", "pass", "{{.input}}", "{{.outputPrefix}}"],
        "input_types": {"x": int, "words": list[str]},
        "output_types": {"y": int},
        "inputs": {"x": 21, "words": ["a", "b", "c"]},
        "data_dir": str(workdir / "data"),
    }
    deferring = ExecutorOperator(task_id="defer", deferrable=True, **common)
    cached = ExecutorOperator(
        task_id="cached", cache=Cache(version="1"), executor_options={"succeed": True}, **common
    )
    noop = noop_cls(task_id="noop")

    try:
        log(f"operator_overhead: {iterations} iterations per path (+{WARMUP} warm-up)")
        # Warm-up: imports, first executor pool, first catalog folder; then fill the catalog.
        _time_defer(deferring, task_contexts(deferring, "warm", WARMUP))
        _time_defer(noop, task_contexts(noop, "warm", WARMUP))
        first = cached.execute(task_contexts(cached, "fill", 1)[0])
        filled = task_contexts(cached, "check", 1)[0]
        cached.execute(filled)
        if filled["ti"].xcoms.get("cache_status") != "CACHE_HIT":
            raise RuntimeError(f"the catalog was not filled: {filled['ti'].xcoms} (first: {first})")
        _time_calls(cached.execute, task_contexts(cached, "warm", WARMUP))

        # Interleaved rounds, so drift in machine load hits both sides alike.
        ours_defer: list[float] = []
        noop_defer: list[float] = []
        ours_hit: list[float] = []
        deferrals: list[tuple[dict[str, Any], Any]] = []
        rounds = 10
        per_round = max(1, iterations // rounds)
        for r in range(rounds):
            ctxs = task_contexts(deferring, f"r{r}", per_round)
            times, deferred = _time_defer(deferring, ctxs)
            ours_defer += times
            deferrals += list(zip(ctxs, deferred, strict=True))
            noop_defer += _time_defer(noop, task_contexts(noop, f"r{r}", per_round))[0]
            ours_hit += _time_calls(cached.execute, task_contexts(cached, f"r{r}", per_round))

        # Resume: the SUCCEEDED event a trigger would send for each deferred execution.
        def event_for(deferred: TaskDeferred) -> dict[str, Any]:
            handle = deferred.trigger.handle
            payload = {"status": TaskStatus(TaskPhase.SUCCEEDED).to_dict(), "handle": handle.to_dict()}
            return dict(json.loads(json.dumps(payload)))

        events = [(ctx, event_for(d)) for ctx, d in deferrals]
        ours_resume = []
        for ctx, event in events:
            start = time.perf_counter()
            deferring.execute_complete(ctx, event=event)
            ours_resume.append(time.perf_counter() - start)
        noop_resume = _time_calls(
            lambda c: noop.execute_complete(c, event=None), task_contexts(noop, "res", len(events))
        )

        profile = _profile(lambda: _time_defer(deferring, task_contexts(deferring, "prof", 50)))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    d, n, h = summary_ms(ours_defer), summary_ms(noop_defer), summary_ms(ours_hit)
    rs, rn = summary_ms(ours_resume), summary_ms(noop_resume)
    for label, ours, base in (("execute() to TaskDeferred", d, n), ("cache hit: execute() to success", h, n)):
        added = ours["p50"] - base["p50"]
        report.add(
            f"{label}, p50",
            ours["p50"],
            "ms",
            baseline=base["p50"],
            baseline_label="no-op deferrable operator",
            target=f"added < {ADDED_TARGET_MS:g} ms",
            met=added < ADDED_TARGET_MS,
            notes=f"added {fmt(added)} ms",
        )
        report.add(
            f"{label}, p95",
            ours["p95"],
            "ms",
            baseline=base["p95"],
            baseline_label="no-op deferrable operator",
        )
    report.add(
        "resume: execute_complete() with a SUCCEEDED event, p50",
        rs["p50"],
        "ms",
        baseline=rn["p50"],
        baseline_label="no-op execute_complete",
        notes=f"p95 {fmt(rs['p95'])} ms",
    )
    rows = ["| path | n | p50 ms | p95 ms | p99 ms | max ms |", "|---|---:|---:|---:|---:|---:|"]
    for label, s in (
        ("ExecutorOperator: execute() to TaskDeferred", d),
        ("no-op deferrable operator: execute() to TaskDeferred", n),
        ("ExecutorOperator cache hit: execute() to success", h),
        ("ExecutorOperator: execute_complete() (SUCCEEDED event)", rs),
        ("no-op: execute_complete()", rn),
    ):
        rows.append(
            f"| {label} | {s['n']:.0f} | {fmt(s['p50'])} | {fmt(s['p95'])} | {fmt(s['p99'])} | "
            f"{fmt(s['max'])} |"
        )
    report.details = (
        "\n".join(rows) + "\n\nTask: 2 inputs (`int`, `list[str]`), 1 output, local data dir, cheap executor "
        f"(`{INSTANT_ID}`). Each call gets a fresh run id, so a fresh execution folder. Cache-hit path: "
        "catalog in a local folder, entry written by the first call.\n\n"
        "<details><summary>cProfile of 50 defer calls (cumulative)</summary>\n\n```\n"
        + profile
        + "\n```\n</details>\n"
    )
    return report


if __name__ == "__main__":
    cli(run)
