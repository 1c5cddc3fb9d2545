"""Benchmark 8: the container executor against Airflow's own ``DockerOperator``, same engine, same image.

The peer is what a user would pick instead: ``DockerOperator`` from ``apache-airflow-providers-docker``,
which waits for its container in its worker slot. Both sides talk to one Podman service (its Docker
Engine API on a private socket, harness/podman.py) and run the same image (harness's Debian 12 base
image), so the difference is the operator, not the engine.

A. **DAG runs** on a real Airflow stack with the LocalExecutor and 4 worker slots (benchmarks/stack.py):
   ``bench_docker_ours``, 32 ExecutorOperator tasks on the container executor (deferrable, started
   and ended in the triggerer, poll interval 1 s), and ``bench_docker_operator``, 32 ``DockerOperator``
   tasks; each task is a container of ``sleep 20``. A run is timed from the trigger request to its
   ``end_date`` in the metadata DB (benchmarks.stack.timed_run). Both keep their containers, so the
   engine's own ``StartedAt``/``FinishedAt`` of every container show how many ran at once; the
   benchmark removes them after each run. Floors: ours one ``sleep`` (20 s), DockerOperator's
   32 / 4 x 20 = 160 s.

B. **Per-task start overhead**, in this process on the same service: from entry into
   ``ExecutorOperator.execute()`` (the worker path: it starts the container, then defers) to the
   container's ``StartedAt`` as the engine records it, against ``podman run -d`` of the same image and
   command from the CLI (its process start included, as a user types it) and against the bare Engine
   API calls (create + start over the socket with httpx: the floor any API client pays). Interleaved
   rounds, so drift in load hits all three alike.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.common import Report, cli, fmt, log, summary_ms

TASKS, QUICK_TASKS = 32, 8
SLEEP, QUICK_SLEEP = 20, 10
SLOTS = 4
REPEATS, QUICK_REPEATS = 3, 1
"""Runs of ours (their median is the figure); DockerOperator's run, 8 x longer, runs once."""
STARTS, QUICK_STARTS = 20, 5
"""Timed container starts per side in part B (after one untimed warm-up each)."""

OURS, THEIRS = "bench_docker_ours", "bench_docker_operator"
OURS_LABEL = "io.airflow-provider-executors.domain"
THEIRS_LABEL = "bench.dag"
"""The label benchmarks/dags/bench_dags.py gives DockerOperator's containers (ours carry our own)."""

ENGINE_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?$")


def engine_time(stamp: str) -> float | None:
    """Epoch seconds of an engine's RFC 3339 time (nanoseconds, ``Z`` or an offset); None for the
    zero time an engine reports for what never started."""
    match = ENGINE_TIME.match(stamp.strip())
    if not match or stamp.startswith("0001-"):
        return None
    whole, fraction, zone = match.groups()
    moment = dt.datetime.fromisoformat(whole + (zone or "Z").replace("Z", "+00:00"))
    return moment.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)


def _containers(client: Any, label: str, value: str) -> list[dict[str, Any]]:
    """Every container with ``label=value``, inspected (``State`` with its times)."""
    filters = json.dumps({"label": [f"{label}={value}"]})
    listed = client.get("/containers/json", params={"all": "true", "filters": filters}).json()
    return [client.get(f"/containers/{c['Id']}/json").json() for c in listed]


def _remove(client: Any, containers: list[dict[str, Any]]) -> None:
    for container in containers:
        client.delete(f"/containers/{container['Id']}", params={"force": "true"})


def _concurrency(containers: list[dict[str, Any]], triggered_at: float) -> dict[str, Any]:
    """When the run's containers started and ended (s after the trigger request), and the most that
    ran at once."""
    spans = []
    for container in containers:
        state = container.get("State") or {}
        start, end = engine_time(state.get("StartedAt", "")), engine_time(state.get("FinishedAt", ""))
        if start is not None and end is not None:
            spans.append((start - triggered_at, end - triggered_at, state.get("ExitCode")))
    if not spans:
        return {"containers": len(containers)}
    marks = sorted([(s, 1) for s, _, _ in spans] + [(e, -1) for _, e, _ in spans])
    running = most = 0
    for _, step in marks:
        running += step
        most = max(most, running)
    return {
        "containers": len(containers),
        "first_start": min(s for s, _, _ in spans),
        "last_start": max(s for s, _, _ in spans),
        "last_end": max(e for _, e, _ in spans),
        "at_once": most,
        "exit_codes": sorted({str(code) for _, _, code in spans}),
    }


def _dag_runs(service: Any, image: str, tasks: int, sleep: int, repeats: int) -> dict[str, Any]:
    from benchmarks.stack import airflow_stack, timed_run

    env = {
        "BENCH_DOCKER_HOST": service.address,
        "BENCH_DOCKER_IMAGE": image,
        "BENCH_DOCKER_TASKS": str(tasks),
        "BENCH_DOCKER_SLEEP": str(sleep),
        # the other benchmark DAGs of the folder, kept small: they are parsed, never run here
        "BENCH_LOAD_TASKS": "0",
        "BENCH_DVB_TASKS": "1",
    }
    ours: list[dict[str, Any]] = []
    with airflow_stack(parallelism=SLOTS, env=env) as stack, service.client() as client:
        for dag_id in (OURS, THEIRS):
            stack.client.wait_for_dag(dag_id, timeout=120)
        for _ in range(repeats):
            run = timed_run(stack, OURS, timeout=sleep + 10 * tasks + 120)
            made = _containers(client, OURS_LABEL, OURS)
            run["engine"] = _concurrency(made, run["triggered_at"])
            _remove(client, made)
            ours.append(run)
        theirs = timed_run(stack, THEIRS, timeout=(tasks // SLOTS + 1) * sleep + 10 * tasks + 240)
        made = _containers(client, THEIRS_LABEL, THEIRS)
        theirs["engine"] = _concurrency(made, theirs["triggered_at"])
        _remove(client, made)
    return {"ours": ours, "theirs": theirs}


def _started_at(client: Any, container: str) -> float:
    info = client.get(f"/containers/{container}/json").json()
    started = engine_time(info["State"]["StartedAt"])
    if started is None:
        raise RuntimeError(f"container {container} never started: {info['State']}")
    return started


def _start_overheads(service: Any, image: str, starts: int) -> dict[str, list[float]]:
    """Seconds from the call to the container's StartedAt, per side, interleaved."""
    from airflow.sdk.bases.operator import ExecutorSafeguard
    from airflow.sdk.exceptions import TaskDeferred

    from airflow_provider.operators import ExecutorOperator
    from benchmarks.operator_overhead import task_contexts
    from harness import podman

    workdir = Path(tempfile.mkdtemp(prefix="bench-docker-"))
    os.environ["AIRFLOW__PROVIDER_EXECUTORS__DATA_DIR"] = str(workdir / "data")
    ExecutorSafeguard.test_mode = True  # execute() called directly, as the task runner calls it
    command = ["sleep", "60"]
    operator = ExecutorOperator(
        task_id="start",
        executor_id="docker",
        executor_options={"address": service.address, "default_image": image, "pull": "Never"},
        command=command,
        deferrable=True,
        start_from_trigger=False,
    )
    times: dict[str, list[float]] = {"ours": [], "podman run": [], "engine API": []}
    made: list[str] = []
    client = service.client()

    def ours(context: dict[str, Any]) -> float:
        began = time.time()
        try:
            operator.execute(context)
        except TaskDeferred:
            pass
        else:
            raise RuntimeError("ExecutorOperator.execute() did not defer")
        run_id = context["ti"].run_id
        found = _containers(client, "io.airflow-provider-executors.run", run_id)
        if len(found) != 1:
            raise RuntimeError(f"expected one container for run {run_id}, found {len(found)}")
        made.append(found[0]["Id"])
        return _started_at(client, found[0]["Id"]) - began

    def podman_run(name: str) -> float:
        began = time.time()
        podman.podman("run", "-d", "--name", name, image, *command)
        made.append(name)
        return _started_at(client, name) - began

    def engine_api(name: str) -> float:
        began = time.time()
        body = {"Image": image, "Cmd": command}
        created = client.post("/containers/create", params={"name": name}, json=body)
        created.raise_for_status()
        client.post(f"/containers/{created.json()['Id']}/start").raise_for_status()
        made.append(name)
        return _started_at(client, name) - began

    try:
        with client:
            contexts = task_contexts(operator, "docker", starts + 1)
            for i, context in enumerate(contexts):
                tag = uuid.uuid4().hex[:8]
                timed = [("ours", ours(context)), ("podman run", podman_run(f"bench-run-{tag}"))]
                timed.append(("engine API", engine_api(f"bench-api-{tag}")))
                if i > 0:  # the first round warms imports, the executor pool and the engine's caches
                    for side, seconds in timed:
                        times[side].append(seconds)
                for name in made:  # SIGKILL first: a plain `sleep` as PID 1 ignores the SIGTERM of a stop
                    client.post(f"/containers/{name}/kill")
                    client.delete(f"/containers/{name}", params={"force": "true"})
                made.clear()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return times


def run(quick: bool) -> Report:
    from harness import podman

    tasks = QUICK_TASKS if quick else TASKS
    sleep = QUICK_SLEEP if quick else SLEEP
    repeats = QUICK_REPEATS if quick else REPEATS
    starts = QUICK_STARTS if quick else STARTS
    report = Report("8. container executor vs DockerOperator")
    image = podman.ensure_base_image()
    service = podman.start_service()
    try:
        log(f"docker_vs_dockeroperator: {starts} timed starts per side on {service.address}")
        overheads = _start_overheads(service, image, starts)
        log(f"docker_vs_dockeroperator: {tasks} x sleep {sleep} on {SLOTS} slots, ours {repeats}x")
        runs = _dag_runs(service, image, tasks, sleep, repeats)
        version = subprocess.run(["podman", "--version"], capture_output=True, text=True).stdout.strip()
    finally:
        service.stop()

    ours, theirs = runs["ours"], runs["theirs"]
    walls = [r["wall"] for r in ours]
    median = statistics.median(walls)
    ok = all(r["state"] == "success" for r in ours) and theirs["state"] == "success"
    report.add(
        f"DAG run of {tasks} containers of `sleep {sleep}` on {SLOTS} worker slots: trigger to end",
        median,
        "s",
        baseline=theirs["wall"],
        baseline_label="DockerOperator",
        notes=(
            f"ours the median of {len(walls)} runs: {', '.join(fmt(w) for w in walls)} s; "
            "DockerOperator 1 run"
            + ("" if ok else f"; runs ended {[r['state'] for r in ours]} / {theirs['state']}")
        ),
    )
    floor_theirs = -(-tasks // SLOTS) * sleep
    report.add("ours vs its floor (one sleep)", median, "s", baseline=float(sleep), baseline_label="floor")
    report.add(
        "DockerOperator vs its floor (tasks / slots x sleep)",
        theirs["wall"],
        "s",
        baseline=float(floor_theirs),
        baseline_label="floor",
    )
    s = {side: summary_ms(values) for side, values in overheads.items()}
    for peer in ("podman run", "engine API"):
        report.add(
            f"start overhead: `execute()` to the container's StartedAt vs {peer}, p50",
            s["ours"]["p50"],
            "ms",
            baseline=s[peer]["p50"],
            baseline_label=peer,
            notes=f"added {fmt(s['ours']['p50'] - s[peer]['p50'])} ms",
        )

    every = [(f"ours, run {i + 1}", r) for i, r in enumerate(ours)] + [("DockerOperator", theirs)]
    rows = [
        "| run | trigger to end_date (s) | final state | task states | containers | first start | "
        "last start | last end | most running at once | exit codes |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, r in every:
        e = r["engine"]
        rows.append(
            f"| {name} | {fmt(r['wall'])} | {r['state']} | {r['states']} | {e['containers']} | "
            f"{fmt(e.get('first_start'))} | {fmt(e.get('last_start'))} | {fmt(e.get('last_end'))} | "
            f"{e.get('at_once', '-')} | {', '.join(e.get('exit_codes', []))} |"
        )
    rows += [
        "",
        "| start path | n | p50 ms | p95 ms | max ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for side, label in (
        ("ours", "ExecutorOperator.execute() (worker path) to StartedAt"),
        ("podman run", "`podman run -d` (CLI) to StartedAt"),
        ("engine API", "Engine API create + start (httpx) to StartedAt"),
    ):
        rows.append(
            f"| {label} | {s[side]['n']:.0f} | {fmt(s[side]['p50'])} | {fmt(s[side]['p95'])} | "
            f"{fmt(s[side]['max'])} |"
        )
    report.details = (
        "\n".join(rows)
        + f"\n\n{version}, runtime runc, one service for both sides; image `{image}` (Debian 12 minbase); "
        f"LocalExecutor parallelism {SLOTS}; container times (seconds after the trigger request) are the "
        "engine's `State.StartedAt` / `FinishedAt`. Ours: the container executor's defaults except "
        "`pull: Never` and `on_finish: keep` (the benchmark removes the containers after reading their "
        "times); DockerOperator: its defaults (`mount_tmp_dir`, `auto_remove: never`) with the same image "
        "and command.\n"
    )
    return report


if __name__ == "__main__":
    cli(run)
