"""Scenario 3: user actions on a deferred task stop its local execution; a triggerer restart does not.

docs/reliability.md, "User actions stop the backend": marking a deferred task failed or success, clearing it,
or failing its run calls the trigger's ``on_kill``, which kills the execution; ``cleanup()``, which
runs on every triggerer restart, kills nothing. Four runs of ``rel_kill_local`` start together (one
per action; each task a process tree: the command and a ``sleep`` child, plus the local executor's
supervisor); each test then does its action and times until the whole tree is gone. Budget: two
poll intervals plus Airflow's ~2 s delay before ``on_kill``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.airflow_stack import AirflowStack, StackError, process_alive, wait_until
from tests.reliability.helpers import (
    ACTIONS,
    KILL_BUDGET,
    action_params,
    alive,
    explain_clear,
    kill_all,
    new_evidence_dir,
    read_json,
    release,
    report,
    snapshot,
    start_run,
    starts,
    trigger_log_started,
    user_action,
)

pytestmark = pytest.mark.e2e

DAG_ID, TASK_ID = "rel_kill_local", "victim"
WAIT = 15.0  # how long a kill is waited for before it counts as never (the budget is far shorter)


@dataclasses.dataclass
class Victim:
    action: str
    run_id: str
    evidence: Path
    folder: Path  # the try-1 execution folder
    processes: dict[int, float]  # command, its sleep child, the supervisor


def prepare(stack: AirflowStack, victim: Victim) -> None:
    """Wait until the run's task is deferred, its process tree runs and its trigger runs."""
    stack.client.wait_for_task_state(DAG_ID, victim.run_id, TASK_ID, "deferred", timeout=120)
    line = wait_until(lambda: starts(victim.evidence), 30, f"{victim.action}: the command to start")[0]
    pid_record = wait_until(
        lambda: read_json(stack.local_records(victim.folder) / "pid.json"), 30, "pid.json"
    )
    victim.processes = snapshot([line.pid, line.child_pid, int(pid_record["supervisor_pid"])])
    assert len(victim.processes) == 3, victim.processes
    # Airflow calls on_kill() only for a trigger that runs: act only after that.
    wait_until(
        lambda: trigger_log_started(stack, DAG_ID, victim.run_id, TASK_ID) >= 1, 60, "the trigger to run"
    )


@pytest.fixture(scope="module")
def victims(rel_stack: AirflowStack) -> Iterator[dict[str, Victim]]:
    """One run per action, started together (the machine has two cores: overlap the start-ups)."""
    found: dict[str, Victim] = {}
    for action in ACTIONS:
        evidence = new_evidence_dir(rel_stack, action)
        run_id = start_run(rel_stack, DAG_ID, action.replace("_", "-"), evidence)
        folder = rel_stack.execution_dir(DAG_ID, run_id, TASK_ID, try_number=1)
        found[action] = Victim(action, run_id, evidence, folder, {})
    try:
        yield found
    finally:
        for victim in found.values():  # whatever a failed test left running (clear's try 2, ...)
            with contextlib.suppress(StackError):
                user_action(rel_stack, "fail_run", DAG_ID, victim.run_id, TASK_ID)
            release(victim.evidence)
        time.sleep(1)
        for victim in found.values():
            later = snapshot(p for s in starts(victim.evidence) for p in (s.pid, s.child_pid) if p)
            kill_all({**victim.processes, **later})


@pytest.mark.dag_id(DAG_ID)
@pytest.mark.parametrize("action", action_params())
def test_user_action_kills_the_local_process_tree(
    rel_stack: AirflowStack, victims: dict[str, Victim], action: str
) -> None:
    victim = victims[action]
    prepare(rel_stack, victim)
    t0 = time.monotonic()
    user_action(rel_stack, action, DAG_ID, victim.run_id, TASK_ID)
    try:
        wait_until(
            lambda: not alive(victim.processes), WAIT, f"{action}: the process tree to end", interval=0.05
        )
        elapsed: float | None = time.monotonic() - t0
    except StackError:
        elapsed = None
    finally:
        left = kill_all(victim.processes)
    shown = f"STILL RUNNING after {WAIT:g}s" if elapsed is None else f"gone in {elapsed:.2f}s"
    report(f"scenario 3 (local): {action} -> process tree (3 processes) {shown} (budget {KILL_BUDGET:g}s)")
    if elapsed is None and action == "clear":
        report(f"scenario 3 (local): clear -> {explain_clear(rel_stack, DAG_ID, victim.run_id, TASK_ID)}")
    assert elapsed is not None, f"{action}: processes {left} still ran {WAIT:g}s after the action"
    assert elapsed <= KILL_BUDGET, f"{action}: the kill took {elapsed:.2f}s, budget {KILL_BUDGET:g}s"
    killed = read_json(rel_stack.local_records(victim.folder) / "killed.json")
    # A clear starts try 2 before Airflow cancels try 1's trigger: try 2 stops the old execution
    # first ("superseded by a new try"); every other action goes through the trigger's on_kill.
    expected = ("user action", "superseded by a new try") if action == "clear" else ("user action",)
    assert killed is not None and any(e in killed["reason"] for e in expected), killed
    exited = wait_until(
        lambda: read_json(rel_stack.local_records(victim.folder) / "exit.json"), 10, "exit.json"
    )
    assert exited["exit_code"] == -signal.SIGTERM, exited

    client = rel_stack.client
    if action == "clear":
        # A cleared task runs again: try 2 must start a new execution (try 1's was killed, not adopted).
        def second_start() -> bool:
            ti = client.task_instance(DAG_ID, victim.run_id, TASK_ID)
            assert ti["state"] not in ("failed", "success"), f"try {ti['try_number']} ended {ti['state']}"
            return len(starts(victim.evidence)) >= 2 and ti["state"] == "deferred"

        wait_until(second_start, 90, "try 2 to start a new execution and defer")
        lines = starts(victim.evidence)
        ti = client.task_instance(DAG_ID, victim.run_id, TASK_ID)
        report(
            f"scenario 3 (local): after clear, try {ti['try_number']} started a new execution "
            f"(pid {lines[-1].pid}, {len(lines)} starts in all) and is {ti['state']}"
        )
        assert len(lines) == 2 and lines[1].pid != lines[0].pid, lines
        assert ti["try_number"] == 2
    else:
        state = {"mark_failed": "failed", "mark_success": "success", "fail_run": "failed"}[action]
        ti = client.task_instance(DAG_ID, victim.run_id, TASK_ID)
        assert ti["state"] == state, ti["state"]
        assert len(starts(victim.evidence)) == 1


@pytest.mark.dag_id("rel_restart_local")
def test_triggerer_sigterm_restart_kills_nothing(rel_stack: AirflowStack) -> None:
    """A triggerer stopped cleanly (SIGTERM: ``cleanup()`` runs, not ``on_kill()``) and replaced."""
    dag_id, task_id, client = "rel_restart_local", "survivor", rel_stack.client
    evidence = new_evidence_dir(rel_stack, "restart")
    run_id = start_run(rel_stack, dag_id, "restart", evidence)
    folder = rel_stack.execution_dir(dag_id, run_id, task_id)
    client.wait_for_task_state(dag_id, run_id, task_id, "deferred", timeout=120)
    line = wait_until(lambda: starts(evidence), 30, "the command to start")[0]
    pid_record = wait_until(lambda: read_json(rel_stack.local_records(folder) / "pid.json"), 30, "pid.json")
    processes = snapshot([line.pid, line.child_pid, int(pid_record["supervisor_pid"])])
    wait_until(lambda: trigger_log_started(rel_stack, dag_id, run_id, task_id) >= 1, 60, "the trigger to run")
    old_job = (client.task_instance(dag_id, run_id, task_id).get("triggerer_job") or {}).get("id")

    try:
        t0 = time.monotonic()
        rel_stack.kill_component("triggerer", signal.SIGTERM, timeout=60)
        shutdown = time.monotonic() - t0
        rel_stack.start_component("triggerer")
        assert len(alive(processes)) == len(processes), "the SIGTERM of the triggerer killed the execution"

        def moved() -> bool:
            ti = client.task_instance(dag_id, run_id, task_id)
            assert ti["state"] == "deferred", ti["state"]
            job = (ti.get("triggerer_job") or {}).get("id")
            return job is not None and job != old_job

        wait_until(moved, 90, "the new triggerer to take the trigger over")
        takeover = time.monotonic() - t0
        # Give a wrong kill every chance to land: a few poll intervals with the new triggerer.
        time.sleep(3)
        survivors = alive(processes)
        killed = read_json(rel_stack.local_records(folder) / "killed.json")
        report(
            f"scenario 3 (local): triggerer SIGTERM (shutdown {shutdown:.1f}s) + new one (took over after "
            f"{takeover:.1f}s): {len(survivors)}/{len(processes)} processes still running, killed.json: {killed}"
        )
        assert len(survivors) == len(processes), f"only {survivors} of {sorted(processes)} still run"
        assert killed is None, killed
        release(evidence)
        ti = client.wait_for_task_state(dag_id, run_id, task_id, "success", timeout=60)
    finally:
        left = kill_all(processes)
    lines = starts(evidence)
    assert len(lines) == 1, lines
    assert ti["try_number"] == 1
    assert client.xcom(dag_id, run_id, task_id, "return_value") == {"key": "survivor", "pid": line.pid}
    assert not process_alive(line.pid) and not left
