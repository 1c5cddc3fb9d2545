"""Scenario 5: the container executor on the real stack (PostgreSQL, scheduler, triggerer) and a real
Podman engine.

A. Ten mapped tasks, each a container of the test image, all deferred; the test releases them and
   SIGKILLs the triggerer. Expected: the new triggerer re-attaches to every container by name (never
   creates one again): ten containers for ten tasks, ten successes, ten outputs in XCom, no
   container left afterwards (``on_finish: delete``).
B. A user marks a running container task failed: the container is gone (stopped and removed)
   within two poll intervals plus Airflow's delay before ``on_kill`` and the engine's own stop.

The engine's address, the image and a mount of the evidence folder (where the task writes
``starts.txt``) are in the ``reliability_docker`` connection.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from harness.airflow_stack import AirflowStack, StackError, wait_until
from tests.reliability.dags.reliability_dags import DOCKER_FANOUT
from tests.reliability.helpers import (
    KILL_BUDGET,
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

ENGINE_STOP_ALLOWANCE = 2.0
"""What Podman itself takes to stop (SIGTERM) and remove a container, on top of the kill budget."""


@pytest.mark.dag_id("rel_docker_fanout")
def test_triggerer_sigkill_with_ten_deferred_containers(
    rel_stack: AirflowStack, docker_connection: None
) -> None:
    dag_id, task_id = "rel_docker_fanout", "sleeper"
    client = rel_stack.client
    evidence = new_evidence_dir(rel_stack, "docker-fanout")
    run_id = start_run(rel_stack, dag_id, "docker-fanout", evidence)

    def mapped() -> list[dict[str, Any]]:
        return client.mapped_task_instances(dag_id, run_id, task_id)

    def all_deferred() -> list[dict[str, Any]] | None:
        tis = mapped()
        ended = [(ti["map_index"], ti["state"]) for ti in tis if ti["state"] in ("failed", "upstream_failed")]
        assert not ended, f"failed before the triggerer was killed: {ended}"
        return tis if len(tis) == DOCKER_FANOUT and all(ti["state"] == "deferred" for ti in tis) else None

    tis = wait_until(all_deferred, 300, f"all {DOCKER_FANOUT} container tasks to be deferred", interval=1.0)
    wait_until(lambda: len(starts(evidence)) >= DOCKER_FANOUT, 120, f"{DOCKER_FANOUT} started containers")
    wait_until(
        lambda: trigger_log_started(rel_stack, dag_id, run_id, task_id) >= DOCKER_FANOUT,
        90,
        "the triggers to run",
    )
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

    def all_done() -> list[dict[str, Any]] | None:
        tis = mapped()
        bad = [(ti["map_index"], ti["state"]) for ti in tis if ti["state"] in ("failed", "upstream_failed")]
        assert not bad, f"tasks failed after the triggerer restart: {bad}"
        return tis if all(ti["state"] == "success" for ti in tis) else None

    tis = wait_until(all_done, 240, f"all {DOCKER_FANOUT} tasks to succeed", interval=1.0)
    report(f"scenario 5A: all {DOCKER_FANOUT} succeeded {time.monotonic() - t_kill:.1f}s after the SIGKILL")
    lines = starts(evidence)
    assert len(lines) == DOCKER_FANOUT, f"{len(lines)} container starts for {DOCKER_FANOUT} tasks"
    assert sorted({ti["try_number"] for ti in tis}) == [1]
    outputs = {
        index: client.xcom(dag_id, run_id, task_id, "return_value", map_index=index)
        for index in range(DOCKER_FANOUT)
    }
    wrong = {i: v for i, v in outputs.items() if not (isinstance(v, dict) and v.get("key") == f"c{i:02d}")}
    left = containers(dag_id, run_id)
    report(
        f"scenario 5A: {len(lines)} container starts for {DOCKER_FANOUT} tasks, outputs in XCom "
        f"{DOCKER_FANOUT - len(wrong)}/{DOCKER_FANOUT}, containers left {len(left)}"
    )
    assert not wrong, wrong
    assert not left, left


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
