"""Scenario 4: the same user actions as scenario 3, on the Ray executor (a private Ray head).

Four runs of ``rel_kill_ray`` start together, one per action; each task is a Ray job (submitted
through the Jobs API, found again by the ``owner_id`` in its metadata) whose entrypoint waits until
killed. Each test does its action and times until Ray reports the job STOPPED. Budget: two poll
intervals, Airflow's ~2 s before ``on_kill``, plus the time Ray itself takes to stop a job (timed
by the ``rel_ray`` fixture; allowed: ``RAY_STOP_ALLOWANCE``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.airflow_stack import AirflowStack, StackError, wait_until
from tests.reliability.conftest import RelRay
from tests.reliability.dags.reliability_dags import RAY_CONN_ID
from tests.reliability.helpers import (
    ACTIONS,
    KILL_BUDGET,
    RAY_STOP_ALLOWANCE,
    action_params,
    create_connection,
    explain_clear,
    new_evidence_dir,
    ray_job_status,
    ray_jobs,
    ray_stop,
    release,
    report,
    snapshot,
    start_run,
    starts,
    trigger_log_started,
    user_action,
    wait_gone,
)

pytestmark = pytest.mark.e2e

DAG_ID, TASK_ID = "rel_kill_ray", "victim"
BUDGET = KILL_BUDGET + RAY_STOP_ALLOWANCE
WAIT = 20.0


@dataclasses.dataclass
class RayVictim:
    action: str
    run_id: str
    evidence: Path
    job: dict[str, Any] = dataclasses.field(default_factory=dict)


def prepare(stack: AirflowStack, ray: RelRay, victim: RayVictim) -> None:
    """Wait until the task is deferred, its Ray job RUNNING with its entrypoint up, its trigger running."""
    stack.client.wait_for_task_state(DAG_ID, victim.run_id, TASK_ID, "deferred", timeout=120)

    def running_job() -> dict[str, Any] | None:
        jobs = ray_jobs(ray.address, DAG_ID, victim.run_id)
        assert len(jobs) <= 1, [j["submission_id"] for j in jobs]
        return jobs[0] if jobs and jobs[0]["status"] == "RUNNING" else None

    victim.job = wait_until(running_job, 90, f"{victim.action}: the Ray job to run", interval=0.5)
    wait_until(lambda: starts(victim.evidence), 60, f"{victim.action}: the job's entrypoint to start")
    wait_until(
        lambda: trigger_log_started(stack, DAG_ID, victim.run_id, TASK_ID) >= 1, 60, "the trigger to run"
    )


@pytest.fixture(scope="module")
def ray_victims(rel_stack: AirflowStack, rel_ray: RelRay) -> Iterator[dict[str, RayVictim]]:
    create_connection(rel_stack, RAY_CONN_ID, "executor", rel_ray.address)
    found: dict[str, RayVictim] = {}
    for action in ACTIONS:
        evidence = new_evidence_dir(rel_stack, f"ray-{action}")
        run_id = start_run(rel_stack, DAG_ID, f"ray-{action.replace('_', '-')}", evidence)
        found[action] = RayVictim(action, run_id, evidence)
    try:
        yield found
    finally:
        for victim in found.values():
            with contextlib.suppress(StackError):
                user_action(rel_stack, "fail_run", DAG_ID, victim.run_id, TASK_ID)
            release(victim.evidence)
            with contextlib.suppress(Exception):
                for job in ray_jobs(rel_ray.address, DAG_ID, victim.run_id):
                    ray_stop(rel_ray.address, job["submission_id"])


@pytest.mark.dag_id(DAG_ID)
@pytest.mark.parametrize("action", action_params())
def test_user_action_stops_the_ray_job(
    rel_stack: AirflowStack, rel_ray: RelRay, ray_victims: dict[str, RayVictim], action: str
) -> None:
    victim = ray_victims[action]
    prepare(rel_stack, rel_ray, victim)
    submission_id = victim.job["submission_id"]
    entrypoint_pid = starts(victim.evidence)[0].pid
    t0 = time.monotonic()
    user_action(rel_stack, action, DAG_ID, victim.run_id, TASK_ID)
    seen: list[tuple[float, str | None]] = []

    def stopped() -> bool:
        status = ray_job_status(rel_ray.address, submission_id)
        if not seen or seen[-1][1] != status:
            seen.append((time.monotonic() - t0, status))
        assert status not in ("SUCCEEDED", "FAILED"), f"the job ended {status}, not STOPPED"
        return status == "STOPPED"

    try:
        wait_until(stopped, WAIT, f"{action}: the Ray job to stop", interval=0.05)
        elapsed: float | None = time.monotonic() - t0
    except StackError:
        elapsed = None
    # Ray's STOPPED means its supervisor saw the entrypoint end: check the process itself too.
    entrypoint_gone = elapsed is not None and wait_gone(snapshot([entrypoint_pid]), 10) is not None
    transitions = ", ".join(f"{s}@{at:.2f}s" for at, s in seen)
    shown = f"STILL NOT STOPPED after {WAIT:g}s" if elapsed is None else f"STOPPED in {elapsed:.2f}s"
    report(
        f"scenario 4 (ray): {action} -> job {submission_id} {shown} (budget {BUDGET:g}s = {KILL_BUDGET:g}s + "
        f"Ray's {RAY_STOP_ALLOWANCE:g}s; Ray alone: "
        f"{'?' if rel_ray.stop_seconds is None else f'{rel_ray.stop_seconds:.2f}s'}); status {transitions}; "
        f"entrypoint process gone: {entrypoint_gone}"
    )
    if elapsed is None and action == "clear":
        report(f"scenario 4 (ray): clear -> {explain_clear(rel_stack, DAG_ID, victim.run_id, TASK_ID)}")
    assert elapsed is not None, (
        f"{action}: job {submission_id} not STOPPED {WAIT:g}s after the action ({transitions})"
    )
    assert elapsed <= BUDGET, f"{action}: the stop took {elapsed:.2f}s, budget {BUDGET:g}s"

    client = rel_stack.client
    if action == "clear":  # the cleared task runs again, as a new job

        def second_job() -> bool:
            ti = client.task_instance(DAG_ID, victim.run_id, TASK_ID)
            assert ti["state"] not in ("failed", "success"), f"try {ti['try_number']} ended {ti['state']}"
            jobs = ray_jobs(rel_ray.address, DAG_ID, victim.run_id)
            return len(jobs) == 2 and ti["state"] == "deferred"

        wait_until(second_job, 90, "try 2 to submit a new Ray job and defer")
        report("scenario 4 (ray): after clear, try 2 submitted a new job")
    else:
        state = {"mark_failed": "failed", "mark_success": "success", "fail_run": "failed"}[action]
        assert client.task_instance(DAG_ID, victim.run_id, TASK_ID)["state"] == state
        assert len(ray_jobs(rel_ray.address, DAG_ID, victim.run_id)) == 1
