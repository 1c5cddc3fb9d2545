"""Scenario 2: the Airflow worker dies (SIGKILL) right after ``start_task``, before the deferral.

``rel_worker_crash`` runs on the test-only executor ``crashy-local``, ``rel_docker_worker_crash``
on ``crashy-docker`` (crashy_executor.py): try 1 records the execution in the task state store,
starts it (a local process, a container), then its task process SIGKILLs itself.
docs/reliability.md, "A lost worker neither duplicates nor orphans": try 2 (retries=1) must find
try 1's still-running execution, adopt it rather than start another, and end with its outputs.
The command waits for the test's ``release`` file, so it is certainly still running when try 2
looks at it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.airflow_stack import AirflowStack, process_alive, wait_until
from tests.reliability.helpers import (
    Start,
    containers,
    execution_records,
    kill_all,
    leaked_processes,
    new_evidence_dir,
    read_json,
    release,
    report,
    running,
    snapshot,
    start_run,
    starts,
    task_log,
)

pytestmark = pytest.mark.e2e

TASK_ID = "crashy"


@dataclasses.dataclass(frozen=True)
class Crash:
    """Try 1 of one run, dead in its worker after starting its execution."""

    dag_id: str
    run_id: str
    evidence: Path
    task_folder: Path
    crash_time: float
    generated_name: str
    start: Start
    """The command's one start line (try 1's execution)."""


def crash_first_try(stack: AirflowStack, dag_id: str, label: str) -> Crash:
    evidence = new_evidence_dir(stack, label)
    run_id = start_run(stack, dag_id, label, evidence)
    task_folder = stack.data_dir / dag_id / run_id / TASK_ID
    crash_log = task_folder / "crashes.txt"
    wait_until(lambda: crash_log.exists() and crash_log.read_text().strip(), 120, "the first try to crash")
    crashed_at, worker_pid, generated_name = crash_log.read_text().split()[:3]
    first = wait_until(lambda: starts(evidence), 30, "the command's start line")
    assert len(first) == 1, first
    assert not process_alive(int(worker_pid)), "the worker's task process should be dead"
    return Crash(dag_id, run_id, evidence, task_folder, float(crashed_at), generated_name, first[0])


def adopted(
    stack: AirflowStack, crash: Crash, still_running: Callable[[], bool], label: str
) -> dict[str, Any]:
    """Wait for Airflow to notice the dead worker and for try 2 to defer on try 1's execution
    (``still_running()`` then, and "re-attached to" it in try 2's log), release the command and
    return the task instance once it succeeded."""
    client = stack.client
    seen: list[tuple[float, str, int]] = []

    def noticed() -> bool:
        ti = client.task_instance(crash.dag_id, crash.run_id, TASK_ID)
        if not seen or seen[-1][1:] != (ti["state"], ti["try_number"]):
            seen.append((time.time() - crash.crash_time, ti["state"], ti["try_number"]))
        return ti["try_number"] > 1 or ti["state"] not in ("running", "queued", "scheduled", None)

    wait_until(noticed, 300, "Airflow to notice the dead worker", interval=0.1)
    notice_seconds, notice_state, _ = seen[-1]
    report(
        f"{label}: Airflow noticed the SIGKILLed worker after {notice_seconds:.2f}s "
        f"(task went to {notice_state!r}); states seen: "
        + ", ".join(f"{s}@try{t}+{at:.1f}s" for at, s, t in seen)
    )

    def second_try_deferred() -> bool:
        ti = client.task_instance(crash.dag_id, crash.run_id, TASK_ID)
        assert ti["state"] not in ("failed", "success", "upstream_failed"), (ti["state"], ti["try_number"])
        return ti["try_number"] == 2 and ti["state"] == "deferred"

    wait_until(second_try_deferred, 120, "try 2 to defer")
    report(f"{label}: try 2 deferred {time.time() - crash.crash_time:.1f}s after the crash")
    assert still_running(), "try 1's execution should still run"
    log2 = task_log(stack, crash.dag_id, crash.run_id, TASK_ID, 2)
    assert "re-attached to" in log2 and crash.generated_name in log2, log2[-3000:]
    release(crash.evidence)
    ti: dict[str, Any] = client.wait_for_task_state(
        crash.dag_id, crash.run_id, TASK_ID, "success", timeout=90
    )
    return ti


def outputs(stack: AirflowStack, crash: Crash) -> Any:
    """Try 1's execution's outputs in XCom, and its output (printed partly before the crash) in try
    2's Logs tab, each line once."""
    value = stack.client.xcom(crash.dag_id, crash.run_id, TASK_ID, "return_value")
    assert value == {"key": "crashy", "pid": crash.start.pid}, value
    assert stack.client.xcom(crash.dag_id, crash.run_id, TASK_ID, "pid") == crash.start.pid
    messages = stack.client.task_log(crash.dag_id, crash.run_id, TASK_ID, 2)
    shown = [line for message in messages for line in message.split("\n")]
    assert shown.count("[stdout] started crashy") == 1, shown[-60:]
    assert shown.count("[stdout] released") == 1, shown[-60:]
    return value


@pytest.mark.dag_id("rel_worker_crash")
def test_worker_sigkill_after_start_is_adopted_by_the_next_try(rel_stack: AirflowStack) -> None:
    crash = crash_first_try(rel_stack, "rel_worker_crash", "crash")
    first = crash.start
    processes = snapshot([first.pid, first.child_pid] if first.child_pid else [first.pid])
    pid_record = read_json(rel_stack.local_records(crash.task_folder / "1") / "pid.json")
    assert pid_record is not None, "try 1 launched nothing"
    processes.update(snapshot([int(pid_record["supervisor_pid"])]))
    try:
        ti = adopted(
            rel_stack, crash, lambda: all(process_alive(p, ct) for p, ct in processes.items()), "scenario 2"
        )
    finally:
        left = kill_all(processes)

    lines = starts(crash.evidence)
    second_claim = (rel_stack.local_records(crash.task_folder / "2") / "claim").exists()
    report(
        f"scenario 2: executions started {len(lines)} (expected 1), try 2 launched its own: {second_claim}, "
        f"final state {ti['state']} on try {ti['try_number']}"
    )
    assert len(lines) == 1, lines
    assert not second_claim
    assert ti["try_number"] == 2
    value = outputs(rel_stack, crash)
    leaked = leaked_processes(execution_records(rel_stack, crash.dag_id, crash.run_id), [first.child_pid])
    report(f"scenario 2: outputs in XCom {value}; leaked processes afterwards: {len(leaked)} {leaked}")
    assert not leaked and not left, (leaked, left)


@pytest.mark.dag_id("rel_docker_worker_crash")
def test_worker_sigkill_after_a_container_start_is_adopted_by_the_next_try(
    rel_stack: AirflowStack, docker_connection: None
) -> None:
    crash = crash_first_try(rel_stack, "rel_docker_worker_crash", "docker-crash")
    [name] = running(crash.dag_id, crash.run_id)
    assert name == crash.generated_name, (name, crash.generated_name)
    ti = adopted(rel_stack, crash, lambda: running(crash.dag_id, crash.run_id) == [name], "scenario 2B")

    lines = starts(crash.evidence)
    value = outputs(rel_stack, crash)
    left = containers(crash.dag_id, crash.run_id)
    report(
        f"scenario 2B: container starts {len(lines)} (expected 1), final state {ti['state']} on try "
        f"{ti['try_number']}, outputs in XCom {value}, containers left {len(left)}"
    )
    assert len(lines) == 1, lines
    assert ti["try_number"] == 2
    assert not left, left
