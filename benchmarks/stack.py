"""A real Airflow stack for the benchmarks, reusing the e2e harness (harness/airflow_stack.py).

The harness is imported, not copied: it runs ``airflow db migrate`` in a temporary AIRFLOW_HOME and
starts api-server, scheduler (LocalExecutor), dag-processor and triggerer, each in its own process
group, and ``stop()`` ends all of them plus the local executor's detached task processes. What the
benchmarks change is only configuration, applied to ``stack.env`` before ``start()``: the DAG folder
(``benchmarks/dags``), the parallelism, and the sizes the benchmark DAGs read. Everything the
benchmarks use of the harness goes through this module, so a change there is fixed here once.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psutil

from benchmarks.common import BENCH_DIR, log

BENCH_DAGS = BENCH_DIR / "dags"


@contextlib.contextmanager
def airflow_stack(
    *,
    parallelism: int,
    env: Mapping[str, str] | None = None,
    local_executor: Mapping[str, Any] | None = None,
    keep: bool = False,
    poll_interval: float = 1.0,
) -> Iterator[Any]:
    """A started stack (``harness.airflow_stack.AirflowStack``) over ``benchmarks/dags``; stopped after.

    ``local_executor``: options of the provider's local executor, added to the harness's own
    (``state_root`` in the stack's home).
    """
    from harness.airflow_stack import AirflowStack

    home = Path(tempfile.mkdtemp(prefix="bench-airflow-"))
    stack = AirflowStack(home, dags_folder=BENCH_DAGS, poll_interval=poll_interval)
    stack.env["AIRFLOW__CORE__PARALLELISM"] = str(parallelism)
    stack.env.update(env or {})
    if local_executor:
        options = {"state_root": str(stack.state_root), **local_executor}
        stack.env["AIRFLOW__PROVIDER_EXECUTORS__EXECUTOR_CONFIG"] = json.dumps({"local": options})
    log(f"airflow stack: starting in {home} (parallelism {parallelism})")
    try:
        stack.start(timeout=180)
        log(f"airflow stack: healthy in {stack.startup_seconds:.1f}s")
        yield stack
    finally:
        stack.stop()
        if keep:
            log(f"airflow stack: kept {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


def start_run(stack: Any, dag_id: str, label: str) -> tuple[str, float]:
    """Unpause and trigger ``dag_id``; returns (run id, perf_counter at the trigger request)."""
    stack.client.wait_for_dag(dag_id, timeout=120)
    stack.client.unpause(dag_id)
    run_id = f"{label}-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    stack.client.trigger(dag_id, run_id)
    return run_id, started


def wait_run_done(
    stack: Any, dag_id: str, run_id: str, timeout: float, interval: float = 0.5
) -> dict[str, Any]:
    """Poll the DAG run until it is success or failed (at most ``timeout`` s); returns the run."""
    deadline = time.monotonic() + timeout
    while True:
        run = stack.client.dag_run(dag_id, run_id)
        if run.get("state") in ("success", "failed"):
            return dict(run)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{dag_id}/{run_id} still {run.get('state')!r} after {timeout:g}s")
        time.sleep(interval)


def timed_run(stack: Any, dag_id: str, timeout: float) -> dict[str, Any]:
    """Trigger one run of ``dag_id`` and wait for its end; how long it took.

    ``wall`` is from the trigger request to the run's ``end_date`` as the metadata DB records it (the
    same clock), so the polling here (every 0.5 s) adds nothing; ``seen`` is when the poll saw it
    over; ``scheduler_s`` the run's own start to end. Also: ``run_id``, ``triggered_at`` (epoch s),
    ``state`` and the task ``states`` counted.
    """
    import datetime as dt

    triggered_at = time.time()
    run_id, started = start_run(stack, dag_id, dag_id)
    log(f"{dag_id}: triggered ({run_id})")
    run = wait_run_done(stack, dag_id, run_id, timeout=timeout)
    seen = time.perf_counter() - started
    states = task_states(stack, dag_id, run_id)
    wall, sched = seen, None
    if run.get("end_date"):
        ended = dt.datetime.fromisoformat(run["end_date"])
        wall = ended.timestamp() - triggered_at
        if run.get("start_date"):
            sched = (ended - dt.datetime.fromisoformat(run["start_date"])).total_seconds()
    log(f"  {dag_id}: {run.get('state')} in {wall:.1f}s, seen over after {seen:.1f}s ({states})")
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "triggered_at": triggered_at,
        "wall": wall,
        "seen": seen,
        "state": run.get("state"),
        "states": states,
        "scheduler_s": sched,
    }


def task_states(stack: Any, dag_id: str, run_id: str) -> dict[str, int]:
    """How many task instances of the run are in each state (mapped instances counted one by one)."""
    counts: dict[str, int] = {}
    offset = 0
    while True:
        data = stack.client._json(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
            params={"limit": 100, "offset": offset},
        )
        rows = data["task_instances"]
        for ti in rows:
            state = str(ti.get("state"))
            counts[state] = counts.get(state, 0) + 1
        offset += len(rows)
        if not rows or offset >= int(data.get("total_entries", 0)):
            return counts


def process_tree_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and its live descendants."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def process_tree_rss(pid: int) -> float:
    total = 0.0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def count_in_state(stack: Any, dag_id: str, run_id: str, state: str) -> int:
    """How many task instances of the run are in ``state``: one small request (``total_entries``),
    where :func:`task_states` pages through every instance (50 requests for 5,000 mapped ones)."""
    data = stack.client._json(
        "GET",
        f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
        params={"limit": 1, "state": state},
    )
    return int(data.get("total_entries", 0))


def fail_run(stack: Any, dag_id: str, run_id: str) -> None:
    """Mark a DAG run failed, as a user does in the UI (its unfinished tasks end, and with them
    their triggers)."""
    stack.client._json("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", json={"state": "failed"})
