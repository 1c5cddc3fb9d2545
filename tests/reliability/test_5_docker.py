"""Scenario 5: the container executor on the real stack (PostgreSQL, scheduler, triggerer) and a real
Podman engine.

A. Ten mapped tasks, each a container of the test image, all deferred; the test releases them and
   SIGKILLs the triggerer. Expected: the new triggerer re-attaches to every container by name (never
   creates one again): ten containers for ten tasks, ten successes, ten outputs in XCom, no
   container left afterwards (``on_finish: delete``).
B. A user marks a running container task failed: the container is gone (stopped and removed)
   within two poll intervals plus Airflow's delay before ``on_kill`` and the engine's own stop.
C. Two triggerers (HA) hold the ten deferred container tasks; the one holding most is SIGKILLed
   and no new one is started. Expected: the survivor takes every trigger over and re-attaches by
   name: ten containers for ten tasks, ten successes, ten outputs, none left.

The engine's address, the image and a mount of the evidence folder (where the task writes
``starts.txt``) are in the ``reliability_docker`` connection.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from harness.airflow_stack import AirflowStack, StackError, wait_until
from tests.reliability.dags.reliability_dags import DOCKER_FANOUT
from tests.reliability.helpers import (
    KILL_BUDGET,
    Takeover,
    containers,
    new_evidence_dir,
    release,
    report,
    running,
    start_run,
    starts,
    trigger_log_started,
    user_action,
)

pytestmark = pytest.mark.e2e

TASK_ID = "sleeper"
ENGINE_STOP_ALLOWANCE = 2.0
"""What Podman itself takes to stop (SIGTERM) and remove a container, on top of the kill budget."""


@pytest.mark.dag_id("rel_docker_fanout")
def test_triggerer_sigkill_with_ten_deferred_containers(
    rel_stack: AirflowStack, docker_connection: None
) -> None:
    dag_id = "rel_docker_fanout"
    evidence = new_evidence_dir(rel_stack, "docker-fanout")
    run_id = start_run(rel_stack, dag_id, "docker-fanout", evidence)
    tis = wait_all_deferred(rel_stack, dag_id, run_id, evidence)
    before = running(dag_id, run_id)
    assert len(before) == DOCKER_FANOUT, before
    old_jobs = {(ti.get("triggerer_job") or {}).get("id") for ti in tis}

    release(evidence)  # each container now sleeps 15 s: the kill and the takeover fall in there
    t_kill = time.monotonic()
    rel_stack.restart_triggerer()
    after_kill = running(dag_id, run_id)
    report(
        f"scenario 5A: triggerer (jobs {sorted(j for j in old_jobs if j is not None)}) SIGKILLed with "
        f"{DOCKER_FANOUT} container tasks deferred; {len(after_kill)}/{DOCKER_FANOUT} containers still running"
    )
    assert sorted(after_kill) == sorted(before), "a triggerer's death must not stop any container"

    finish(rel_stack, dag_id, run_id, evidence, t_kill, "scenario 5A")


def wait_all_deferred(stack: AirflowStack, dag_id: str, run_id: str, evidence: Path) -> list[dict[str, Any]]:
    """All container tasks deferred, their commands started, their triggers running."""

    def all_deferred() -> list[dict[str, Any]] | None:
        tis = stack.client.mapped_task_instances(dag_id, run_id, TASK_ID)
        ended = [(ti["map_index"], ti["state"]) for ti in tis if ti["state"] in ("failed", "upstream_failed")]
        assert not ended, f"failed before the triggerer was killed: {ended}"
        return tis if len(tis) == DOCKER_FANOUT and all(ti["state"] == "deferred" for ti in tis) else None

    tis = wait_until(all_deferred, 300, f"all {DOCKER_FANOUT} container tasks to be deferred", interval=1.0)
    wait_until(lambda: len(starts(evidence)) >= DOCKER_FANOUT, 120, f"{DOCKER_FANOUT} started containers")
    wait_until(
        lambda: trigger_log_started(stack, dag_id, run_id, TASK_ID) >= DOCKER_FANOUT,
        90,
        "the triggers to run",
    )
    return tis


def finish(stack: AirflowStack, dag_id: str, run_id: str, evidence: Path, t_kill: float, label: str) -> None:
    """Every task succeeded on try 1 with its output in XCom, one container each, none left."""

    def all_done() -> list[dict[str, Any]] | None:
        tis = stack.client.mapped_task_instances(dag_id, run_id, TASK_ID)
        bad = [(ti["map_index"], ti["state"]) for ti in tis if ti["state"] in ("failed", "upstream_failed")]
        assert not bad, f"tasks failed after the triggerer was killed: {bad}"
        return tis if all(ti["state"] == "success" for ti in tis) else None

    tis = wait_until(all_done, 240, f"all {DOCKER_FANOUT} tasks to succeed", interval=1.0)
    report(f"{label}: all {DOCKER_FANOUT} succeeded {time.monotonic() - t_kill:.1f}s after the SIGKILL")
    lines = starts(evidence)
    assert len(lines) == DOCKER_FANOUT, f"{len(lines)} container starts for {DOCKER_FANOUT} tasks"
    assert sorted({ti["try_number"] for ti in tis}) == [1]
    outputs = {
        index: stack.client.xcom(dag_id, run_id, TASK_ID, "return_value", map_index=index)
        for index in range(DOCKER_FANOUT)
    }
    wrong = {i: v for i, v in outputs.items() if not (isinstance(v, dict) and v.get("key") == f"c{i:02d}")}
    left = containers(dag_id, run_id)
    report(
        f"{label}: {len(lines)} container starts for {DOCKER_FANOUT} tasks, outputs in XCom "
        f"{DOCKER_FANOUT - len(wrong)}/{DOCKER_FANOUT}, containers left {len(left)}"
    )
    assert not wrong, wrong
    assert not left, left


@pytest.mark.dag_id("rel_docker_fanout")
def test_two_triggerers_one_sigkilled_the_other_re_attaches_every_container(
    rel_stack: AirflowStack, docker_connection: None
) -> None:
    dag_id, label = "rel_docker_fanout", "scenario 5C (HA)"
    takeover = Takeover.start(rel_stack)
    try:
        evidence = new_evidence_dir(rel_stack, "docker-ha")
        run_id = start_run(rel_stack, dag_id, "docker-ha", evidence)
        wait_all_deferred(rel_stack, dag_id, run_id, evidence)
        before = running(dag_id, run_id)
        assert len(before) == DOCKER_FANOUT, before
        release(evidence)  # each container now sleeps 15 s: the kill and the takeover fall in there
        takeover.kill_the_busiest(rel_stack.client.mapped_task_instances(dag_id, run_id, TASK_ID), label)
        takeover.wait_all_on_the_survivor(dag_id, run_id, TASK_ID, label)
        finish(rel_stack, dag_id, run_id, evidence, takeover.t_kill, label)
    finally:
        takeover.back_to_one(label)


@pytest.mark.dag_id("rel_kill_docker")
def test_mark_failed_removes_the_container(rel_stack: AirflowStack, docker_connection: None) -> None:
    dag_id, task_id = "rel_kill_docker", "victim"
    evidence = new_evidence_dir(rel_stack, "docker-kill")
    run_id = start_run(rel_stack, dag_id, "docker-kill", evidence)
    rel_stack.client.wait_for_task_state(dag_id, run_id, task_id, "deferred", timeout=120)
    wait_until(lambda: starts(evidence), 90, "the container's command to start")
    wait_until(lambda: trigger_log_started(rel_stack, dag_id, run_id, task_id) >= 1, 60, "the trigger to run")
    [name] = running(dag_id, run_id)
    t0 = time.monotonic()
    user_action(rel_stack, "mark_failed", dag_id, run_id, task_id)
    budget = KILL_BUDGET + ENGINE_STOP_ALLOWANCE
    try:
        wait_until(lambda: not containers(dag_id, run_id), 30, "the container to be removed", interval=0.1)
        elapsed: float | None = time.monotonic() - t0
    except StackError:
        elapsed = None
    report(
        f"scenario 5B: mark_failed -> container {name} "
        + (f"removed in {elapsed:.2f}s" if elapsed is not None else "STILL THERE after 30 s")
        + f" (budget {budget:g}s)"
    )
    assert elapsed is not None and elapsed <= budget, elapsed
