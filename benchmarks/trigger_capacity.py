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
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import BENCH_DIR, REPO, Report, cli, fmt, log, percentile

SIZES, QUICK_SIZES = (1_000, 5_000, 10_000), (500, 1_000, 2_000)
WINDOW, QUICK_WINDOW = 30.0, 5.0
"""The window at the largest N, where the targets are judged."""
SMALL_WINDOW = 20.0
"""The window at the smaller N and for the greenback variant (to keep the suite under ~25 min)."""
WARMUP, QUICK_WARMUP = 5.0, 2.0
PROFILE_SECONDS, QUICK_PROFILE_SECONDS = 15.0, 5.0
POLL_INTERVAL = 1.0
LAG_TICK = 0.010
PROFILE_RATE = 100

LAG_TARGET_MS = 100.0
CPU_RATIO_TARGET = 2.0


# =====================================================================================================
# Part A: in one process (this module re-run as a subprocess: --worker)
# =====================================================================================================


def _prepare_folders(root: Path, n: int) -> list[str]:
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
            executor_id=MEMORY_ID,
            executor_config={},
            driver=DriverSnapshot(ctx, accepted=True),
            policy=policy,
        )
        # What the triggerer gets: the serialized kwargs, deserialized from the metadata DB.
        kwargs_list.append(json.dumps({"handle": handle.to_dict()}))
    return kwargs_list


MEMORY_ID = "bench-memory"
POLLS = [0]
SEEN: set[str] | None = set()
"""Owners that polled at least once, recorded during the warm-up only (then None: no cost)."""


def _register_memory_executor() -> None:
    from flyteidl.core import literals_pb2, tasks_pb2

    from executors import Executor, ExecutorInitializationParameters, TaskContext, TaskPhase, TaskStatus
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

    if MEMORY_ID not in default_registry.known_ids():
        default_registry.register(MemoryExecutor, source="benchmarks/trigger_capacity.py")


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
    serialized = _prepare_folders(root, n)
    cls: Any = ExecutorTrigger if kind == "trigger" else BaselineTrigger
    gc.collect()
    rss_before = _rss()

    kwargs_list = [json.loads(s) for s in serialized]
    del serialized
    triggers = [cls(**kw) for kw in kwargs_list]
    del kwargs_list
    events: list[Any] = []
    lags: list[float] = []
    measuring = False
    stop = False

    async def monitor() -> None:
        while not stop:
            start = time.perf_counter()
            await asyncio.sleep(LAG_TICK)
            if measuring:
                lags.append(time.perf_counter() - start - LAG_TICK)

    global SEEN
    gc_pauses: list[tuple[int, float]] = []
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        elif measuring:
            gc_pauses.append((int(info["generation"]), time.perf_counter() - gc_started[0]))

    gc.callbacks.append(on_gc)
    monitor_task = asyncio.create_task(monitor())
    started = time.perf_counter()
    tasks = [asyncio.create_task(_consume(t, use_greenback, events)) for t in triggers]
    # Warm-up: until every trigger has read its task.pb and polled once (at most 10 minutes), then
    # ``warmup`` seconds more so the first, synchronized polls spread out over the jitter.
    assert SEEN is not None
    while len(SEEN) < n and time.perf_counter() - started < 600:
        await asyncio.sleep(0.05)
    all_started = time.perf_counter() - started
    started_count = len(SEEN)
    SEEN = None
    await asyncio.sleep(warmup)
    gc.collect()
    rss_after = _rss()
    tracked = len(gc.get_objects())
    polls0, cpu0, t0 = POLLS[0], _cpu(), time.perf_counter()
    measuring = True
    await asyncio.sleep(window)
    measuring = False
    polls1, cpu1, t1 = POLLS[0], _cpu(), time.perf_counter()

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
        "lag_ms": {
            "p50": percentile(lags, 50) * 1000,
            "p99": percentile(lags, 99) * 1000,
            "max": (max(lags) if lags else float("nan")) * 1000,
            "samples": len(lags),
        },
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
    if kind == "trigger" and args.get("profile_seconds") and (missed or args.get("profile_always")):
        out = Path(args["profile_out"])
        cpu_p0, polls_p0 = _cpu(), POLLS[0]
        result["profile_error"] = await _profile_self(float(args["profile_seconds"]), out)
        result["profile_cpu_per_poll_us"] = (_cpu() - cpu_p0) / max(1, POLLS[0] - polls_p0) * 1e6
        result["profile_file"] = str(out)

    stop = True
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, monitor_task, return_exceptions=True)
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
        "| N | kind | all started after | polls/s | CPU us/poll | CPU use (cores) | lag p50 ms | "
        "lag p99 ms | lag max ms | KiB/trigger | GC objects/trigger | GC time in window | "
        "full (gen2) GCs, longest |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (n, kind, gb), r in sorted(results.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1])):
        lag = r["lag_ms"]
        rows.append(
            f"| {n:,} | {kind}{' + greenback portal' if gb else ''} | {r['all_started_s']:.1f} s | "
            f"{fmt(r['polls_per_s'])} | "
            f"{fmt(r['cpu_per_poll_us'])} | {r['cpu_util']:.2f} | {fmt(lag['p50'])} | {fmt(lag['p99'])} | "
            f"{fmt(lag['max'])} | {fmt(r['bytes_per_trigger'] / 1024)} | "
            f"{fmt(r['gc_tracked_objects_per_trigger'])} | {100 * _gc_seconds(r) / r['window_s']:.0f} % | "
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
            notes=f"p50 {fmt(t['lag_ms']['p50'])} ms, max {fmt(t['lag_ms']['max'])} ms",
        )
        report.add(
            f"in-process, N={n:,}: memory per trigger",
            t["bytes_per_trigger"] / 1024,
            "KiB",
            baseline=b["bytes_per_trigger"] / 1024,
            baseline_label="sleep-only + same kwargs",
        )
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


def _gc_seconds(result: dict[str, Any]) -> float:
    return float(sum(g["seconds"] for g in result["gc"].values()))


def args_profile_seconds(quick: bool) -> float:
    return QUICK_PROFILE_SECONDS if quick else PROFILE_SECONDS


# =====================================================================================================
# Part B: a real airflow triggerer
# =====================================================================================================


REAL_TASKS, QUICK_REAL_TASKS = 1_000, 50
REAL_MAX_CONCURRENT, QUICK_REAL_MAX_CONCURRENT = 250, 25
REAL_WINDOW, QUICK_REAL_WINDOW = 60.0, 15.0
REAL_IDLE_WINDOW, QUICK_REAL_IDLE_WINDOW = 15.0, 5.0
REAL_RAMP_LIMIT = 480.0
REAL_PROFILE_SECONDS, QUICK_REAL_PROFILE_SECONDS = 20.0, 5.0
BLOCKED = "async thread was blocked"


def _count_in_log(path: Path, needle: str) -> int:
    try:
        return path.read_text(errors="replace").count(needle)
    except OSError:
        return 0


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


def run_real_triggerer(quick: bool, report: Report, workdir: Path) -> None:
    """Part B: a real ``airflow triggerer`` carrying ``REAL_TASKS`` deferred ExecutorOperator tasks.

    DAG ``bench_triggerer_load`` (benchmarks/dags) maps ExecutorOperator over the local executor,
    command ``sleep 600``. The local executor's ``max_concurrent`` bounds the live processes (each
    execution is a small supervisor plus its ``sleep``); the other tasks are deferred too and wait
    NOT_READY with backoff. Baseline: the same triggerer's CPU over a window before the run.
    """
    from benchmarks.stack import airflow_stack, start_run, task_states

    n = QUICK_REAL_TASKS if quick else REAL_TASKS
    max_concurrent = QUICK_REAL_MAX_CONCURRENT if quick else REAL_MAX_CONCURRENT
    window = QUICK_REAL_WINDOW if quick else REAL_WINDOW
    idle_window = QUICK_REAL_IDLE_WINDOW if quick else REAL_IDLE_WINDOW
    env = {
        "BENCH_LOAD_TASKS": str(n),
        "BENCH_LOAD_SLEEP": "900",
        "AIRFLOW__CORE__MAX_MAP_LENGTH": str(max(1024, n)),
        "AIRFLOW__TRIGGERER__CAPACITY": str(max(1000, n)),
    }
    with airflow_stack(parallelism=8, env=env, local_executor={"max_concurrent": max_concurrent}) as stack:
        triggerer_log = stack.component_logs / "triggerer.log"
        pid = stack.procs["triggerer"].pid

        log(f"real triggerer: idle baseline window {idle_window:g}s")
        stack.client.wait_for_dag("bench_triggerer_load", timeout=120)
        time.sleep(3)
        cpu0, t0 = _tree_cpu_by_process(pid), time.perf_counter()
        time.sleep(idle_window)
        cpu1, t1 = _tree_cpu_by_process(pid), time.perf_counter()
        idle_cpu = (sum(c for _, c in cpu1.values()) - sum(c for _, c in cpu0.values())) / (t1 - t0)

        log(f"real triggerer: {n} mapped tasks (local executor max_concurrent={max_concurrent})")
        blocked_before_run = _count_in_log(triggerer_log, BLOCKED)
        run_id, started = start_run(stack, "bench_triggerer_load", "load")
        states: dict[str, int] = {}
        ramp_cpu0 = _tree_cpu_by_process(pid)
        while time.perf_counter() - started < REAL_RAMP_LIMIT:
            states = task_states(stack, "bench_triggerer_load", run_id)
            if states.get("deferred", 0) >= n:
                break
            time.sleep(5)
        ramp_s = time.perf_counter() - started
        ramp_cpu1 = _tree_cpu_by_process(pid)
        ramp_cpu = sum(c for _, c in ramp_cpu1.values()) - sum(c for _, c in ramp_cpu0.values())
        deferred_at_start = states.get("deferred", 0)
        log(f"  ramp {ramp_s:.0f}s: {states}")
        blocked_after_ramp = _count_in_log(triggerer_log, BLOCKED)
        time.sleep(5)

        running_execs = sum(1 for _ in (stack.state_root / "running").glob("*.json"))
        cpu0, t0 = _tree_cpu_by_process(pid), time.perf_counter()
        time.sleep(window)
        cpu1, t1 = _tree_cpu_by_process(pid), time.perf_counter()
        blocked_after_window = _count_in_log(triggerer_log, BLOCKED)
        states_after = task_states(stack, "bench_triggerer_load", run_id)
        load_cpu = (sum(c for _, c in cpu1.values()) - sum(c for _, c in cpu0.values())) / (t1 - t0)
        per_proc = sorted(
            (((cpu1[p][1] - cpu0.get(p, ("", 0.0))[1]) / (t1 - t0), cpu1[p][0], p) for p in cpu1),
            reverse=True,
        )
        # Where the busiest process of the tree (the trigger runner) spends its time: py-spy, after
        # the window so the window's figures are not disturbed.
        runner_pid = per_proc[0][2]
        profile_out = BENCH_DIR / ".raw" / "real_triggerer-py-spy.txt"
        profile_out.parent.mkdir(exist_ok=True)
        profile_seconds = QUICK_REAL_PROFILE_SECONDS if quick else REAL_PROFILE_SECONDS
        profile_error = _profile_pid(runner_pid, profile_seconds, profile_out)
        loadavg = os.getloadavg()
        log(f"  window {window:g}s: triggerer CPU {load_cpu:.2f} cores (idle {idle_cpu:.2f}); {states_after}")

    deferred = min(deferred_at_start, states_after.get("deferred", 0))
    report.add(
        f"real triggerer, {deferred:,} deferred tasks: triggerer CPU",
        load_cpu * 100,
        "% of a core",
        baseline=idle_cpu * 100,
        baseline_label="same triggerer, idle",
        notes=f"{running_execs} executions running, the rest NOT_READY (max_concurrent={max_concurrent})",
    )
    report.add(
        f"real triggerer, {deferred:,} deferred tasks: 'async thread was blocked' warnings in {window:g}s",
        float(blocked_after_window - blocked_after_ramp),
        "",
        target="0",
        met=blocked_after_window == blocked_after_ramp,
        notes=f"{blocked_after_ramp - blocked_before_run} during the {ramp_s:.0f}s ramp",
    )
    rows = ["| process (triggerer tree) | CPU over the window (cores) |", "|---|---:|"]
    rows += [f"| `{cmd}` (pid {pid}) | {cpu:.3f} |" for cpu, cmd, pid in per_proc[:4]]
    report.details += (
        f"\n#### A real `airflow triggerer` with {n:,} deferred ExecutorOperator tasks\n\n"
        f"Stack: api-server, scheduler (LocalExecutor, parallelism 8), dag-processor, triggerer over SQLite "
        f"(harness/airflow_stack.py). DAG `bench_triggerer_load`: {n:,} mapped `ExecutorOperator` "
        f"instances, command `sleep 900`, poll interval 1 s, local executor "
        f"`max_concurrent={max_concurrent}` "
        f"(each running execution is a supervisor process plus `sleep`; the others are deferred too and "
        f"poll NOT_READY with backoff up to 60 s). Ramp (trigger to {deferred_at_start:,} deferred): "
        f"{ramp_s:.0f} s, triggerer CPU during the ramp {ramp_cpu:.1f} s. "
        f"Window {window:g} s after the ramp; "
        f"task states at its end: {states_after}; executions running: {running_execs}. "
        f"Load average at the end: {loadavg[0]:.2f}.\n\n" + "\n".join(rows) + "\n"
    )
    report.details += f"\nWhere the trigger runner (pid {runner_pid}) spends its time (py-spy --native, "
    report.details += f"{profile_seconds:g} s after the window):\n\n"
    if profile_error:
        report.details += f"Profiling failed: {profile_error}\n"
    else:
        report.details += summarize_profile(profile_out, seconds=profile_seconds) + "\n"


def run(quick: bool) -> Report:
    report = Report("1. triggerer capacity")
    workdir = Path(tempfile.mkdtemp(prefix="bench-capacity-"))
    try:
        run_in_process(quick, report, workdir)
        run_real_triggerer(quick, report, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return report


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker(sys.argv[2:])
    else:
        cli(run)
