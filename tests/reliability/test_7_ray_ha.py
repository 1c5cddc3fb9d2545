"""Scenario 7: two triggerers (HA) and ten deferred Ray jobs, on the real stack and a real Ray head.

A second ``airflow triggerer`` runs beside the first; ten mapped tasks (``rel_ray_ha``) each submit a
Ray job and defer. The triggerer holding the most is SIGKILLed and no new one is started. Expected:
every job keeps running (a triggerer's death is not the task's), the survivor takes every trigger
over and follows the same jobs by submission id: ten jobs for ten tasks, ten starts of the command,
ten successes on try 1, ten outputs in XCom, no job still running afterwards.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from harness.airflow_stack import AirflowStack, wait_until
from tests.reliability.conftest import RelRay
from tests.reliability.dags.reliability_dags import RAY_CONN_ID, RAY_HA_FANOUT
from tests.reliability.helpers import (
    Takeover,
    create_connection,
    new_evidence_dir,
    ray_jobs,
    ray_stop,
    release,
    report,
    start_run,
    starts,
    trigger_log_started,
    wait_mapped,
    wrong_mapped_outputs,
)

pytestmark = pytest.mark.e2e

DAG_ID, TASK_ID = "rel_ray_ha", "sleeper"


def running_jobs(ray: RelRay, run_id: str) -> list[str]:
    return sorted(
        job["submission_id"] for job in ray_jobs(ray.address, DAG_ID, run_id) if job["status"] == "RUNNING"
    )


def wait_all_running(stack: AirflowStack, ray: RelRay, run_id: str, evidence: Path) -> list[str]:
    """Every task deferred, its Ray job RUNNING with the command started, its trigger running."""
    wait_mapped(stack, DAG_ID, run_id, TASK_ID, RAY_HA_FANOUT, "deferred", timeout=300)
    jobs: list[str] = wait_until(
        lambda: (lambda ids: ids if len(ids) == RAY_HA_FANOUT else None)(running_jobs(ray, run_id)),
        180,
        f"{RAY_HA_FANOUT} Ray jobs to run",
        interval=1.0,
    )
    wait_until(lambda: len(starts(evidence)) >= RAY_HA_FANOUT, 120, f"{RAY_HA_FANOUT} started commands")
    wait_until(
        lambda: trigger_log_started(stack, DAG_ID, run_id, TASK_ID) >= RAY_HA_FANOUT,
        120,
        f"the {RAY_HA_FANOUT} triggers to run",
        interval=0.5,
    )
    return jobs


@pytest.mark.dag_id(DAG_ID)
def test_two_triggerers_one_sigkilled_the_other_follows_every_ray_job(
    rel_stack: AirflowStack, rel_ray: RelRay
) -> None:
    label = "scenario 7 (HA, Ray)"
    create_connection(rel_stack, RAY_CONN_ID, "executor", rel_ray.address)
    takeover = Takeover.start(rel_stack)
    evidence = new_evidence_dir(rel_stack, "ray-ha")
    run_id = start_run(rel_stack, DAG_ID, "ray-ha", evidence)
    try:
        before = wait_all_running(rel_stack, rel_ray, run_id, evidence)
        release(evidence)  # each job now sleeps 15 s: the kill and the takeover fall in there
        takeover.kill_the_busiest(rel_stack.client.mapped_task_instances(DAG_ID, run_id, TASK_ID), label)
        still = running_jobs(rel_ray, run_id)
        report(f"{label}: {len(still)}/{RAY_HA_FANOUT} Ray jobs still running right after the kill")
        assert set(still) <= set(before)
        takeover.wait_all_on_the_survivor(DAG_ID, run_id, TASK_ID, label)

        tis = wait_mapped(rel_stack, DAG_ID, run_id, TASK_ID, RAY_HA_FANOUT, "success", timeout=300)
        done_after = time.monotonic() - takeover.t_kill
        lines = starts(evidence)
        first = {s.key: s for s in lines}
        jobs: list[dict[str, Any]] = ray_jobs(rel_ray.address, DAG_ID, run_id)
        statuses = sorted({job["status"] for job in jobs})
        wrong = wrong_mapped_outputs(rel_stack, DAG_ID, run_id, TASK_ID, first)
        tries = sorted({ti["try_number"] for ti in tis})
        report(
            f"{label}: {RAY_HA_FANOUT}/{RAY_HA_FANOUT} succeeded {done_after:.1f}s after the SIGKILL; Ray jobs "
            f"{len(jobs)} for {RAY_HA_FANOUT} tasks ({statuses}), command starts {len(lines)}, try numbers "
            f"{tries}, outputs in XCom {RAY_HA_FANOUT - len(wrong)}/{RAY_HA_FANOUT} correct"
        )
        assert len(jobs) == RAY_HA_FANOUT, [job["submission_id"] for job in jobs]
        assert statuses == ["SUCCEEDED"], statuses
        assert len(lines) == RAY_HA_FANOUT and len(first) == RAY_HA_FANOUT, [s.key for s in lines]
        assert tries == [1], tries
        assert not wrong, wrong
    finally:
        for submission_id in running_jobs(rel_ray, run_id):
            ray_stop(rel_ray.address, submission_id)
        takeover.back_to_one(label)
