"""Benchmark 1: how many ExecutorTriggers one triggerer process carries.

Part A, in one process on one event loop (as Airflow's trigger runner does): N = 1,000, 5,000 and
10,000 ``ExecutorTrigger`` s run concurrently, each consumed by ``async for event in
trigger.run()``. Their executor is ``bench-memory``, registered in the default registry here: its
``check_task_status`` answers RUNNING from memory, so what is measured is the trigger, the driver
and asyncio, not a backend. Handles are built the way the operator hands them over (``accepted``
True, phase RUNNING), and every execution folder holds a real ``task.pb`` and ``inputs.pb`` (the
trigger reads ``task.pb`` once). Poll interval 1 s with the default 20 % jitter.

Each (N, kind) runs in its own subprocess, so memory figures are not polluted by the previous run:
after a warm-up (every trigger has read its template and polled a few times) a window measures

* polls per second sustained, and CPU seconds per poll (process CPU time / polls);
* event-loop lag: a monitor coroutine sleeps 10 ms and records how much it overslept (p50/p99/max);
* memory per trigger: (RSS after warm-up - RSS before the kwargs were built) / N.

The baseline, at the same N, is a trigger-like async generator that only sleeps the same jittered
1 s schedule and counts a "poll". A ``greenback`` variant at the largest N wraps each consumer in
``greenback.ensure_portal()``, which Airflow 3.3's ``run_trigger`` does for every trigger.

When a target is missed at the largest N the worker profiles itself with py-spy (a child process
sampling the live loop) and the report lists where the CPU time goes.

Part B, a real ``airflow triggerer``: see :func:`run_real_triggerer`.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import BENCH_DIR, REPO, Report, cli, fmt, log, percentile
from executors.engine.policy import DEFAULT_POLICY
from harness.loop_gaps import loop_monitor

SIZES, QUICK_SIZES = (1_000, 5_000, 10_000), (500, 1_000, 2_000)
WINDOW, QUICK_WINDOW = 30.0, 5.0
"""The window at the largest N, where the targets are judged."""
SMALL_WINDOW = 20.0
"""The window at the smaller N and for the greenback variant (to keep the suite under ~25 min)."""
WARMUP, QUICK_WARMUP = 5.0, 2.0
PROFILE_SECONDS, QUICK_PROFILE_SECONDS = 15.0, 5.0
POLL_INTERVAL = 1.0
LAG_TICK = 0.010
SUBWINDOWS = 5
"""The window is measured in this many equal parts too: their min - max is the spread printed."""
STALL_TARGET_MS = 200.0
"""No single event-loop stall this long in the window at the largest N."""
PROFILE_RATE = 100

LAG_TARGET_MS = 100.0
CPU_RATIO_TARGET = 2.0
MEMORY_RATIO_TARGET = 1.5


# =====================================================================================================
# Part A: in one process (this module re-run as a subprocess: --worker)
# =====================================================================================================


def _prepare_folders(root: Path, n: int, executor_id: str = "bench-memory") -> list[str]:
    """N execution folders with task.pb/inputs.pb, and the trigger kwargs the operator would defer with."""
    from flyteidl.core import literals_pb2

    from airflow_provider.execution import ExecutionHandle
    from airflow_provider.identity import execution_folder, task_execution_identifier
    from executors import OwnerReference, PollPolicy, TaskContext, TaskExecutionID, TaskPhase
    from executors.data.task_template import build_task_template
    from executors.engine.driver import DriverSnapshot

    template = build_task_template(
        ["python", "-c", "pass", "{{.input}}", "{{.outputPrefix}}"],
        name="bench.capacity",
        inputs={"x": int},
        outputs={"y": int},
    )
    template_bytes = template.SerializeToString(deterministic=True)
    inputs = literals_pb2.LiteralMap()
    inputs.literals["x"].scalar.primitive.integer = 7
    inputs_bytes = inputs.SerializeToString(deterministic=True)
    policy = PollPolicy(interval=POLL_INTERVAL)
    kwargs_list = []
    for i in range(n):
        ti = {"dag_id": "bench_capacity", "run_id": "manual__bench", "task_id": "wait", "map_index": i}
        ident = task_execution_identifier(template, **ti, try_number=1)
        folder = execution_folder(str(root), **ti, try_number=1)
        os.makedirs(folder, exist_ok=True)
        Path(folder, "task.pb").write_bytes(template_bytes)
        Path(folder, "inputs.pb").write_bytes(inputs_bytes)
        ctx = TaskContext(
            task_execution_id=TaskExecutionID.create(ident),
            data_dir=folder,
            owner_id=f"bench_capacity/manual__bench/wait[{i}]",
            owner_reference=OwnerReference(kind="TaskInstance", name=f"bench_capacity.wait[{i}]"),
        ).with_status(TaskPhase.RUNNING, 0, {"pid": 100_000 + i})
        handle = ExecutionHandle(
            executor_id=executor_id,
            executor_config={},
            driver=DriverSnapshot(ctx, accepted=True),
            policy=policy,
        )
        # What the triggerer gets: the serialized kwargs, deserialized from the metadata DB.
        kwargs_list.append(json.dumps({"handle": handle.to_dict()}))
    return kwargs_list


MEMORY_ID = "bench-memory"
PRINTING_MEMORY_ID = "bench-memory-printing"
OUTPUT_LINES_PER_S = [0.0]
"""Lines per second each execution "prints" in the ``trigger+output`` kind (0: no read_output)."""
OUTPUT_RATE = 10.0
OUTPUT_LINE = "step 000042: loss 0.023810 ........................\n"
OUTPUT_BLOCK_LINES = 1000
OUTPUT_BLOCK = OUTPUT_LINE * OUTPUT_BLOCK_LINES
POLLS = [0]
SEEN: set[str] | None = set()
"""Owners that polled at least once, recorded during the warm-up only (then None: no cost)."""


def _register_memory_executor() -> None:
    from flyteidl.core import literals_pb2, tasks_pb2

    from executors import Executor, ExecutorInitializationParameters, TaskContext, TaskPhase, TaskStatus
    from executors.core.output import OutputChunk, OutputLines
    from executors.engine.registry import default_registry

    running = TaskStatus(TaskPhase.RUNNING)

    class MemoryExecutor(Executor):
        """Answers RUNNING from memory: the cheapest executor there can be."""

        id = MEMORY_ID

        async def initialize(self, params: ExecutorInitializationParameters) -> None:
            return None

        async def start_task(
            self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate, inputs: literals_pb2.LiteralMap
        ) -> TaskStatus:
            raise AssertionError("start_task is never needed: the handles are accepted")

        async def check_task_status(self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate) -> TaskStatus:
            POLLS[0] += 1
            if SEEN is not None:
                SEEN.add(task_ctx.owner_id)
            return running

        async def kill_task(self, task_ctx: TaskContext, reason: str) -> None:
            return None

        async def resolve_outputs(
            self, task_ctx: TaskContext, *output_variables: str
        ) -> dict[str, literals_pb2.Literal]:
            return {}

    class PrintingMemoryExecutor(MemoryExecutor):
        """:class:`MemoryExecutor` whose executions print ``OUTPUT_LINES_PER_S`` lines a second."""

        id = PRINTING_MEMORY_ID

        async def read_output(
            self, task_ctx: TaskContext, cursor: Any, *, max_bytes: int = 64_000, final: bool = False
        ) -> OutputChunk | None:
            rate = OUTPUT_LINES_PER_S[0]
            now = time.monotonic()
            since, done = (cursor or {}).get("t", now), int((cursor or {}).get("n", 0))
            count = min(int((now - since) * rate), max_bytes // len(OUTPUT_LINE), OUTPUT_BLOCK_LINES)
            cursor = {"t": since + count / rate, "n": done + count}
            if not count:
                return OutputChunk((), cursor)
            # What a local read hands over: the block of new lines as one string (made once here,
            # so that the task's own "printing" is not counted as the copy's cost).
            return OutputChunk((OutputLines("stdout", OUTPUT_BLOCK[: count * len(OUTPUT_LINE) - 1]),), cursor)

    if MEMORY_ID not in default_registry.known_ids():
        default_registry.register(MemoryExecutor, source="benchmarks/trigger_capacity.py")
        default_registry.register(PrintingMemoryExecutor, source="benchmarks/trigger_capacity.py")


class BaselineTrigger:
    """The baseline: a trigger-like async generator that only sleeps the same jittered schedule."""

    def __init__(self, *, handle: dict[str, Any]) -> None:
        self.handle = {"handle": handle}  # the same kwargs are kept alive, so memory compares like with like

    async def run(self) -> Any:
        if SEEN is not None:
            SEEN.add(self.handle["handle"]["driver"]["task_ctx"]["owner_id"])
        while True:
            POLLS[0] += 1
            await asyncio.sleep(POLL_INTERVAL * random.uniform(0.8, 1.2))
        yield None  # pragma: no cover - makes this an async generator, like BaseTrigger.run


class LoggingBaselineTrigger(BaselineTrigger):
    """The bare trigger that also logs what ours copies: every ``output_interval`` s, the lines
    printed meanwhile (``OUTPUT_RATE`` a second), as one record through the same sink and the same
    Airflow trigger logger. What Airflow's logging alone costs for that output: the floor of any
    live copy, whoever writes it."""

    async def run(self) -> Any:
        from airflow_provider.execution import output_sink
        from airflow_provider.triggers import ExecutorTrigger
        from executors.core.output import OutputLines
        from executors.engine.policy import DEFAULT_POLICY

        if SEEN is not None:
            SEEN.add(self.handle["handle"]["driver"]["task_ctx"]["owner_id"])
        sink = output_sink(ExecutorTrigger.__new__(ExecutorTrigger).log)
        every = DEFAULT_POLICY.output_interval
        piece = OutputLines("stdout", OUTPUT_BLOCK[: int(OUTPUT_RATE * every) * len(OUTPUT_LINE) - 1])
        next_copy = time.monotonic() + every * random.uniform(0.0, 1.0)
        while True:
            POLLS[0] += 1
            if time.monotonic() >= next_copy:
                sink([piece])
                next_copy += every
            await asyncio.sleep(POLL_INTERVAL * random.uniform(0.8, 1.2))
        yield None  # pragma: no cover


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


async def _consume(trigger: Any, use_greenback: bool, events: list[Any]) -> None:
    """What Airflow's TriggerRunner.run_trigger does around a trigger, minus logging and spans."""
    if use_greenback:
        import greenback

        await greenback.ensure_portal()
    async for event in trigger.run():
        events.append(event)


async def _profile_self(seconds: float, out: Path) -> str | None:
    """Sample this very process with py-spy (a child may ptrace its parent as root).

    ``--native`` (which pauses the process at each sample, so CPU per poll is a little higher while
    it runs) is what makes the cyclic garbage collector visible: it is C code called from whatever
    Python line allocated when a collection was due.
    """
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        return "py-spy not found"
    proc = await asyncio.create_subprocess_exec(
        py_spy, "record", "--pid", str(os.getpid()), "--duration", str(int(seconds)),
        "--rate", str(PROFILE_RATE), "--format", "raw", "--output", str(out), "--native", "--threads",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    if proc.returncode != 0 or not out.exists():
        return f"py-spy failed ({proc.returncode}): {err.decode(errors='replace')[-500:]}"
    return None


def _profile_pid(pid: int, seconds: float, out: Path) -> str | None:
    """py-spy --native on another process for ``seconds``; an error text, or None."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    cmd = [py_spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", str(PROFILE_RATE),
           "--format", "raw", "--output", str(out), "--native", "--threads"]  # fmt: skip
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"py-spy: {exc}"
    if done.returncode != 0 or not out.exists():
        return f"py-spy failed ({done.returncode}): {done.stderr[-500:]}"
    return None


async def _worker_main(args: dict[str, Any]) -> dict[str, Any]:
    n, kind, window, warmup = int(args["n"]), args["kind"], float(args["window"]), float(args["warmup"])
    use_greenback = bool(args.get("greenback"))
    root = Path(args["data_dir"])

    # Everything imported and registered before the "before" memory reading.
    from airflow_provider import executor_pool  # noqa: F401
    from airflow_provider.triggers import ExecutorTrigger

    _register_memory_executor()
    serialized = _prepare_folders(root, n, PRINTING_MEMORY_ID if kind == "trigger+output" else MEMORY_ID)
    bare = {"baseline": BaselineTrigger, "baseline+output": LoggingBaselineTrigger}
    cls: Any = bare.get(kind, ExecutorTrigger)
    if kind in ("trigger+output", "baseline+output"):
        # Each execution prints OUTPUT_RATE lines/s; the triggers' logs go to a file, as in a
        # triggerer (where each record also passes Airflow's own processors: not counted here).
        import logging

        OUTPUT_LINES_PER_S[0] = OUTPUT_RATE
        handler = logging.FileHandler(root.parent / f"{root.name}-trigger.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logging.getLogger("airflow_provider").addHandler(handler)
        logging.getLogger("airflow_provider").setLevel(logging.INFO)
    gc.collect()
    rss_before = _rss()

    kwargs_list = [json.loads(s) for s in serialized]
    del serialized
    triggers = [cls(**kw) for kw in kwargs_list]
    del kwargs_list
    events: list[Any] = []
    measuring = False

    global SEEN
    gc_pauses: list[tuple[int, float]] = []
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        elif measuring:
            gc_pauses.append((int(info["generation"]), time.perf_counter() - gc_started[0]))

    gc.callbacks.append(on_gc)
    started = time.perf_counter()
    # The ramp has a monitor of its own: its gaps (the start burst, the first reads of task.pb) are
    # reported apart from the window's.
    async with loop_monitor(LAG_TICK) as ramp:
        tasks = [asyncio.create_task(_consume(t, use_greenback, events)) for t in triggers]
        # Warm-up: until every trigger has read its task.pb and polled once (at most 10 minutes),
        # then ``warmup`` seconds more so the first, synchronized polls spread out over the jitter.
        assert SEEN is not None
        while len(SEEN) < n and time.perf_counter() - started < 600:
            await asyncio.sleep(0.05)
        all_started = time.perf_counter() - started
        started_count = len(SEEN)
        SEEN = None
        await asyncio.sleep(warmup)
    # The measurements between warm-up and window stop the loop themselves (a full collection walks
    # every tracked object): timed here, and outside both monitors. (Before, the window's ticker was
    # asleep across them, so its first sample counted them as a stall of the window.)
    pause0 = time.perf_counter()
    gc.collect()
    full_gc_s = time.perf_counter() - pause0
    rss_after = _rss()
    tracked = len(gc.get_objects())
    setup_pause_s = time.perf_counter() - pause0
    async with loop_monitor(LAG_TICK) as gaps:
        polls0, cpu0, t0 = POLLS[0], _cpu(), time.perf_counter()
        measuring = True
        parts: list[tuple[float, float]] = []  # (polls/s, CPU us/poll) per sub-window: the spread
        for _ in range(SUBWINDOWS):
            p0, c0, s0 = POLLS[0], _cpu(), time.perf_counter()
            await asyncio.sleep(window / SUBWINDOWS)
            p1, c1, s1 = POLLS[0], _cpu(), time.perf_counter()
            parts.append(((p1 - p0) / (s1 - s0), (c1 - c0) / max(1, p1 - p0) * 1e6))
        measuring = False
        polls1, cpu1, t1 = POLLS[0], _cpu(), time.perf_counter()
    lags = [tick.late for tick in gaps.ticks]
    worst = max(gaps.ticks, key=lambda tick: tick.late, default=None)
    ramp_worst = max(ramp.ticks, key=lambda tick: tick.late, default=None)

    result: dict[str, Any] = {
        "n": n,
        "kind": kind,
        "greenback": use_greenback,
        "window_s": t1 - t0,
        "polls": polls1 - polls0,
        "polls_per_s": (polls1 - polls0) / (t1 - t0),
        "cpu_s": cpu1 - cpu0,
        "cpu_per_poll_us": (cpu1 - cpu0) / max(1, polls1 - polls0) * 1e6,
        "cpu_util": (cpu1 - cpu0) / (t1 - t0),
        "parts_polls_per_s": [pp for pp, _ in parts],
        "parts_cpu_per_poll_us": [cc for _, cc in parts],
        "lag_ms": {
            "p50": percentile(lags, 50) * 1000,
            "p99": percentile(lags, 99) * 1000,
            "max": (max(lags) if lags else float("nan")) * 1000,
            "samples": len(lags),
            "over_200ms": sum(1 for lag in lags if lag >= 0.2),
            "worst_gc_ms": (worst.gc if worst else 0.0) * 1000,
            "worst_stack": worst.stack if worst else "",
        },
        "ramp_lag_ms": {
            "max": (ramp_worst.late if ramp_worst else float("nan")) * 1000,
            "worst_gc_ms": (ramp_worst.gc if ramp_worst else 0.0) * 1000,
            "worst_stack": ramp_worst.stack if ramp_worst else "",
            "gc_total_ms": sum(tick.gc for tick in ramp.ticks) * 1000,
        },
        "full_gc_ms": full_gc_s * 1000,
        "setup_pause_ms": setup_pause_s * 1000,
        "rss_before_mb": rss_before / 2**20,
        "rss_after_mb": rss_after / 2**20,
        "bytes_per_trigger": (rss_after - rss_before) / n,
        "events": len(events),
        "ended_early": sum(1 for t in tasks if t.done()),
        "first_error": next((repr(t.exception()) for t in tasks if t.done() and t.exception()), None),
        "gc_tracked_objects_per_trigger": tracked / n,
        "gc": {
            str(gen): {
                "count": sum(1 for g, _ in gc_pauses if g == gen),
                "seconds": sum(d for g, d in gc_pauses if g == gen),
                "max_ms": 1000 * max((d for g, d in gc_pauses if g == gen), default=0.0),
            }
            for gen in (0, 1, 2)
        },
        "warmup_polls": polls0,
        "all_started_s": all_started,
        "started": started_count,
    }

    baseline_cpu = args.get("baseline_cpu_per_poll_us")
    missed = result["lag_ms"]["p99"] >= LAG_TARGET_MS or (
        baseline_cpu and result["cpu_per_poll_us"] > CPU_RATIO_TARGET * float(baseline_cpu)
    )
    profiled = not kind.startswith("baseline") and args.get("profile_seconds")
    if profiled and (missed or args.get("profile_always")):
        out = Path(args["profile_out"])
        cpu_p0, polls_p0 = _cpu(), POLLS[0]
        result["profile_error"] = await _profile_self(float(args["profile_seconds"]), out)
        result["profile_cpu_per_poll_us"] = (_cpu() - cpu_p0) / max(1, POLLS[0] - polls_p0) * 1e6
        result["profile_file"] = str(out)

    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return result


def _worker(argv: list[str]) -> None:
    args = json.loads(argv[0])
    result = asyncio.run(_worker_main(args))
    Path(args["out"]).write_text(json.dumps(result))


def _run_worker(args: dict[str, Any], timeout: float) -> dict[str, Any]:
    out = Path(args["out"])
    cmd = [sys.executable, "-m", "benchmarks.trigger_capacity", "--worker", json.dumps(args)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        cmd, cwd=REPO, env=env, timeout=timeout, capture_output=True, text=True, check=False
    )
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(
            f"worker {args['kind']} n={args['n']} failed ({done.returncode}):\n{done.stderr[-3000:]}"
        )
    return dict(json.loads(out.read_text()))


# -- py-spy output ------------------------------------------------------------------------------------

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path})"


_OURS = ("airflow_provider/", "executors/", "asyncio/", "benchmarks/", "dataclasses", "json/", "contextlib")


def summarize_profile(path: Path, top: int = 16, *, seconds: float | None = None, rate: int = 100) -> str:
    """Where the event-loop thread spends its busy time, from py-spy's raw native stacks (--threads).

    The loop thread is the one whose stacks reach ``run_forever`` (or greenback's trampoline: in
    Airflow's triggerer each trigger runs in a greenlet). Its samples waiting in the selector are
    idle. Busy samples are split into the cyclic garbage collector (``gc_collect_main`` anywhere on
    the stack: only --native shows it) and the rest, broken down by function. Samples of the
    default executor's threads running a work item (``asyncio.to_thread``) are reported apart.
    """
    samples: list[tuple[str, list[str], int]] = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        thread, _, rest = stack.partition(";")
        samples.append((thread, [_short(f) for f in rest.split(";") if f.strip()], int(count_text)))
    loop_threads = {
        thread
        for thread, frames, _ in samples
        if any("run_forever" in f or "trampoline (greenback" in f for f in frames)
    }
    busy = idle = gc_samples = thread_samples = 0
    incl_counts: collections.Counter[str] = collections.Counter()
    gc_sites: collections.Counter[str] = collections.Counter()
    thread_counts: collections.Counter[str] = collections.Counter()
    for thread, frames, count in samples:
        if thread not in loop_threads:
            if any("_WorkItem.run" in f for f in frames):
                thread_samples += count
                for frame in set(frames):
                    if any(k in frame for k in ("executors/", "airflow_provider/", "fsspec/", "psutil/")):
                        thread_counts[frame] += count
            continue
        if any("select (selectors.py)" in f for f in frames):
            idle += count
            continue
        busy += count
        if any(f.startswith("gc_collect") for f in frames):
            gc_samples += count
            python_frames = [f for f in frames if any(k in f for k in _OURS)]
            if python_frames:
                gc_sites[python_frames[-1]] += count
            continue
        for frame in set(frames):
            incl_counts[frame] += count
    if not busy:
        return "(no busy samples of the event-loop thread)"
    rest = busy - gc_samples
    span = f" of the {seconds:g} s sampled" if seconds else ""
    out = [
        f"Event-loop thread: {busy} busy samples at {rate} Hz (about {busy / rate:.1f} s of CPU{span}; "
        f"py-spy drops most idle samples). **Cyclic GC (`gc_collect_main`): "
        f"{100 * gc_samples / busy:.1f} % of the busy samples.**",
        "",
        "Python frames that were allocating when a collection started (GC samples):",
        "",
        "| % of GC | allocation site |",
        "|---:|---|",
    ]
    out += [f"| {100 * c / max(1, gc_samples):.1f} | `{f}` |" for f, c in gc_sites.most_common(8)]
    out += [
        "",
        f"The other {rest} busy samples (no GC on the stack), by function anywhere on the stack:",
        "",
        "| % of non-GC busy | function |",
        "|---:|---|",
    ]
    skip = ("run (asyncio/runners.py)", "Runner.run", "run_until_complete", "run_forever", "_run_once",
            "<module>", "_worker (benchmarks", "Handle._run")  # fmt: skip
    interesting = [
        (f, c)
        for f, c in incl_counts.most_common()
        if any(k in f for k in _OURS) and not any(k in f for k in skip)
    ]
    out += [f"| {100 * c / max(1, rest):.1f} | `{f}` |" for f, c in interesting[:top]]
    out += [
        "",
        "(Leaf frames are left out on purpose: with --native, py-spy stops the thread through ptrace and "
        "its leaves lean toward system calls such as `getpid`, which costs about 0.15 us here.)",
    ]
    if thread_samples:
        out += [
            "",
            f"Worker threads (`asyncio.to_thread`) were inside a work item (running, or waiting on I/O or a "
            f"lock) in {thread_samples} samples (loop thread busy: {busy}); those work items were in:",
            "",
            "| % of worker-thread samples | function |",
            "|---:|---|",
        ]
        out += [f"| {100 * c / thread_samples:.1f} | `{f}` |" for f, c in thread_counts.most_common(10)]
    return "\n".join(out)


# -- part A driver -------------------------------------------------------------------------------------


def run_in_process(quick: bool, report: Report, workdir: Path) -> None:
    sizes = QUICK_SIZES if quick else SIZES
    warmup = QUICK_WARMUP if quick else WARMUP
    results: dict[tuple[int, str, bool], dict[str, Any]] = {}
    largest = max(sizes)
    plan = [(n, kind, False) for n in sizes for kind in ("baseline", "trigger")]
    plan += [(largest, "baseline", True), (largest, "trigger", True)]
    plan += [(largest, "baseline+output", False), (largest, "trigger+output", False)]
    if os.environ.get("BENCH_CAPACITY_ONLY") == "output":  # the live-output figures alone
        sizes = (largest,)  # type: ignore[assignment]
        kinds = ("baseline", "trigger", "baseline+output", "trigger+output")
        plan = [(largest, kind, False) for kind in kinds]
    for n, kind, gb in plan:
        window = QUICK_WINDOW if quick else (WINDOW if n == largest and not gb else SMALL_WINDOW)
        data_dir = workdir / f"data-{n}-{kind}-{int(gb)}"
        args: dict[str, Any] = {
            "n": n,
            "kind": kind,
            "greenback": gb,
            "window": window,
            "warmup": warmup,
            "data_dir": str(data_dir),
            "out": str(workdir / f"result-{n}-{kind}-{int(gb)}.json"),
        }
        if kind == "trigger" and n == largest and not gb:
            args["baseline_cpu_per_poll_us"] = results[(n, "baseline", False)]["cpu_per_poll_us"]
            args["profile_seconds"] = QUICK_PROFILE_SECONDS if quick else PROFILE_SECONDS
            args["profile_out"] = str(BENCH_DIR / ".raw" / "trigger_capacity-py-spy.txt")
            Path(args["profile_out"]).parent.mkdir(exist_ok=True)
        if kind == "trigger+output":
            args["baseline_cpu_per_poll_us"] = results[(n, "baseline", False)]["cpu_per_poll_us"]
            args["profile_seconds"] = QUICK_PROFILE_SECONDS if quick else PROFILE_SECONDS
            args["profile_out"] = str(BENCH_DIR / ".raw" / "trigger_capacity-output-py-spy.txt")
        log(
            f"trigger_capacity: {kind}{' +greenback' if gb else ''} n={n} "
            f"({warmup:g}s warm-up, {window:g}s window)"
        )
        res = _run_worker(args, timeout=warmup + window + 240)
        results[(n, kind, gb)] = res
        log(
            f"  polls/s={res['polls_per_s']:.0f} cpu/poll={res['cpu_per_poll_us']:.1f}us "
            f"cpu={res['cpu_util']:.2f} lag p99={res['lag_ms']['p99']:.1f}ms "
            f"mem/trigger={res['bytes_per_trigger'] / 1024:.1f}KiB"
        )
        shutil.rmtree(data_dir, ignore_errors=True)
        if res["ended_early"] or res["started"] < n:
            raise RuntimeError(
                f"{kind} n={n}: {res['started']} started, {res['ended_early']} ended early: "
                f"{res['first_error']}"
            )

    rows = [
        "| N | kind | all started after | polls/s (sub-windows min - max) | CPU us/poll (min - max) | "
        "CPU use (cores) | lag p50 ms | lag p99 ms | lag max ms (of it GC) | ramp: worst gap ms (of it GC) | "
        "KiB/trigger | GC objects/trigger | one full GC pass | GC time in window | "
        "full (gen2) GCs, longest |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (n, kind, gb), r in sorted(results.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1])):
        lag = r["lag_ms"]
        rows.append(
            f"| {n:,} | {kind}{' + greenback portal' if gb else ''} | {r['all_started_s']:.1f} s | "
            f"{fmt(r['polls_per_s'])} ({_spread(r['parts_polls_per_s'])}) | "
            f"{fmt(r['cpu_per_poll_us'])} ({_spread(r['parts_cpu_per_poll_us'])}) | {r['cpu_util']:.2f} | "
            f"{fmt(lag['p50'])} | {fmt(lag['p99'])} | {fmt(lag['max'])} ({fmt(lag['worst_gc_ms'])}) | "
            f"{fmt(r['ramp_lag_ms']['max'])} ({fmt(r['ramp_lag_ms']['worst_gc_ms'])}) | "
            f"{fmt(r['bytes_per_trigger'] / 1024)} | "
            f"{fmt(r['gc_tracked_objects_per_trigger'])} | {fmt(r['full_gc_ms'])} ms | "
            f"{100 * _gc_seconds(r) / r['window_s']:.0f} % | "
            f"{r['gc']['2']['count']}, {fmt(r['gc']['2']['max_ms'])} ms |"
        )

    for n in sizes:
        t, b = results[(n, "trigger", False)], results[(n, "baseline", False)]
        judged = n == largest
        report.add(
            f"in-process, N={n:,}: polls per second sustained",
            t["polls_per_s"],
            "polls/s",
            baseline=b["polls_per_s"],
            baseline_label="sleep-only coroutines",
            notes=f"ideal {n / POLL_INTERVAL:,.0f}",
        )
        report.add(
            f"in-process, N={n:,}: CPU per poll",
            t["cpu_per_poll_us"],
            "us",
            baseline=b["cpu_per_poll_us"],
            baseline_label="sleep-only",
            target=f"<= {CPU_RATIO_TARGET:g}x baseline" if judged else "-",
            met=(t["cpu_per_poll_us"] <= CPU_RATIO_TARGET * b["cpu_per_poll_us"]) if judged else None,
        )
        report.add(
            f"in-process, N={n:,}: event-loop lag p99",
            t["lag_ms"]["p99"],
            "ms",
            baseline=b["lag_ms"]["p99"],
            baseline_label="sleep-only",
            target=f"< {LAG_TARGET_MS:g} ms" if judged else "-",
            met=(t["lag_ms"]["p99"] < LAG_TARGET_MS) if judged else None,
            notes=f"p50 {fmt(t['lag_ms']['p50'])} ms; 1 run, {t['lag_ms']['samples']:,} ticks",
        )
        report.add(
            f"in-process, N={n:,}: longest event-loop stall in the window",
            t["lag_ms"]["max"],
            "ms",
            baseline=b["lag_ms"]["max"],
            baseline_label="sleep-only, same run",
            target=f"< {STALL_TARGET_MS:g} ms" if judged else "-",
            met=(t["lag_ms"]["max"] < STALL_TARGET_MS) if judged else None,
            notes=(
                f"of it GC {fmt(t['lag_ms']['worst_gc_ms'])} ms; ticks >= 200 ms: "
                f"{t['lag_ms']['over_200ms']}; ramp's worst gap {fmt(t['ramp_lag_ms']['max'])} ms "
                f"(GC {fmt(t['ramp_lag_ms']['worst_gc_ms'])} ms), baseline's "
                f"{fmt(b['ramp_lag_ms']['max'])} ms; one full GC pass {fmt(t['full_gc_ms'])} ms "
                f"(baseline {fmt(b['full_gc_ms'])} ms)"
            ),
        )
        report.add(
            f"in-process, N={n:,}: memory per trigger",
            t["bytes_per_trigger"] / 1024,
            "KiB",
            baseline=b["bytes_per_trigger"] / 1024,
            baseline_label="sleep-only + same kwargs",
            target=f"<= {MEMORY_RATIO_TARGET:g}x baseline" if judged else "-",
            met=(t["bytes_per_trigger"] <= MEMORY_RATIO_TARGET * b["bytes_per_trigger"]) if judged else None,
            notes="RSS; 1 run",
        )
    o, t, b = (results[(largest, kind, False)] for kind in ("trigger+output", "trigger", "baseline"))
    lines_per_copy = OUTPUT_RATE * DEFAULT_POLICY.output_interval
    streaming = (
        f"each execution printing {OUTPUT_RATE:g} lines/s, copied every {DEFAULT_POLICY.output_interval:g} s"
    )
    report.add(
        f"in-process, N={largest:,}, live output ({streaming}): CPU per poll",
        o["cpu_per_poll_us"],
        "us",
        baseline=b["cpu_per_poll_us"],
        baseline_label="sleep-only, same run",
        target=f"<= {CPU_RATIO_TARGET:g}x baseline",
        met=o["cpu_per_poll_us"] <= CPU_RATIO_TARGET * b["cpu_per_poll_us"],
        notes=(
            f"without output {fmt(t['cpu_per_poll_us'])} us; ~{lines_per_copy:g} lines per copy, one log "
            "record per copy through Airflow's structlog processors (most of the cost) and a plain file "
            "handler; the cursor written every 30 s, all triggers' writes in one thread"
        ),
    )
    floor = results[(largest, "baseline+output", False)]
    report.add(
        f"in-process, N={largest:,}, live output: CPU per poll, beside the bare trigger logging the same",
        o["cpu_per_poll_us"],
        "us",
        baseline=floor["cpu_per_poll_us"],
        baseline_label="sleep-only trigger logging the same block every "
        f"{DEFAULT_POLICY.output_interval:g} s through the same sink and logger, same run",
        notes="what Airflow's logging of this output costs whoever copies it: ours over that floor "
        "is the copy's own cost (read, cursor, scheduling)",
    )
    report.add(
        f"in-process, N={largest:,}, live output: event-loop lag p99",
        o["lag_ms"]["p99"],
        "ms",
        baseline=b["lag_ms"]["p99"],
        baseline_label="sleep-only, same run",
        target=f"< {LAG_TARGET_MS:g} ms",
        met=o["lag_ms"]["p99"] < LAG_TARGET_MS,
        notes=f"max {fmt(o['lag_ms']['max'])} ms (baseline {fmt(b['lag_ms']['max'])} ms); 1 run",
    )
    report.add(
        f"in-process, N={largest:,}, live output: memory per trigger",
        o["bytes_per_trigger"] / 1024,
        "KiB",
        baseline=t["bytes_per_trigger"] / 1024,
        baseline_label="ours without output, same run",
        notes="RSS; 1 run",
    )
    if (largest, "trigger", True) in results:
        t, b = results[(largest, "trigger", True)], results[(largest, "baseline", True)]
        report.add(
            f"in-process + greenback portal (as run_trigger), N={largest:,}: CPU per poll",
            t["cpu_per_poll_us"],
            "us",
            baseline=b["cpu_per_poll_us"],
            baseline_label="sleep-only + portal",
            notes=f"lag p99 {fmt(t['lag_ms']['p99'])} ms (baseline {fmt(b['lag_ms']['p99'])} ms)",
        )

    details = ["#### In one process, one event loop\n", "\n".join(rows), ""]
    windows = (
        f"{QUICK_WINDOW:g} s"
        if quick
        else f"{WINDOW:g} s at N={largest:,}, {SMALL_WINDOW:g} s at the smaller N and for the greenback pair"
    )
    details.append(
        f"Window {windows}, after every trigger had started and polled once plus {warmup:g} s; "
        f"poll interval {POLL_INTERVAL:g} s (jitter 20 %). "
        "CPU is the whole process (the loop plus the default thread pool). Memory: RSS after warm-up minus "
        "RSS before the trigger kwargs were built, divided by N (the baseline keeps the same kwargs alive). "
        "GC objects: objects tracked by the cyclic garbage collector after warm-up, divided by N (whole "
        "process). GC time: the collector's own pauses during the window (``gc.callbacks``); a full "
        "collection walks every tracked object of the process, and the event loop stands still meanwhile."
    )
    big = results[(largest, "trigger", False)]
    for kind in ("trigger", "baseline"):
        r = results[(largest, kind, False)]
        for what, lag in (("window", r["lag_ms"]), ("ramp", r["ramp_lag_ms"])):
            if lag.get("worst_stack"):
                details.append(
                    f"\nN={largest:,} {kind}, the {what}'s worst gap ({fmt(lag['max'])} ms, of it GC "
                    f"{fmt(lag['worst_gc_ms'])} ms): the loop thread was in (harness/loop_gaps.py "
                    f"watchdog)\n\n```\n{lag['worst_stack'].rstrip()}\n```"
                )
    if big.get("profile_file"):
        details.append("")
        details.append(
            f"#### Where the time goes at N={largest:,} (py-spy, {args_profile_seconds(quick):g} s)\n"
        )
        if big.get("profile_error"):
            details.append(f"Profiling failed: {big['profile_error']}")
        else:
            details.append(summarize_profile(Path(big["profile_file"]), seconds=args_profile_seconds(quick)))
            details.append(
                f"\n(CPU per poll while py-spy sampled: {fmt(big['profile_cpu_per_poll_us'])} us; raw stacks "
                "in `benchmarks/.raw/trigger_capacity-py-spy.txt`.)"
            )
    report.details += "\n".join(details) + "\n"


def _spread(values: list[float]) -> str:
    return f"{fmt(min(values))} - {fmt(max(values))}" if values else "-"


def _gc_seconds(result: dict[str, Any]) -> float:
    return float(sum(g["seconds"] for g in result["gc"].values()))


def args_profile_seconds(quick: bool) -> float:
    return QUICK_PROFILE_SECONDS if quick else PROFILE_SECONDS


# =====================================================================================================
# Part B: a real airflow triggerer
# =====================================================================================================


REAL_STEPS, QUICK_REAL_STEPS = (1_000, 5_000), (50, 150)
"""Deferred tasks held at each step: first the bare baseline, then ours (the same counts).

``BENCH_REAL_STEPS=1000,2000`` overrides it. Both kinds start from the triggerer: the scheduler
defers each task itself (ours: unmapped tasks with static arguments and ``start_from_trigger``),
no worker turn, so a step's ramp is the scheduler's and the triggerer's pace, not a worker's (it
was 1.8-4 tasks a second when ours started in a worker)."""
REAL_MAX_CONCURRENT, QUICK_REAL_MAX_CONCURRENT = 250, 25
REAL_PARALLELISM = 16
REAL_WINDOW, QUICK_REAL_WINDOW = 60.0, 15.0
REAL_SETTLE, QUICK_REAL_SETTLE = 60.0, 10.0
"""Seconds between a step's ramp and its window, for both kinds: the window measures tasks being
held, not the ramp's tail (ours: the starts still answered NOT_READY back off 1, 2, 4, ... 60 s)."""
REAL_SUBWINDOWS = 4
REAL_IDLE_WINDOW, QUICK_REAL_IDLE_WINDOW = 15.0, 5.0
REAL_RAMP_LIMIT = 900.0
REAL_PROFILE_SECONDS, QUICK_REAL_PROFILE_SECONDS = 20.0, 5.0
BLOCKED = "async thread was blocked"
RAMP_PROFILE = BENCH_DIR / ".raw" / "real_triggerer-ramp-py-spy.txt"
BARE_DAGS = ("bench_triggerer_sleep", "bench_triggerer_sleep_more")
OUR_DAGS = ("bench_triggerer_load", "bench_triggerer_load")
OUR_CHUNK = 10
"""Tasks per run of ours: a step of N triggers N / OUR_CHUNK runs (see bench_dags.py)."""


def _count_in_log(path: Path, needle: str) -> int:
    try:
        return path.read_text(errors="replace").count(needle)
    except OSError:
        return 0


def _blocked_seconds(path: Path) -> list[float]:
    """The durations of the triggerer's 'async thread was blocked for X seconds' warnings, in order."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [float(m) for m in re.findall(r"async thread was blocked for ([\d.]+) seconds", text)]


def _triggers_running(stack: Any, runs: list[tuple[str, str]]) -> int:
    """Triggers of these DAGs that a triggerer started (each writes its task's trigger log)."""
    total = 0
    for dag_id in dict.fromkeys(d for d, _ in runs):
        root = Path(stack.home) / "logs" / f"dag_id={dag_id}"
        total += sum(1 for _ in root.glob("run_id=*/task_id=*/**/attempt=*.log.trigger.*.log"))
    return total


def _submitted(stack: Any, dag_id: str) -> int:
    """Executions of ``dag_id`` submitted so far (a ``task.pb`` in their folder)."""
    from executors.data.storage import path_segment

    return sum(1 for _ in (Path(stack.data_dir) / path_segment(dag_id)).rglob("task.pb"))


def _runner_pid(pid: int) -> int | None:
    """The trigger runner: the child of the ``airflow triggerer`` process that runs the triggers."""
    import psutil

    try:
        for child in psutil.Process(pid).children(recursive=True):
            if "triggerer" in " ".join(child.cmdline()):
                return int(child.pid)
    except psutil.Error:
        return None
    return None


def _tree_cpu_by_process(pid: int) -> dict[int, tuple[str, float]]:
    import psutil

    out: dict[int, tuple[str, float]] = {}
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return out
    for proc in procs:
        try:
            times = proc.cpu_times()
            out[proc.pid] = (" ".join(proc.cmdline())[:80], times.user + times.system)
        except psutil.Error:
            continue
    return out


def _tree_total(cpu: dict[int, tuple[str, float]]) -> float:
    return sum(c for _, c in cpu.values())


def _deferred(stack: Any, runs: list[tuple[str, str]]) -> int:
    from benchmarks.stack import count_in_state

    total = 0
    # One request per DAG ("~": all its runs, every one of them ours) when it has many runs.
    many = {dag_id for dag_id, _ in runs if sum(1 for d, _ in runs if d == dag_id) > 1}
    queries = [(d, "~") for d in sorted(many)] + [(d, r) for d, r in runs if d not in many]
    for dag_id, run_id in queries:
        for attempt in range(5):  # a busy api-server may time out once
            try:
                total += count_in_state(stack, dag_id, run_id, "deferred")
                break
            except Exception as exc:
                log(f"  (task count: {type(exc).__name__}, again)")
                time.sleep(2 + attempt)
    return total


def _window(
    pid: int, seconds: float, parts: int
) -> tuple[float, list[float], dict[int, tuple[str, float]], dict[int, tuple[str, float]]]:
    """The triggerer tree's CPU (cores) over ``seconds``, and over each of ``parts`` sub-windows."""
    first = cpu = _tree_cpu_by_process(pid)
    t_first = t = time.perf_counter()
    parts_cpu = []
    for _ in range(parts):
        time.sleep(seconds / parts)
        now_cpu, now = _tree_cpu_by_process(pid), time.perf_counter()
        parts_cpu.append((_tree_total(now_cpu) - _tree_total(cpu)) / (now - t))
        cpu, t = now_cpu, now
    return (_tree_total(cpu) - _tree_total(first)) / (t - t_first), parts_cpu, first, cpu


def _hold(
    stack: Any,
    pid: int,
    dag_id: str,
    target: int,
    runs: list[tuple[str, str]],
    window: float,
    label: str,
    ramp_profile: Path | None = None,
    settle: float = REAL_SETTLE,
) -> dict[str, Any]:
    """Trigger ``dag_id`` (on top of ``runs``), wait until ``target`` tasks are deferred, then
    measure the triggerer over ``window``."""
    from benchmarks.stack import start_run

    triggerer_log = stack.component_logs / "triggerer.log"
    blocked0 = _count_in_log(triggerer_log, BLOCKED)
    ramp_cpu0 = _tree_total(_tree_cpu_by_process(pid))
    ramp_spy = None
    if ramp_profile is not None and (runner := _runner_pid(pid)) is not None:
        # py-spy over the whole ramp (stopped with SIGINT when it ends, at most REAL_RAMP_LIMIT)
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        ramp_spy = subprocess.Popen(
            [py_spy, "record", "--pid", str(runner), "--duration", str(int(REAL_RAMP_LIMIT)),
             "--rate", str(PROFILE_RATE), "--format", "raw", "--output", str(ramp_profile),
             "--native", "--threads"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(1)
    ours = dag_id in OUR_DAGS
    if ours:
        # Many runs of a small DAG; the ramp ends when every trigger has submitted its execution
        # (its task.pb is written): a deferred state alone is only the scheduler's part.
        have = sum(OUR_CHUNK for d, _ in runs if d == dag_id)
        first_id, started = start_run(stack, dag_id, f"{label}-0")
        run_ids = [(first_id, started)]
        for k in range(1, math.ceil((target - have) / OUR_CHUNK)):
            run_ids.append((f"{label}-{k}-{first_id[-8:]}", time.perf_counter()))
            stack.client.trigger(dag_id, run_ids[-1][0])
        started = run_ids[0][1]
        runs.extend((dag_id, run_id) for run_id, _ in run_ids)
        log(f"  {label}: {len(run_ids)} runs triggered in {time.perf_counter() - started:.0f}s")
    else:
        run_id, started = start_run(stack, dag_id, label)
        runs.append((dag_id, run_id))
    deferred = submitted = 0
    while time.perf_counter() - started < REAL_RAMP_LIMIT:
        if ours:
            submitted = _submitted(stack, dag_id)
            if submitted < target:
                time.sleep(3)
                continue
        deferred = _deferred(stack, runs)
        # ...and every trigger runs in the triggerer (its trigger log exists): the deferred state
        # is only the scheduler's part, the triggerer then loads each trigger (~10-100 a second)
        if deferred >= target and _triggers_running(stack, runs) >= target:
            break
        time.sleep(3)
    ramp_s = time.perf_counter() - started
    ramp_cpu = _tree_total(_tree_cpu_by_process(pid)) - ramp_cpu0
    if ramp_spy is not None:
        ramp_spy.send_signal(signal.SIGINT)
        try:
            ramp_spy.wait(timeout=60)
        except subprocess.TimeoutExpired:
            ramp_spy.kill()
    log(
        f"  {label}: {deferred:,} deferred ({submitted:,} submitted) after a {ramp_s:.0f}s ramp "
        f"(triggerer CPU {ramp_cpu:.0f}s)"
    )
    time.sleep(settle)
    blocked1 = _count_in_log(triggerer_log, BLOCKED)
    cpu, parts, cpu0, cpu1 = _window(pid, window, REAL_SUBWINDOWS)
    blocked2 = _count_in_log(triggerer_log, BLOCKED)
    blocked_s = _blocked_seconds(triggerer_log)
    deferred_after = _deferred(stack, runs)
    running_execs = sum(1 for _ in (stack.state_root / "running").glob("*.json"))
    per_proc = sorted(((cpu1[p][1] - cpu0.get(p, ("", 0.0))[1]) / window, cpu1[p][0], p) for p in cpu1)[::-1]
    log(
        f"  {label}: window {window:g}s: triggerer CPU {cpu:.3f} cores "
        f"(sub-windows {min(parts):.3f}-{max(parts):.3f}); blocked warnings ramp {blocked1 - blocked0}, "
        f"window {blocked2 - blocked1}; {deferred_after:,} still deferred"
    )
    return {
        "label": label, "target": target, "deferred": min(deferred, deferred_after), "ramp_s": ramp_s,
        "ramp_cpu_s": ramp_cpu, "cpu": cpu, "parts": parts, "blocked_ramp": blocked1 - blocked0,
        "blocked_window": blocked2 - blocked1, "running_execs": running_execs, "per_proc": per_proc[:3],
        "blocked_ramp_s": blocked_s[blocked0:blocked1], "blocked_window_s": blocked_s[blocked1:blocked2],
        "reached": deferred >= target,
    }  # fmt: skip


def run_real_triggerer(quick: bool, report: Report, workdir: Path) -> None:
    """Part B: one real ``airflow triggerer`` holding N deferred tasks, N = 1,000 then 5,000: first
    Airflow's bare ``DateTimeTrigger`` (the baseline), then our ``ExecutorOperator`` tasks.

    Baseline DAGs ``bench_triggerer_sleep`` (+ ``_more`` for the second step): a tiny operator that
    starts from the triggerer on ``DateTimeTrigger`` (until 2100). Ours, ``bench_triggerer_load``
    (+ ``_more``): unmapped ExecutorOperator tasks over the local executor, command ``sleep 900``,
    ``start_from_trigger``: the scheduler defers them and the trigger submits the execution (no
    worker); the local executor's ``max_concurrent`` bounds the live processes
    (each execution is a small supervisor plus its ``sleep``), the other tasks are deferred too and
    wait NOT_READY with backoff; ours poll at the provider's default interval (5 s). The baseline
    runs are marked failed (their triggers end) before ours start. Same triggerer, same stack, same
    windows, each ``REAL_SETTLE`` s after its ramp.
    """
    from benchmarks.stack import airflow_stack, fail_run

    steps = QUICK_REAL_STEPS if quick else REAL_STEPS
    if os.environ.get("BENCH_REAL_STEPS"):
        first_text, last_text = os.environ["BENCH_REAL_STEPS"].split(",")
        steps = (int(first_text), int(last_text))
    max_concurrent = QUICK_REAL_MAX_CONCURRENT if quick else REAL_MAX_CONCURRENT
    window = QUICK_REAL_WINDOW if quick else REAL_WINDOW
    settle = QUICK_REAL_SETTLE if quick else REAL_SETTLE
    idle_window = QUICK_REAL_IDLE_WINDOW if quick else REAL_IDLE_WINDOW
    first, last = steps
    env = {
        "BENCH_LOAD_TASKS": str(first),
        "BENCH_LOAD_MORE": str(last - first),
        "BENCH_LOAD_SLEEP": "900",
        "BENCH_LOAD_CHUNK": str(OUR_CHUNK),
        "AIRFLOW__CORE__MAX_MAP_LENGTH": str(max(1024, last)),
        # Airflow's default capacity is 1,000 triggers per triggerer; room for both kinds at once
        # while the baseline's triggers are being removed.
        "AIRFLOW__TRIGGERER__CAPACITY": str(2 * last + 100),
        "AIRFLOW__API__WORKERS": "2",
        # The DAG file parsed once (not every 10 s, which would load the machine throughout).
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
        "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "600",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600",
    }
    results: dict[tuple[str, int], dict[str, Any]] = {}
    RAMP_PROFILE.parent.mkdir(exist_ok=True)
    RAMP_PROFILE.unlink(missing_ok=True)
    # The provider's default poll interval: the stack's own default (1 s, for tests) would make
    # ours poll five times as often as a DAG author's tasks do.
    with airflow_stack(
        parallelism=REAL_PARALLELISM,
        env=env,
        local_executor={"max_concurrent": max_concurrent},
        poll_interval=DEFAULT_POLICY.interval,
    ) as stack:
        triggerer_log = stack.component_logs / "triggerer.log"
        pid = stack.procs["triggerer"].pid
        for dag_id in dict.fromkeys((*BARE_DAGS, *OUR_DAGS)):
            stack.client.wait_for_dag(dag_id, timeout=180)
        time.sleep(3)
        log(f"real triggerer: idle window {idle_window:g}s")
        idle_cpu, _, _, _ = _window(pid, idle_window, 1)

        for kind, dags in (("bare", BARE_DAGS), ("ours", OUR_DAGS)):
            runs: list[tuple[str, str]] = []
            for dag_id, target in zip(dags, steps, strict=True):
                log(f"real triggerer: {kind}, up to {target:,} deferred tasks ({dag_id})")
                ramp_profile = RAMP_PROFILE if (kind, target) == ("ours", last) else None
                results[(kind, target)] = _hold(
                    stack, pid, dag_id, target, runs, window, f"{kind}-{target}", ramp_profile, settle
                )
            if kind == "bare":
                for dag_id, run_id in runs:
                    fail_run(stack, dag_id, run_id)
                deadline = time.perf_counter() + 120
                while _deferred(stack, runs) and time.perf_counter() < deadline:
                    time.sleep(3)
                time.sleep(15)  # the triggerer drops the triggers of ended tasks
                log(f"  baseline runs failed; {_deferred(stack, runs)} still deferred")
        blocked_total = _count_in_log(triggerer_log, BLOCKED)

        big = results[("ours", last)]
        runner_pid = big["per_proc"][0][2]
        profile_out = BENCH_DIR / ".raw" / "real_triggerer-py-spy.txt"
        profile_out.parent.mkdir(exist_ok=True)
        profile_seconds = QUICK_REAL_PROFILE_SECONDS if quick else REAL_PROFILE_SECONDS
        profile_error = _profile_pid(runner_pid, profile_seconds, profile_out)
        loadavg = os.getloadavg()

    rows = [
        "| step | kind | deferred | ramp | triggerer CPU in the ramp | CPU over the window (cores) | "
        f"{REAL_SUBWINDOWS} sub-windows min - max | blocked warnings ramp / window | executions running |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for target in steps:
        bare, ours = results[("bare", target)], results[("ours", target)]
        for r in (bare, ours):
            rows.append(
                f"| {target:,} | {r['label'].split('-')[0]} | {r['deferred']:,} | {r['ramp_s']:.0f} s | "
                f"{r['ramp_cpu_s']:.0f} s | {r['cpu']:.3f} | {min(r['parts']):.3f} - {max(r['parts']):.3f} | "
                f"{r['blocked_ramp']} / {r['blocked_window']} | {r['running_execs'] if r is ours else '-'} |"
            )
        spread = f"{REAL_SUBWINDOWS} sub-windows of {window / REAL_SUBWINDOWS:g} s"
        report.add(
            f"real triggerer, {ours['deferred']:,} of our deferred tasks: triggerer CPU",
            ours["cpu"] * 100,
            "% of a core",
            baseline=bare["cpu"] * 100,
            baseline_label=f"same triggerer, {bare['deferred']:,} bare DateTimeTrigger tasks",
            target=f"<= {CPU_RATIO_TARGET:g}x baseline",
            met=bool(ours["reached"] and bare["reached"] and ours["cpu"] <= CPU_RATIO_TARGET * bare["cpu"]),
            notes=(
                f"1 run, {window:g} s window; {spread}: ours {100 * min(ours['parts']):.1f}-"
                f"{100 * max(ours['parts']):.1f} %, bare {100 * min(bare['parts']):.1f}-"
                f"{100 * max(bare['parts']):.1f} %; {ours['running_execs']} executions running, the rest "
                f"NOT_READY (max_concurrent={max_concurrent}); idle triggerer {100 * idle_cpu:.1f} %"
            ),
        )
        report.add(
            f"real triggerer, {ours['deferred']:,} of our deferred tasks: 'async thread was blocked' "
            "warnings, ramp + window",
            float(ours["blocked_ramp"] + ours["blocked_window"]),
            "",
            baseline=float(bare["blocked_ramp"] + bare["blocked_window"]),
            baseline_label="bare DateTimeTrigger tasks",
            target="0",
            met=ours["blocked_ramp"] + ours["blocked_window"] == 0,
            notes=(
                f"ramp {ours['blocked_ramp']} ({ours['ramp_s']:.0f} s), window {ours['blocked_window']} "
                f"({window:g} s); bare: ramp {bare['blocked_ramp']} ({bare['ramp_s']:.0f} s), window "
                f"{bare['blocked_window']}; ours blocked for (s): ramp "
                f"{', '.join(f'{x:g}' for x in ours['blocked_ramp_s'][:12]) or '-'}, window "
                f"{', '.join(f'{x:g}' for x in ours['blocked_window_s'][:12]) or '-'}"
            ),
        )
    proc_rows = ["| process (triggerer tree) | CPU over the window (cores) |", "|---|---:|"]
    proc_rows += [f"| `{cmd}` (pid {p}) | {cpu:.3f} |" for cpu, cmd, p in big["per_proc"]]
    report.details += (
        f"\n#### A real `airflow triggerer`: {first:,} then {last:,} deferred tasks, bare vs ours\n\n"
        f"Stack: api-server (2 workers), scheduler (LocalExecutor, parallelism {REAL_PARALLELISM}), "
        "dag-processor, triggerer (capacity "
        f"{env['AIRFLOW__TRIGGERER__CAPACITY']}) over SQLite (harness/airflow_stack.py). One triggerer "
        f"throughout: idle ({100 * idle_cpu:.1f} % of a core over {idle_window:g} s), then the baseline "
        f"(`bench_triggerer_sleep`: a tiny operator deferring on Airflow's `DateTimeTrigger` until 2100, "
        f"started from the triggerer by the scheduler, no worker) at {first:,} then {last:,} tasks, its "
        f"runs marked failed, then ours (`bench_triggerer_load`: `ExecutorOperator`, command `sleep 900`, "
        f"the provider's default poll interval (5 s; a running execution that the local executor's "
        f"exit watch watches is checked every 30 s, `PollPolicy.watched_interval`: its end wakes the "
        f"trigger at once), local executor "
        f"`max_concurrent={max_concurrent}`; unmapped tasks with "
        f"`start_from_trigger`: the scheduler defers them, the trigger submits the execution, no worker) "
        f"at the same counts. Each step: the ramp until all are deferred, {settle:g} s to settle, then a "
        f"{window:g} s window split into {REAL_SUBWINDOWS} sub-windows (the spread). "
        f"'async thread was blocked' warnings in the whole triggerer log: {blocked_total}. "
        f"Load average at the end: {loadavg[0]:.2f}.\n\n" + "\n".join(rows) + "\n\n"
        f"Busiest processes of the triggerer tree with {last:,} of ours:\n\n" + "\n".join(proc_rows) + "\n"
    )
    if RAMP_PROFILE.exists():
        report.details += (
            f"\nWhere the trigger runner spends its time during the ramp to {last:,} of ours "
            f"({big['ramp_s']:.0f} s; py-spy --native over the ramp; raw stacks in "
            f"`benchmarks/.raw/{RAMP_PROFILE.name}`):\n\n"
            + summarize_profile(RAMP_PROFILE, seconds=big["ramp_s"])
            + "\n"
        )
    report.details += f"\nWhere the trigger runner (pid {runner_pid}) spends its time with {last:,} of ours "
    report.details += f"(py-spy --native, {profile_seconds:g} s after the window):\n\n"
    if profile_error:
        report.details += f"Profiling failed: {profile_error}\n"
    else:
        report.details += summarize_profile(profile_out, seconds=profile_seconds) + "\n"


def run(quick: bool) -> Report:
    report = Report("1. triggerer capacity")
    workdir = Path(tempfile.mkdtemp(prefix="bench-capacity-"))
    try:
        parts = os.environ.get("BENCH_CAPACITY_PARTS", "in_process,real").split(",")
        if "in_process" in parts:
            run_in_process(quick, report, workdir)
        if "real" in parts:
            run_real_triggerer(quick, report, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return report


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker(sys.argv[2:])
    else:
        cli(run)
