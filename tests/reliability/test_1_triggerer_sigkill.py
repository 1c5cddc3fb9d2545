"""Scenario 1: the triggerer is SIGKILLed while fifty tasks are deferred on the local executor.

One DAG run of ``rel_fanout``: fifty mapped ``ExecutorOperator`` instances, each starting a local
process that writes one line to a shared ``starts.txt`` and waits for the test's ``release``, then
sleeps 20 s. Once all fifty are deferred and their triggers run, the test releases them and
SIGKILLs the triggerer (no clean shutdown at all), then starts a new one. Expected: the new
triggerer re-attaches to every execution (never starts one again): fifty successes, exactly fifty
starts, all fifty outputs in XCom, and no process left behind.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from harness.airflow_stack import AirflowStack, process_alive, wait_until
from tests.reliability.dags.reliability_dags import FANOUT
from tests.reliability.helpers import (
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
)

pytestmark = pytest.mark.e2e

DAG_ID, TASK_ID = "rel_fanout", "sleeper"
SLEEP_AFTER_RELEASE = 20


@pytest.mark.dag_id(DAG_ID)
def test_triggerer_sigkill_with_fifty_deferred_tasks(rel_stack: AirflowStack) -> None:
    client = rel_stack.client
    evidence = new_evidence_dir(rel_stack, "fanout")
    t_run = time.monotonic()
    run_id = start_run(rel_stack, DAG_ID, "fanout", evidence, sleep=str(SLEEP_AFTER_RELEASE))

    def mapped() -> list[dict[str, Any]]:
        return client.mapped_task_instances(DAG_ID, run_id, TASK_ID)

    def all_deferred() -> list[dict[str, Any]] | None:
        tis = mapped()
        failed = [ti for ti in tis if ti["state"] in ("failed", "upstream_failed", "success")]
        assert not failed, (
            f"ended before the triggerer was killed: {[(t['map_index'], t['state']) for t in failed]}"
        )
        return tis if len(tis) == FANOUT and all(ti["state"] == "deferred" for ti in tis) else None

    tis = wait_until(all_deferred, 300, f"all {FANOUT} mapped tasks to be deferred", interval=1.0)
    deferred_after = time.monotonic() - t_run
    wait_until(lambda: len(starts(evidence)) >= FANOUT, 60, f"{FANOUT} started processes")
    wait_until(
        lambda: trigger_log_started(rel_stack, DAG_ID, run_id, TASK_ID) >= FANOUT,
        90,
        f"the {FANOUT} triggers to run",
        interval=0.5,
    )
    report(f"scenario 1: {FANOUT} mapped tasks deferred {deferred_after:.1f}s after the trigger of the run")
    before = {s.key: s for s in starts(evidence)}
    assert len(before) == FANOUT, sorted(before)
    processes = snapshot(s.pid for s in before.values())
    assert len(processes) == FANOUT, "every task's process should be running (they wait for the release)"
    old_jobs = {(ti.get("triggerer_job") or {}).get("id") for ti in tis}

    try:
        release(evidence)  # each execution now sleeps 20 s: the kill and the takeover fall in there
        t_kill = time.monotonic()
        rel_stack.restart_triggerer()  # SIGKILL of its whole process group, then a new one
        still_running = [pid for pid, ct in processes.items() if process_alive(pid, ct)]
        report(
            f"scenario 1: triggerer (jobs {sorted(j for j in old_jobs if j is not None)}) SIGKILLed "
            f"with {FANOUT} tasks deferred; {len(still_running)}/{FANOUT} executions still running"
        )
        assert len(still_running) == FANOUT, "a triggerer's death must not kill any execution"

        taken_over: dict[str, float] = {}

        def all_moved() -> bool:
            tis = mapped()
            moved = 0
            for ti in tis:
                job = (ti.get("triggerer_job") or {}).get("id")
                if ti["state"] == "success" or (job is not None and job not in old_jobs):
                    moved += 1
                else:
                    assert ti["state"] == "deferred", (ti["map_index"], ti["state"])
            if moved == FANOUT:
                taken_over["seconds"] = time.monotonic() - t_kill
                return True
            return False

        wait_until(all_moved, 120, "the new triggerer to take all triggers over", interval=0.5)
        running_at_takeover = sum(process_alive(pid, ct) for pid, ct in processes.items())
        report(
            f"scenario 1: new triggerer took all {FANOUT} triggers over {taken_over['seconds']:.1f}s after the "
            f"SIGKILL ({running_at_takeover} executions still running then)"
        )

        def all_done() -> list[dict[str, Any]] | None:
            tis = mapped()
            bad = [
                (ti["map_index"], ti["state"]) for ti in tis if ti["state"] in ("failed", "upstream_failed")
            ]
            assert not bad, f"tasks failed after the triggerer restart: {bad}"
            return tis if all(ti["state"] == "success" for ti in tis) else None

        tis = wait_until(all_done, 240, f"all {FANOUT} tasks to succeed", interval=1.0)
        report(f"scenario 1: all {FANOUT} succeeded {time.monotonic() - t_kill:.1f}s after the SIGKILL")
    finally:
        leftovers = kill_all(processes)

    lines = starts(evidence)
    tries = sorted({ti["try_number"] for ti in tis})
    second_tries = sorted(rel_stack.data_dir.joinpath(DAG_ID, run_id, TASK_ID).glob("*/2"))
    report(
        f"scenario 1: executions started {len(lines)} (expected {FANOUT}), distinct keys "
        f"{len({s.key for s in lines})}, try numbers {tries}, second-try folders {len(second_tries)}"
    )
    assert len(lines) == FANOUT, f"{len(lines)} starts for {FANOUT} tasks: {[s.key for s in lines]}"
    assert tries == [1], tries
    assert not second_tries, second_tries

    # Every output is in XCom, and it is the one of the process that started first (no re-run).
    by_index = {ti["map_index"]: ti for ti in tis}
    assert sorted(by_index) == list(range(FANOUT))
    wrong = {}
    for index in range(FANOUT):
        key = f"m{index:02d}"
        value = client.xcom(DAG_ID, run_id, TASK_ID, "return_value", map_index=index)
        if value != {"key": key, "pid": before[key].pid}:
            wrong[index] = value
    report(f"scenario 1: return values in XCom: {FANOUT - len(wrong)}/{FANOUT} correct")
    assert not wrong, wrong

    records = execution_records(rel_stack, DAG_ID, run_id)
    leaked = leaked_processes(records, [s.child_pid for s in lines])
    report(
        f"scenario 1: {len(records)} execution records, leaked processes afterwards: {len(leaked)} {leaked} "
        f"(killed by the test's own clean-up: {leftovers})"
    )
    assert len(records) == FANOUT
    assert not leaked and not leftovers
    client.wait_for_run_state(DAG_ID, run_id, "success", timeout=60)
