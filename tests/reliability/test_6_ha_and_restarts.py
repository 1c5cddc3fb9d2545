"""Scenario 6: the faults of running across machines, on the real stack (PostgreSQL, local executor).

- **Two triggerers (HA)**: a second ``airflow triggerer`` runs beside the first; a hundred mapped
  tasks (``rel_ha_triggerers``) defer on them. The triggerer holding the most is SIGKILLed and no new
  one is started: the surviving one, already running, must take every trigger over. Expected: a
  hundred successes, a hundred starts, a hundred outputs in XCom, nothing leaked.
- **Scheduler and PostgreSQL restarts**: twenty deferred tasks (``rel_restarts``); the scheduler is
  SIGKILLed and started again, then PostgreSQL is stopped for 10 s and started again, all while the
  executions run. Airflow's scheduler, triggerer and dag-processor exit when the database goes away
  (Airflow's own behaviour): the test restarts whatever exited, as a platform's restart policy does.
  Expected: twenty successes on try 1, twenty starts, twenty outputs.
"""

from __future__ import annotations

import signal
import time

import pytest

from harness.airflow_stack import AirflowStack, wait_until
from tests.reliability.dags.reliability_dags import HA_FANOUT, RESTART_FANOUT
from tests.reliability.helpers import (
    Takeover,
    alive,
    execution_records,
    kill_all,
    leaked_processes,
    new_evidence_dir,
    release,
    report,
    snapshot,
    start_run,
    starts,
    trigger_log_started,
    wait_mapped,
    wrong_mapped_outputs,
)
from tests.reliability.postgres import PostgresCluster

pytestmark = pytest.mark.e2e

TASK_ID = "sleeper"


def finish(stack: AirflowStack, dag_id: str, run_id: str, count: int, evidence: object, label: str) -> None:
    """All ``count`` tasks succeeded on try 1, each started once, each output in XCom, no leak."""
    tis = wait_mapped(stack, dag_id, run_id, TASK_ID, count, "success", timeout=300)
    lines = starts(evidence)  # type: ignore[arg-type]
    first = {s.key: s for s in lines}
    tries = sorted({ti["try_number"] for ti in tis})
    wrong = wrong_mapped_outputs(stack, dag_id, run_id, TASK_ID, first)
    leaked = leaked_processes(execution_records(stack, dag_id, run_id), [s.child_pid for s in lines])
    report(
        f"{label}: {count}/{count} succeeded, executions started {len(lines)} (expected {count}), try numbers "
        f"{tries}, outputs in XCom {count - len(wrong)}/{count} correct, leaked processes {len(leaked)}"
    )
    assert len(lines) == count and len(first) == count, [s.key for s in lines]
    assert tries == [1], tries
    assert not wrong, wrong
    assert not leaked, leaked


@pytest.mark.dag_id("rel_ha_triggerers")
def test_two_triggerers_one_sigkilled_the_other_takes_every_trigger_over(rel_stack: AirflowStack) -> None:
    dag_id, label = "rel_ha_triggerers", "scenario 6 (HA)"
    takeover = Takeover.start(rel_stack)
    evidence = new_evidence_dir(rel_stack, "ha")
    run_id = start_run(rel_stack, dag_id, "ha", evidence)
    processes: dict[int, float] = {}
    try:
        wait_mapped(rel_stack, dag_id, run_id, TASK_ID, HA_FANOUT, "deferred", timeout=300)
        wait_until(lambda: len(starts(evidence)) >= HA_FANOUT, 120, f"{HA_FANOUT} started processes")
        wait_until(
            lambda: trigger_log_started(rel_stack, dag_id, run_id, TASK_ID) >= HA_FANOUT,
            120,
            f"the {HA_FANOUT} triggers to run",
            interval=0.5,
        )
        processes = snapshot(s.pid for s in starts(evidence))
        assert len(processes) == HA_FANOUT
        release(evidence)  # each now sleeps 10 s: the kill and the takeover fall in there
        takeover.kill_the_busiest(rel_stack.client.mapped_task_instances(dag_id, run_id, TASK_ID), label)
        takeover.wait_all_on_the_survivor(dag_id, run_id, TASK_ID, label)
        finish(rel_stack, dag_id, run_id, HA_FANOUT, evidence, label)
        report(
            f"{label}: all {HA_FANOUT} succeeded {time.monotonic() - takeover.t_kill:.1f}s after the SIGKILL"
        )
    finally:
        kill_all(processes)
        takeover.back_to_one(label)


@pytest.mark.dag_id("rel_restarts")
def test_scheduler_and_postgres_restarts_while_tasks_are_deferred(
    rel_stack: AirflowStack, rel_postgres: PostgresCluster
) -> None:
    dag_id = "rel_restarts"
    evidence = new_evidence_dir(rel_stack, "restarts")
    run_id = start_run(rel_stack, dag_id, "restarts", evidence)
    processes: dict[int, float] = {}
    try:
        wait_mapped(rel_stack, dag_id, run_id, TASK_ID, RESTART_FANOUT, "deferred", timeout=300)
        wait_until(
            lambda: len(starts(evidence)) >= RESTART_FANOUT, 120, f"{RESTART_FANOUT} started processes"
        )
        processes = snapshot(s.pid for s in starts(evidence))
        rel_stack.kill_component("scheduler", signal.SIGKILL)
        rel_stack.start_component("scheduler")
        rel_stack.wait_healthy(components=["scheduler"])
        report(f"scenario 6: scheduler SIGKILLed and started again with {RESTART_FANOUT} tasks deferred")
        down = rel_postgres.restart(down_seconds=10)
        # Airflow's components exit when their database goes away; a platform restarts them.
        restarted = rel_stack.supervise(seconds=15)
        running = len(alive(processes))
        report(
            f"scenario 6: PostgreSQL stopped (fast) and started again: unreachable {down:.1f}s; Airflow "
            f"components that exited and were restarted: {restarted}; executions still running {running}/"
            f"{RESTART_FANOUT}"
        )
        rel_stack.wait_healthy(timeout=120)
        assert running == RESTART_FANOUT, "a database restart must not stop an execution"
        release(evidence)
        finish(rel_stack, dag_id, run_id, RESTART_FANOUT, evidence, "scenario 6 (restarts)")
    finally:
        kill_all(processes)
