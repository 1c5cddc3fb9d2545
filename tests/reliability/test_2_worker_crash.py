"""Scenario 2: the Airflow worker dies (SIGKILL) right after ``start_task``, before the deferral.

``rel_worker_crash`` runs on the test-only executor ``crashy-local`` (crashy_executor.py): try 1
records the execution in the task state store, starts the local process, then its task process
SIGKILLs itself. docs/reliability.md, "A lost worker neither duplicates nor orphans": try 2 (retries=1) must
find try 1's still-running execution, adopt it rather than start another, and end with its outputs.
The local process waits for the test's ``release`` file, so it is certainly still running when
try 2 looks at it.
"""

from __future__ import annotations

import time

import pytest

from harness.airflow_stack import AirflowStack, process_alive, wait_until
from tests.reliability.helpers import (
    execution_records,
    kill_all,
    leaked_processes,
    new_evidence_dir,
    read_json,
    release,
    report,
    snapshot,
    start_run,
    starts,
    task_log,
)

pytestmark = pytest.mark.e2e

DAG_ID, TASK_ID = "rel_worker_crash", "crashy"


@pytest.mark.dag_id(DAG_ID)
def test_worker_sigkill_after_start_is_adopted_by_the_next_try(rel_stack: AirflowStack) -> None:
    client = rel_stack.client
    evidence = new_evidence_dir(rel_stack, "crash")
    run_id = start_run(rel_stack, DAG_ID, "crash", evidence)
    task_folder = rel_stack.data_dir / DAG_ID / run_id / TASK_ID
    crash_log = task_folder / "crashes.txt"

    wait_until(lambda: crash_log.exists() and crash_log.read_text().strip(), 120, "the first try to crash")
    crashed_at, worker_pid, generated_name = crash_log.read_text().split()[:3]
    crash_time = float(crashed_at)
    first = wait_until(lambda: starts(evidence), 10, "the command's start line")
    assert len(first) == 1, first
    processes = snapshot([first[0].pid, first[0].child_pid] if first[0].child_pid else [first[0].pid])
    pid_record = read_json(rel_stack.local_records(task_folder / "1") / "pid.json")
    assert pid_record is not None, "try 1 launched nothing"
    processes.update(snapshot([int(pid_record["supervisor_pid"])]))
    assert not process_alive(int(worker_pid)), "the worker's task process should be dead"

    try:
        # How long until Airflow notices that try 1's worker is gone (the task leaves "running").
        seen: list[tuple[float, str, int]] = []

        def noticed() -> bool:
            ti = client.task_instance(DAG_ID, run_id, TASK_ID)
            if not seen or seen[-1][1:] != (ti["state"], ti["try_number"]):
                seen.append((time.time() - crash_time, ti["state"], ti["try_number"]))
            return ti["try_number"] > 1 or ti["state"] not in ("running", "queued", "scheduled", None)

        wait_until(noticed, 300, "Airflow to notice the dead worker", interval=0.1)
        notice_seconds, notice_state, _ = seen[-1]
        report(
            f"scenario 2: Airflow noticed the SIGKILLed worker after {notice_seconds:.2f}s "
            f"(task went to {notice_state!r}); states seen: "
            + ", ".join(f"{s}@try{t}+{at:.1f}s" for at, s, t in seen)
        )

        def second_try_deferred() -> bool:
            ti = client.task_instance(DAG_ID, run_id, TASK_ID)
            assert ti["state"] not in ("failed", "success", "upstream_failed"), (
                ti["state"],
                ti["try_number"],
            )
            return ti["try_number"] == 2 and ti["state"] == "deferred"

        wait_until(second_try_deferred, 120, "try 2 to defer")
        report(f"scenario 2: try 2 deferred {time.time() - crash_time:.1f}s after the crash")
        alive_at_adoption = [pid for pid, ct in processes.items() if process_alive(pid, ct)]
        assert len(alive_at_adoption) == len(processes), "try 1's execution should still run"
        log2 = task_log(rel_stack, DAG_ID, run_id, TASK_ID, 2)
        assert "re-attached to" in log2 and generated_name in log2, log2[-3000:]

        release(evidence)
        ti = client.wait_for_task_state(DAG_ID, run_id, TASK_ID, "success", timeout=90)
    finally:
        left = kill_all(processes)

    lines = starts(evidence)
    second_claim = (rel_stack.local_records(task_folder / "2") / "claim").exists()
    report(
        f"scenario 2: executions started {len(lines)} (expected 1), try 2 launched its own: {second_claim}, "
        f"final state {ti['state']} on try {ti['try_number']}"
    )
    assert len(lines) == 1, lines
    assert not second_claim
    assert ti["try_number"] == 2
    value = client.xcom(DAG_ID, run_id, TASK_ID, "return_value")
    assert value == {"key": "crashy", "pid": first[0].pid}, value
    assert client.xcom(DAG_ID, run_id, TASK_ID, "pid") == first[0].pid
    leaked = leaked_processes(execution_records(rel_stack, DAG_ID, run_id), [first[0].child_pid])
    report(f"scenario 2: outputs in XCom {value}; leaked processes afterwards: {len(leaked)} {leaked}")
    assert not leaked and not left, (leaked, left)
