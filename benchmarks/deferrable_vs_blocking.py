"""Benchmark 5: deferrable vs blocking on a real Airflow stack with 4 worker slots.

Stack (harness/airflow_stack.py through benchmarks/stack.py): api-server, scheduler with the
LocalExecutor (``[core] parallelism = 4``: four worker slots), dag-processor, triggerer, SQLite.
DAGs ``bench_deferrable`` and ``bench_blocking`` (benchmarks/dags/bench_dags.py): 32 mapped
ExecutorOperator tasks, each running ``sleep 20`` on the provider's local executor, poll interval
1 s; the only difference is ``deferrable``. Each DAG run is timed from the trigger request (REST)
to the run's final state, polled every 0.5 s; the runs go one after the other on the same stack.

A blocking task holds its worker slot for its whole 20 s, so 32 tasks on 4 slots need at least
8 x 20 = 160 s; a deferrable one holds a slot only to start and to finish. Target: the deferrable
run takes at most 1/6 of the blocking one.
"""

from __future__ import annotations

import math
import time
from typing import Any

from benchmarks.common import Report, cli, fmt, log

TASKS, QUICK_TASKS = 32, 8
SLEEP, QUICK_SLEEP = 20, 10
SLOTS = 4
RATIO_TARGET = 1 / 6


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
    for ti in data["task_instances"]:
        if ti.get("end_date"):
            ti_ends.append(dt.datetime.fromisoformat(ti["end_date"]).timestamp())
    if not starts or len(seen) != len(ends) or not ti_ends:
        return {}
    seen_lag = [s - e for s, e in zip(seen, ends, strict=True)]
    return {
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


def _run_dag(stack: Any, dag_id: str, timeout: float) -> dict[str, Any]:
    from benchmarks.stack import start_run, task_states, wait_run_done

    triggered_at = time.time()
    run_id, started = start_run(stack, dag_id, dag_id)
    log(f"deferrable_vs_blocking: {dag_id} triggered ({run_id})")
    run = wait_run_done(stack, dag_id, run_id, timeout=timeout)
    wall = time.perf_counter() - started
    states = task_states(stack, dag_id, run_id)
    sched = None
    if run.get("start_date") and run.get("end_date"):
        import datetime as dt

        sched = (
            dt.datetime.fromisoformat(run["end_date"]) - dt.datetime.fromisoformat(run["start_date"])
        ).total_seconds()
    log(f"  {dag_id}: {run.get('state')} in {wall:.1f}s ({states})")
    timeline = _timeline(stack, dag_id, run_id, triggered_at, triggered_at + wall)
    return {
        "wall": wall,
        "state": run.get("state"),
        "states": states,
        "scheduler_s": sched,
        "timeline": timeline,
    }


def _timeline_row(name: str, t: dict[str, Any]) -> str:
    if not t:
        return f"| {name} | (no timeline: execution files missing) | | | | | | |"
    return (
        f"| {name} | {fmt(t['first_start'])} | {fmt(t['last_start'])} | {fmt(t['process_s_p50'])} | "
        f"{fmt(t['seen_after_exit_p50'])} / {fmt(t['seen_after_exit_max'])} | {fmt(t['last_seen'])} | "
        f"{fmt(t['last_ti_end'])} | {fmt(t['run_end'])} |"
    )


def _waves(t: dict[str, Any], sleep: int) -> str:
    """The deferrable run's overhead over its floor, split into the worker passes it needs."""
    if not t:
        return ""
    start_wave = t["last_start"]
    resume_wave = t["last_ti_end"] - t["last_seen"]
    return (
        f"\nDeferrable run, {fmt(t['run_end'])} s against a floor of {sleep} s: the start wave (every task "
        f"takes a worker slot to start its execution, {SLOTS} at a time) ends {fmt(start_wave)} s after the "
        f"trigger; the last `sleep` ends and is seen by its trigger at {fmt(t['last_seen'])} s; the resume "
        f"wave (every task takes a worker slot again for `execute_complete`) takes {fmt(resume_wave)} s "
        f"more; the run is seen ended {fmt(t['run_end'] - t['last_ti_end'])} s after its last task.\n"
    )


def run(quick: bool) -> Report:
    from benchmarks.stack import airflow_stack

    tasks = QUICK_TASKS if quick else TASKS
    sleep = QUICK_SLEEP if quick else SLEEP
    report = Report("5. deferrable vs blocking")
    env = {"BENCH_DVB_TASKS": str(tasks), "BENCH_DVB_SLEEP": str(sleep)}
    floor_blocking = math.ceil(tasks / SLOTS) * sleep
    with airflow_stack(parallelism=SLOTS, env=env) as stack:
        stack.client.wait_for_dag("bench_deferrable", timeout=120)
        stack.client.wait_for_dag("bench_blocking", timeout=120)
        deferrable = _run_dag(stack, "bench_deferrable", timeout=sleep + 10 * tasks + 120)
        blocking = _run_dag(stack, "bench_blocking", timeout=floor_blocking + 10 * tasks + 240)

    ok = deferrable["state"] == "success" and blocking["state"] == "success"
    ratio = deferrable["wall"] / blocking["wall"]
    report.add(
        f"DAG run of {tasks} x `sleep {sleep}` on {SLOTS} slots: deferrable, trigger to end",
        deferrable["wall"],
        "s",
        baseline=blocking["wall"],
        baseline_label="deferrable=False",
        target=f"ratio <= 1/6 ({RATIO_TARGET:.3f})",
        met=ok and ratio <= RATIO_TARGET,
        notes="" if ok else f"runs ended {deferrable['state']} / {blocking['state']}",
    )
    report.add(
        "blocking run vs its floor (tasks / slots x sleep)",
        blocking["wall"],
        "s",
        baseline=float(floor_blocking),
        baseline_label="floor",
    )
    report.add(
        "deferrable run vs its floor (one sleep)",
        deferrable["wall"],
        "s",
        baseline=float(sleep),
        baseline_label="floor",
    )
    report.details = (
        "| run | wall, trigger to end (s) | scheduler's start to end (s) | final state | task states |\n"
        "|---|---:|---:|---|---|\n"
        + "\n".join(
            f"| {name} | {fmt(r['wall'])} | {fmt(r['scheduler_s'])} | {r['state']} | {r['states']} |"
            for name, r in (("deferrable", deferrable), ("blocking (deferrable=False)", blocking))
        )
        + f"\n\nLocalExecutor parallelism {SLOTS}; provider poll interval 1 s; the two runs one after "
        "the other on the same stack (deferrable first).\n\n"
        "Where the time goes (seconds after the trigger request, from each execution's files and the task "
        "instances' end dates):\n\n"
        "| run | first `sleep` starts | last `sleep` starts | a `sleep` runs (p50) | exit to SUCCEEDED seen "
        "(p50 / max) | last SUCCEEDED seen | last task instance ends | run seen ended |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|\n"
        + "\n".join(
            _timeline_row(name, r["timeline"])
            for name, r in (("deferrable", deferrable), ("blocking", blocking))
        )
        + "\n"
        + _waves(deferrable["timeline"], sleep)
    )
    return report


if __name__ == "__main__":
    cli(run)
