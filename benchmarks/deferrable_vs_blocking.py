"""Benchmark 5: deferrable vs blocking on a real Airflow stack with 4 worker slots.

Stack (harness/airflow_stack.py through benchmarks/stack.py): api-server, scheduler with the
LocalExecutor (``[core] parallelism = 4``: four worker slots), dag-processor, triggerer, SQLite.
DAGs (benchmarks/dags/bench_dags.py): 32 unmapped ExecutorOperator tasks each, ``sleep_<i>``
running ``sleep 20`` on the provider's local executor, poll interval 1 s; they differ only in
per-task arguments:

* ``bench_deferrable_trigger``: start and end in the triggerer (``start_from_trigger``,
  ``end_from_trigger``: the defaults): the scheduler defers each task straight into the
  triggerer, whose trigger submits the execution and ends the task; no worker turn at all;
* ``bench_deferrable_end_trigger``: a worker starts the execution and defers, the trigger ends the
  task (``start_from_trigger=False``);
* ``bench_deferrable_worker``: the worker path (both False): a worker starts and defers, a worker
  resumes for ``execute_complete``;
* ``bench_blocking``: ``deferrable=False``, the baseline: the worker waits in its slot;
* ``bench_deferrable_airflow``: Airflow's own floor, no provider code at all: the same 32 tasks
  deferred by the scheduler onto Airflow's ``TimeDeltaTrigger`` (20 s, ``end_from_trigger``), so
  the scheduler's deferral, the triggerer's pick-up (its loops run once a second) and its end of
  the task around a bare wait. Ours is also given against it.

Each DAG run is timed from the trigger request (REST) to the run's ``end_date`` as the metadata DB
records it (same clock), so the benchmark's own polling (every 0.5 s) adds nothing to either side;
the moment the poll saw the run over is kept beside it. The runs go one after the other on the
same stack, the deferrable variants (each three times in a full run, interleaved; the figure is
their median) before the blocking baseline.

A blocking task holds its worker slot for its whole 20 s, so 32 tasks on 4 slots need at least
8 x 20 = 160 s; a deferrable one holds a slot only to start and to finish, or never. Target: the
run that starts and ends in the triggerer takes at most 0.14 of the blocking one (its floor, one
``sleep``, is 20/160 of the blocking floor).
"""

from __future__ import annotations

import math
import re
import statistics
from pathlib import Path
from typing import Any

from benchmarks.common import Report, cli, fmt, log

TASKS, QUICK_TASKS = 32, 8
SLEEP, QUICK_SLEEP = 20, 10
SLOTS = 4
RATIO_TARGET = 0.14
REPEATS, QUICK_REPEATS = 3, 1
"""Runs of each deferrable variant (interleaved); the blocking baseline runs once."""

AIRFLOW_FLOOR = "bench_deferrable_airflow"
"""Airflow's own floor for the run: the same deferral around a bare wait, no provider code."""

# (DAG id, label, where the start / the end happens, target ratio to blocking or None)
VARIANTS: list[tuple[str, str, str, str, float | None]] = [
    (
        "bench_deferrable_trigger",
        "start and end in the triggerer (default)",
        "triggerer",
        "triggerer",
        RATIO_TARGET,
    ),
    ("bench_deferrable_end_trigger", "start in a worker, end in the triggerer", "worker", "triggerer", None),
    ("bench_deferrable_worker", "worker start and resume", "worker", "worker", None),
    (AIRFLOW_FLOOR, "Airflow's own: a bare `TimeDeltaTrigger` wait in the triggerer", "-", "-", None),
]
BLOCKING = "bench_blocking"


def _timeline(stack: Any, dag_id: str, run_id: str, triggered_at: float, ended_at: float) -> dict[str, Any]:
    """Where the run's time went, from the files of each execution and the task instances.

    Per task: its process start (``pid.json`` create_time in the local executor's records), its end
    (``exit.json``), the moment the provider saw SUCCEEDED (the ``events/*-succeeded-*.pb`` stamp:
    the trigger's poll, or the worker's when blocking) and the task instance's end_date (after
    ``execute_complete``).
    """
    import datetime as dt
    import json
    from pathlib import Path

    from benchmarks.common import percentile
    from executors.backends.local.executor import state_dirs
    from executors.data.storage import path_segment

    run_dir = Path(stack.data_dir) / path_segment(dag_id) / path_segment(run_id)
    starts, ends, seen = [], [], []
    for folder_str, records in state_dirs(str(stack.state_root)).items():
        folder = Path(folder_str)
        if run_dir not in folder.parents:
            continue
        pid_file = Path(records) / "pid.json"
        try:
            starts.append(float(json.loads(pid_file.read_text())["create_time"]))
            ends.append(float(json.loads((pid_file.parent / "exit.json").read_text())["ended_at"]))
            stamp = min(int(p.name.split("-", 1)[0]) for p in (folder / "events").glob("*-succeeded-*.pb"))
            seen.append(stamp / 1e6)
        except (OSError, ValueError, KeyError, TypeError):
            continue
    ti_ends = []
    data = stack.client._json(
        "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100}
    )
    tis = data["task_instances"]
    for ti in tis:
        if ti.get("end_date"):
            ti_ends.append(dt.datetime.fromisoformat(ti["end_date"]).timestamp())
    if not starts or len(seen) != len(ends) or not ti_ends:
        return {}
    seen_lag = [s - e for s, e in zip(seen, ends, strict=True)]
    ti_starts = [
        dt.datetime.fromisoformat(ti["start_date"]).timestamp() for ti in tis if ti.get("start_date")
    ]
    trigger_first, submitted = _trigger_log_times(stack, dag_id, run_id)
    return {
        "ti_start_first": min(ti_starts) - triggered_at if ti_starts else None,
        "ti_start_last": max(ti_starts) - triggered_at if ti_starts else None,
        "trigger_first": min(trigger_first) - triggered_at if trigger_first else None,
        "trigger_first_last": max(trigger_first) - triggered_at if trigger_first else None,
        "submitted_last": max(submitted) - triggered_at if submitted else None,
        "first_start": min(starts) - triggered_at,
        "last_start": max(starts) - triggered_at,
        "process_s_p50": percentile([e - s for s, e in zip(starts, ends, strict=True)], 50),
        "seen_after_exit_p50": percentile(seen_lag, 50),
        "seen_after_exit_max": max(seen_lag),
        "last_seen": max(seen) - triggered_at,
        "last_ti_end": max(ti_ends) - triggered_at,
        "run_end": ended_at - triggered_at,
        "executions": len(starts),
    }


def _log_time(line: str) -> float | None:
    import datetime as dt
    import json

    try:
        stamp = json.loads(line).get("timestamp")
    except (ValueError, AttributeError):
        match = re.match(r"\[?(\d{4}-\d\d-\d\dT[\d:.]+)(Z|[+-]\d\d:?\d\d)?", line.strip())
        stamp = match.group(1) + (match.group(2) or "+00:00") if match else None
    if not stamp:
        return None
    try:
        return dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _trigger_log_times(stack: Any, dag_id: str, run_id: str) -> tuple[list[float], list[float]]:
    """Per task, from its trigger log: the trigger's first line (the trigger runs) and its
    "submitted from the triggerer" line (``start_from_trigger``: the execution is submitted)."""
    first, submitted = [], []
    run_logs = Path(stack.home) / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
    for path in run_logs.glob("task_id=*/attempt=*.log.trigger.*.log"):
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        stamps = [t for t in map(_log_time, lines) if t is not None]
        if stamps:
            first.append(min(stamps))
        for line in lines:
            if "submitted from the triggerer" in line and (t := _log_time(line)) is not None:
                submitted.append(t)
                break
    return first, submitted


def _worker_turns(stack: Any, dag_id: str, run_id: str) -> dict[str, int]:
    """Which task instances of the run had a worker turn: a worker writes the task's log
    ``attempt=1.log``, a trigger writes ``attempt=1.log.trigger.<id>.log``; a task the scheduler
    deferred itself was never queued (``queued_when`` null)."""
    data = stack.client._json(
        "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100}
    )
    tis = data["task_instances"]
    run_logs = Path(stack.home) / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
    worker_log = trigger_log = queued = 0
    for ti in tis:
        folder = run_logs / f"task_id={ti['task_id']}"
        if ti.get("map_index", -1) not in (-1, None):
            folder = folder / f"map_index={ti['map_index']}"
        try_number = int(ti.get("try_number") or 1)
        worker_log += (folder / f"attempt={try_number}.log").exists()
        trigger_log += any(folder.glob(f"attempt={try_number}.log.trigger.*.log"))
        queued += ti.get("queued_when") is not None
    return {"tis": len(tis), "worker_log": worker_log, "trigger_log": trigger_log, "queued": queued}


def _run_dag(stack: Any, dag_id: str, timeout: float) -> dict[str, Any]:
    from benchmarks.stack import timed_run

    run = timed_run(stack, dag_id, timeout)
    run["timeline"] = _timeline(
        stack, dag_id, run["run_id"], run["triggered_at"], run["triggered_at"] + run["seen"]
    )
    run["turns"] = _worker_turns(stack, dag_id, run["run_id"])
    log(f"  {dag_id}: worker turns {run['turns']}")
    return run


def _timeline_row(name: str, t: dict[str, Any]) -> str:
    if not t:
        return f"| {name} | (no timeline: execution files missing) | | | | | | |"
    return (
        f"| {name} | {fmt(t['first_start'])} | {fmt(t['last_start'])} | {fmt(t['process_s_p50'])} | "
        f"{fmt(t['seen_after_exit_p50'])} / {fmt(t['seen_after_exit_max'])} | {fmt(t['last_seen'])} | "
        f"{fmt(t['last_ti_end'])} | {fmt(t['run_end'])} |"
    )


def _start_row(name: str, t: dict[str, Any]) -> str:
    if not t:
        return f"| {name} | | | | |"

    def span(a: float | None, b: float | None) -> str:
        return "-" if a is None or b is None else f"{fmt(a)} - {fmt(b)}"

    return (
        f"| {name} | {span(t['ti_start_first'], t['ti_start_last'])} | "
        f"{span(t['trigger_first'], t['trigger_first_last'])} | "
        f"{fmt(t['submitted_last']) if t['submitted_last'] is not None else '-'} | {fmt(t['last_start'])} |"
    )


def _waves(label: str, where_start: str, where_end: str, t: dict[str, Any], sleep: int) -> str:
    """A deferrable run's overhead over its floor, split into its start wave, the sleep and its end."""
    if not t:
        return ""
    start_wave = t["last_start"]
    resume_wave = t["last_ti_end"] - t["last_seen"]
    if where_start == "worker":
        start = f"every task takes a worker slot to start its execution, {SLOTS} at a time"
    else:
        start = "the scheduler defers every task into the triggerer, whose trigger submits the execution"
    if where_end == "worker":
        end = "every task takes a worker slot again for `execute_complete`"
    else:
        end = "each trigger pushes the XComs and ends its task itself"
    return (
        f"- {label}: {fmt(t['run_end'])} s against a floor of {sleep} s. The start wave ({start}) ends "
        f"{fmt(start_wave)} s after the trigger; the last `sleep` ends and is seen by its trigger at "
        f"{fmt(t['last_seen'])} s; the end wave ({end}) takes {fmt(resume_wave)} s more; the run is "
        f"seen ended {fmt(t['run_end'] - t['last_ti_end'])} s after its last task.\n"
    )


def _spread(values: list[float]) -> str:
    return f"{fmt(min(values))} - {fmt(max(values))}" if len(values) > 1 else fmt(values[0])


def run(quick: bool) -> Report:
    import os

    from benchmarks.stack import airflow_stack

    tasks = QUICK_TASKS if quick else TASKS
    sleep = QUICK_SLEEP if quick else SLEEP
    repeats = QUICK_REPEATS if quick else REPEATS
    report = Report("5. deferrable vs blocking")
    env = {"BENCH_DVB_TASKS": str(tasks), "BENCH_DVB_SLEEP": str(sleep), "BENCH_LOAD_TASKS": "0"}
    floor_blocking = math.ceil(tasks / SLOTS) * sleep
    runs: dict[str, list[dict[str, Any]]] = {dag_id: [] for dag_id, *_ in VARIANTS}
    loads: list[str] = []
    with airflow_stack(parallelism=SLOTS, env=env) as stack:
        for dag_id in (*runs, BLOCKING):
            stack.client.wait_for_dag(dag_id, timeout=120)
        for _ in range(repeats):
            for dag_id in runs:
                loads.append(f"{dag_id} {os.getloadavg()[0]:.2f}")
                runs[dag_id].append(_run_dag(stack, dag_id, timeout=sleep + 10 * tasks + 120))
        loads.append(f"{BLOCKING} {os.getloadavg()[0]:.2f}")
        blocking = _run_dag(stack, BLOCKING, timeout=floor_blocking + 10 * tasks + 240)
        loads.append(f"end {os.getloadavg()[0]:.2f}")
        errors = _log_findings(stack)

    for dag_id, label, _, _, target in VARIANTS:
        results = runs[dag_id]
        walls = [r["wall"] for r in results]
        best = statistics.median(walls)
        ok = all(r["state"] == "success" for r in results) and blocking["state"] == "success"
        ratio = best / blocking["wall"]
        report.add(
            f"DAG run of {tasks} x `sleep {sleep}` on {SLOTS} slots, deferrable, {label}: trigger to end",
            best,
            "s",
            baseline=blocking["wall"],
            baseline_label="deferrable=False",
            target=f"ratio <= {target:g}" if target is not None else None,
            met=(ok and ratio <= target) if target is not None else None,
            notes=(
                f"median of {len(walls)} runs: {', '.join(fmt(w) for w in walls)} s "
                f"(ratios {_spread([w / blocking['wall'] for w in walls])}); blocking 1 run"
                + ("" if ok else f"; runs ended {[r['state'] for r in results]} / {blocking['state']}")
            ),
        )
    ours, bare = statistics.median(r["wall"] for r in runs[VARIANTS[0][0]]), runs[AIRFLOW_FLOOR]
    bare_wall = statistics.median(r["wall"] for r in bare)
    report.add(
        "start and end in the triggerer vs Airflow's own bare wait (same deferral, no provider code): "
        "medians",
        ours,
        "s",
        baseline=bare_wall,
        baseline_label="bare TimeDeltaTrigger tasks",
        notes=(
            f"Airflow's own floor is {bare_wall / blocking['wall']:.3f} of the blocking run "
            f"({', '.join(fmt(r['wall']) for r in bare)} s); ours adds "
            f"{fmt(ours - bare_wall)} s to it"
        ),
    )
    trigger_runs = runs[VARIANTS[0][0]]
    turned = max(max(r["turns"]["worker_log"], r["turns"]["queued"]) for r in trigger_runs)
    report.add(
        "start and end in the triggerer: task instances that got a worker turn",
        float(turned),
        f"of {tasks}",
        target="0",
        met=turned == 0,
        notes="; ".join(
            f"run {i + 1}: {r['turns']['worker_log']} with a worker log `attempt=1.log`, "
            f"{r['turns']['trigger_log']} with a trigger log, {r['turns']['queued']} ever queued"
            for i, r in enumerate(trigger_runs)
        ),
    )
    report.add(
        "blocking run vs its floor (tasks / slots x sleep)",
        blocking["wall"],
        "s",
        baseline=float(floor_blocking),
        baseline_label="floor",
    )
    for dag_id, label, *_ in VARIANTS:
        report.add(
            f"deferrable, {label}, vs its floor (one sleep)",
            statistics.median(r["wall"] for r in runs[dag_id]),
            "s",
            baseline=float(sleep),
            baseline_label="floor",
        )
    every = [
        (f"{label}, run {i + 1}", r) for dag_id, label, *_ in VARIANTS for i, r in enumerate(runs[dag_id])
    ]
    every.append(("blocking (deferrable=False)", blocking))
    report.details = (
        "| run | trigger request to the run's end_date (s) | seen over by the benchmark's poll (s) | "
        "scheduler's start to end (s) | final state | task states | "
        "worker log / trigger log / ever queued |\n"
        "|---|---:|---:|---:|---|---|---|\n"
        + "\n".join(
            f"| {name} | {fmt(r['wall'])} | {fmt(r['seen'])} | {fmt(r['scheduler_s'])} | {r['state']} | "
            f"{r['states']} | "
            f"{r['turns']['worker_log']} / {r['turns']['trigger_log']} / {r['turns']['queued']} |"
            for name, r in every
        )
        + f"\n\nLocalExecutor parallelism {SLOTS}; provider poll interval 1 s; {tasks} unmapped tasks per "
        "DAG (per-task `start_from_trigger` / `end_from_trigger` arguments); the runs one after the other "
        f"on the same stack, the deferrable variants {repeats} time(s) each, interleaved, then the blocking "
        f"baseline. Load average (1 min) at each run's start: {'; '.join(loads)}.\n\n"
        "Where the time goes (seconds after the trigger request, from each execution's files and the task "
        "instances' end dates):\n\n"
        "| run | first `sleep` starts | last `sleep` starts | a `sleep` runs (p50) | exit to SUCCEEDED seen "
        "(p50 / max) | last SUCCEEDED seen | last task instance ends | run seen ended |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|\n"
        + "\n".join(_timeline_row(name, r["timeline"]) for name, r in every)
        + "\n\nThe start wave in detail: the task instances' start dates (the scheduler's deferral when the "
        "task starts in the triggerer, else the worker's start), the trigger logs' first lines (the trigger "
        "runs) and their `submitted from the triggerer` lines:\n\n"
        "| run | task instances start, first - last | triggers run, first - last | last submitted "
        "by a trigger | last `sleep` starts |\n|---|---:|---:|---:|---:|\n"
        + "\n".join(_start_row(name, r["timeline"]) for name, r in every)
        + "\n\n"
        + "".join(
            _waves(f"{label}, run {i + 1}", start_at, end_at, r["timeline"], sleep)
            for dag_id, label, start_at, end_at, _target in VARIANTS
            for i, r in enumerate(runs[dag_id])
        )
        + ("\nWarnings and errors in the Airflow logs:\n\n" + errors if errors else "")
    )
    return report


LEVEL = re.compile(
    r"\[(error|warning|critical)\s*\]|\"level\": ?\"(error|warning|critical)\""
    r"|Traceback|\bERROR\b|\bWARNING\b"
)


def _log_findings(stack: Any, limit: int = 12) -> str:
    """Warning and error lines of the components' and tasks' logs, counted by their text
    (timestamps and numbers replaced by #)."""
    import collections

    counts: collections.Counter[str] = collections.Counter()
    paths = list(Path(stack.component_logs).glob("*.log")) + list((Path(stack.home) / "logs").rglob("*.log"))
    for path in paths:
        if "dag_processor" in path.parts:
            continue
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            if not LEVEL.search(line):
                continue
            key = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z?|\b[0-9a-f]{8,}\b|\d+(\.\d+)?", "#", line.strip())[:220]
            counts[f"{path.name}: {key}"] += 1
    return "\n".join(f"- {n} x `{k}`" for k, n in counts.most_common(limit))


if __name__ == "__main__":
    cli(run)
