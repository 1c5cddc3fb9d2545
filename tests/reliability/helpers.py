"""What the reliability tests share: runs, evidence files, processes, user actions, Ray jobs, containers."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import psutil

from harness import podman
from harness.airflow_stack import AirflowStack, StackError, process_alive, read_json, wait_until
from harness.local_state import state_dirs_under

POLL_INTERVAL = 1.0
# Airflow cancels a deferred task's trigger, and so calls its on_kill(), about 2 s after the user
# action (FIELD-NOTES); the provider promises the kill within two poll intervals of that.
ON_KILL_DELAY = 2.0
KILL_BUDGET = 2 * POLL_INTERVAL + ON_KILL_DELAY
# Ray (2.60) itself takes a moment between a stop request and STOPPED (SIGTERM to the entrypoint,
# then the job's status is written): measured by the Ray fixture, allowed on top of the budget.
RAY_STOP_ALLOWANCE = 3.0

ACTIONS = ("mark_failed", "mark_success", "clear", "fail_run")


def action_params() -> list[Any]:
    """``ACTIONS`` as pytest parameters."""
    return list(ACTIONS)


def report(message: str) -> None:
    print(f"[reliability] {message}", flush=True)


# -- evidence written by the WAITER command (tests/reliability/dags/reliability_dags.py) ----------


@dataclasses.dataclass(frozen=True)
class Start:
    key: str
    pid: int
    child_pid: int
    at: float
    attempt: str


def starts(evidence: Path) -> list[Start]:
    """The lines of ``starts.txt``: one per start of the command."""
    try:
        text = (evidence / "starts.txt").read_text()
    except OSError:
        return []
    found = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 5:
            found.append(Start(parts[0], int(parts[1]), int(parts[2]), float(parts[3]), parts[4]))
    return found


def release(evidence: Path) -> None:
    (evidence / "release").touch()


# -- runs ----------------------------------------------------------------------------------------


def new_evidence_dir(stack: AirflowStack, label: str) -> Path:
    folder = stack.home / "evidence" / f"{label}-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    return folder


def start_run(stack: AirflowStack, dag_id: str, label: str, evidence: Path, **conf: Any) -> str:
    stack.client.wait_for_dag(dag_id, timeout=90)
    stack.client.unpause(dag_id)
    run_id = f"{label}-{uuid.uuid4().hex[:8]}"
    stack.client.trigger(dag_id, run_id, conf={"dir": str(evidence), **conf})
    return run_id


def trigger_log_started(
    stack: AirflowStack, dag_id: str, run_id: str, task_id: str, try_number: int = 1
) -> int:
    """How many trigger logs of this task (all map indexes) say their trigger started running."""
    folder = stack.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
    count = 0
    for path in folder.rglob(f"attempt={try_number}.log.trigger.*.log"):
        with contextlib.suppress(OSError):
            if "starting" in path.read_text(errors="replace"):
                count += 1
    return count


def wait_mapped(
    stack: AirflowStack, dag_id: str, run_id: str, task_id: str, count: int, state: str, timeout: float
) -> list[dict[str, Any]]:
    """Wait until all ``count`` mapped instances are in ``state``; fails at once if one failed (or,
    while waiting for ``deferred``, already ended)."""
    ended = {"failed", "upstream_failed"} | ({"success"} if state == "deferred" else set())

    def check() -> list[dict[str, Any]] | None:
        tis = stack.client.mapped_task_instances(dag_id, run_id, task_id)
        bad = [(ti["map_index"], ti["state"], ti["try_number"]) for ti in tis if ti["state"] in ended]
        assert not bad, f"{len(bad)} of {dag_id}.{task_id} ended while waiting for {state}: {bad[:10]}"
        return tis if len(tis) == count and all(ti["state"] == state for ti in tis) else None

    result: list[dict[str, Any]] = wait_until(
        check, timeout, f"all {count} {task_id} of {dag_id} to be {state}", interval=1.0
    )
    return result


def wrong_mapped_outputs(
    stack: AirflowStack, dag_id: str, run_id: str, task_id: str, first: dict[str, Start]
) -> dict[int, Any]:
    """The map indexes whose ``return_value`` is not the output of the first (and only) start of
    its key (``first``: key -> start, in map-index order of the keys)."""
    wrong = {}
    for index, key in enumerate(sorted(first)):
        value = stack.client.xcom(dag_id, run_id, task_id, "return_value", map_index=index)
        if value != {"key": key, "pid": first[key].pid}:
            wrong[index] = value
    return wrong


def triggerer_holding(tis: list[dict[str, Any]]) -> dict[int | None, int]:
    """How many of these task instances each triggerer job id holds."""
    held: dict[int | None, int] = {}
    for ti in tis:
        job = (ti.get("triggerer_job") or {}).get("id")
        held[job] = held.get(job, 0) + 1
    return held


@dataclasses.dataclass
class Takeover:
    """Two triggerers (HA): the stack's own and ``triggerer-b``, by component name -> TriggererJob id."""

    stack: AirflowStack
    jobs: dict[str, int]
    victim: str = ""
    survivor: str = ""
    held: dict[int | None, int] = dataclasses.field(default_factory=dict)
    t_kill: float = 0.0

    @classmethod
    def start(cls, stack: AirflowStack) -> Takeover:
        """Start ``triggerer-b`` beside the stack's triggerer and wait for its job.

        A ``triggerer-b`` left by an earlier scenario that failed half-way is stopped first, and the
        stack's own triggerer must be alive (a heartbeat late under load reads as no job at all)."""
        if "triggerer-b" in stack.procs:
            stack.kill_component("triggerer-b")
        before = wait_until(
            lambda: {job["id"] for job in stack.client.alive_jobs("TriggererJob")} or None,
            60,
            "the stack's own triggerer's job",
        )
        stack.start_component("triggerer-b", "triggerer")
        new = wait_until(
            lambda: (
                [j["id"] for j in stack.client.alive_jobs("TriggererJob") if j["id"] not in before] or None
            ),
            60,
            "the second triggerer's job",
        )
        return cls(stack, {"triggerer": sorted(before)[-1], "triggerer-b": new[0]})

    def kill_the_busiest(self, tis: list[dict[str, Any]], label: str) -> None:
        """SIGKILL the triggerer holding most of ``tis``; no new one is started."""
        self.held = triggerer_holding(tis)
        self.victim = max(self.jobs, key=lambda name: self.held.get(self.jobs[name], 0))
        self.survivor = next(name for name in self.jobs if name != self.victim)
        self.t_kill = time.monotonic()
        self.stack.kill_component(self.victim, signal.SIGKILL)
        report(
            f"{label}: triggerer jobs {self.jobs} held {self.held}; SIGKILLed {self.victim} (job "
            f"{self.jobs[self.victim]}, {self.held.get(self.jobs[self.victim], 0)} triggers); {self.survivor} "
            "keeps running, no new triggerer"
        )

    def wait_all_on_the_survivor(self, dag_id: str, run_id: str, task_id: str, label: str) -> float:
        """Seconds from the kill until the survivor held every unfinished task (the others deferred)."""
        moved: dict[str, float] = {}

        def all_on_the_survivor() -> bool:
            for ti in self.stack.client.mapped_task_instances(dag_id, run_id, task_id):
                job = (ti.get("triggerer_job") or {}).get("id")
                if ti["state"] != "success" and job != self.jobs[self.survivor]:
                    assert ti["state"] == "deferred", (ti["map_index"], ti["state"])
                    return False
            moved["seconds"] = time.monotonic() - self.t_kill
            return True

        wait_until(all_on_the_survivor, 120, f"{self.survivor} to take every trigger over", interval=0.5)
        report(f"{label}: {self.survivor} held every trigger {moved['seconds']:.1f}s after the SIGKILL")
        return moved["seconds"]

    def back_to_one(self, label: str) -> None:
        """Leave the stack as the other scenarios expect it: one triggerer, named ``triggerer``."""
        restarted = "triggerer" not in self.stack.procs
        if restarted:
            self.stack.start_component("triggerer")
        if "triggerer-b" in self.stack.procs:
            self.stack.kill_component("triggerer-b", signal.SIGTERM)
        report(f"{label}: stack back to one triggerer (restarted the first: {restarted})")


def task_log(stack: AirflowStack, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
    folder = stack.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
    texts = []
    for path in sorted(folder.rglob(f"attempt={try_number}.log*")):
        with contextlib.suppress(OSError):
            texts.append(path.read_text(errors="replace"))
    return "\n".join(texts)


def explain_clear(stack: AirflowStack, dag_id: str, run_id: str, task_id: str) -> str:
    """What the logs say happened after a clear whose execution was not killed."""
    log1, log2 = (task_log(stack, dag_id, run_id, task_id, n) for n in (1, 2))
    return (
        f"try 2 re-attached to try 1's execution: {'re-attached to' in log2}; try 1's on_kill ran: "
        f"{'invoking on_kill' in log1}; it took the task for moved: {'trigger moved' in log1}"
    )


# -- user actions (the REST calls the UI makes) --------------------------------------------------


def _call(stack: AirflowStack, method: str, path: str, body: dict[str, Any]) -> Any:
    resp = stack.client.request(method, path, json=body)
    if resp.status_code >= 400:
        raise StackError(f"{method} {path} -> HTTP {resp.status_code}: {resp.text[:1000]}")
    return resp.json() if resp.content else None


def user_action(stack: AirflowStack, action: str, dag_id: str, run_id: str, task_id: str) -> None:
    """Do to a deferred task what a user does in the UI: mark it failed/success, clear it, or
    mark its whole run failed."""
    if action == "mark_failed":
        stack.client.set_task_state(dag_id, run_id, task_id, "failed")
    elif action == "mark_success":
        stack.client.set_task_state(dag_id, run_id, task_id, "success")
    elif action == "clear":
        _call(
            stack,
            "POST",
            f"/api/v2/dags/{dag_id}/clearTaskInstances",
            {"dry_run": False, "dag_run_id": run_id, "task_ids": [task_id], "only_failed": False},
        )
    elif action == "fail_run":
        _call(stack, "PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", {"state": "failed"})
    else:
        raise ValueError(action)


def create_connection(
    stack: AirflowStack, conn_id: str, conn_type: str, host: str, extra: dict[str, Any] | None = None
) -> None:
    path = "/api/v2/connections"
    resp = stack.client.request("GET", f"{path}/{conn_id}")
    if resp.status_code == 200:
        return
    body: dict[str, Any] = {"connection_id": conn_id, "conn_type": conn_type, "host": host}
    if extra:
        body["extra"] = json.dumps(extra)
    _call(stack, "POST", path, body)


# -- processes -----------------------------------------------------------------------------------


def alive(processes: dict[int, float]) -> list[int]:
    return [pid for pid, ct in processes.items() if process_alive(pid, ct)]


def snapshot(pids: Iterable[int]) -> dict[int, float]:
    """``{pid: create_time}`` of the running ones (the create time guards against pid reuse)."""
    found = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            found[pid] = psutil.Process(pid).create_time()
    return found


def wait_gone(processes: dict[int, float], timeout: float) -> float | None:
    """Seconds until every one of ``processes`` is gone; None if some still run after ``timeout``."""
    t0 = time.monotonic()
    try:
        wait_until(
            lambda: not alive(processes), timeout, f"processes {sorted(processes)} to end", interval=0.05
        )
    except StackError:
        return None
    return time.monotonic() - t0


def kill_all(processes: dict[int, float]) -> list[int]:
    """SIGKILL whatever of ``processes`` still runs (a leak must not outlive its test)."""
    left = alive(processes)
    for pid in left:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return left


def execution_records(stack: AirflowStack, dag_id: str, run_id: str | None = None) -> list[dict[str, Any]]:
    """Every ``pid.json`` of the local executor for executions under this DAG (and run)."""
    root = stack.data_dir / dag_id
    if run_id is not None:
        root = root / run_id
    pid_files = (records / "pid.json" for _, records in state_dirs_under(root, stack.state_root))
    return [r for p in pid_files if (r := read_json(p)) is not None]


def leaked_processes(records: list[dict[str, Any]], extra_pids: Iterable[int] = ()) -> list[int]:
    """Live processes an execution left: its process, its supervisor, anything in its process
    group, and ``extra_pids`` (children the command recorded)."""
    leaked: set[int] = set()
    groups = {int(r["pgid"]) for r in records if "pgid" in r}
    for record in records:
        if process_alive(int(record["pid"]), record.get("create_time")):
            leaked.add(int(record["pid"]))
        if process_alive(int(record["supervisor_pid"])):
            leaked.add(int(record["supervisor_pid"]))
    for pid in extra_pids:
        if pid and process_alive(pid):
            leaked.add(pid)
    if groups:
        for proc in psutil.process_iter(["pid", "status"]):
            with contextlib.suppress(psutil.Error, OSError):
                if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) in groups:
                    leaked.add(proc.pid)
    return sorted(leaked)


# -- Ray jobs ------------------------------------------------------------------------------------


def ray_jobs(address: str, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """The Ray jobs the provider submitted for this DAG run (by the ``owner_id`` in their metadata)."""
    resp = httpx.get(f"{address}/api/jobs/", timeout=10)
    resp.raise_for_status()
    prefix = f"{dag_id}/{run_id}/"
    return [
        job for job in resp.json() if str((job.get("metadata") or {}).get("owner_id", "")).startswith(prefix)
    ]


def ray_job_status(address: str, submission_id: str) -> str | None:
    with contextlib.suppress(httpx.HTTPError, ValueError):
        resp = httpx.get(f"{address}/api/jobs/{submission_id}", timeout=5)
        if resp.status_code == 200:
            return str(resp.json().get("status"))
    return None


def ray_stop(address: str, submission_id: str) -> None:
    with contextlib.suppress(httpx.HTTPError):
        httpx.post(f"{address}/api/jobs/{submission_id}/stop", timeout=10)


# -- containers ----------------------------------------------------------------------------------


def containers(dag_id: str, run_id: str) -> list[str]:
    """The names of the containers (any state) of one DAG run, by our labels."""
    return podman.leftover_containers(
        {"io.airflow-provider-executors.domain": dag_id, "io.airflow-provider-executors.run": run_id}
    )


def running(dag_id: str, run_id: str) -> list[str]:
    """The names of the running ones of ``containers(dag_id, run_id)``."""
    names = containers(dag_id, run_id)
    if not names:
        return []
    out = podman.podman("inspect", "--format", "{{.Name}} {{.State.Status}}", *names, check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.endswith(" running")]
