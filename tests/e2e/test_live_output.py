"""What a person in the Airflow UI sees while a deferred task runs: its output in the Logs tab as it
is printed (read here through the REST API the UI uses), tagged by stream, kept across a triggerer
that is SIGKILLed and replaced, and what was printed until a user marks the task failed."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from harness.airflow_stack import AirflowStack, read_json, start_run, wait_until
from tests.e2e.test_local_stack import wait_started

pytestmark = pytest.mark.e2e

DAG_ID, TASK_ID = "e2e_live_output", "ticker"
TICK = re.compile(r"^\[stdout\] tick (\d{3})$")


def ticks(messages: list[str]) -> list[int]:
    """The tick numbers in the log, in order, repeats included (one record may hold many lines)."""
    return [
        int(m.group(1)) for message in messages for line in message.split("\n") if (m := TICK.match(line))
    ]


def log_of(stack: AirflowStack, run_id: str) -> list[str]:
    return stack.client.task_log(DAG_ID, run_id, TASK_ID)


def printed(folder: Path) -> list[int]:
    """The tick numbers the task printed, from its own stdout.log."""
    lines = (folder / "logs" / "stdout.log").read_text().splitlines()
    return [int(line.split()[1]) for line in lines if line.startswith("tick ")]


def started_ticker(stack: AirflowStack, label: str) -> tuple[str, Path]:
    """A run of the ticker, once its process runs: the run id and the execution folder."""
    run_id = start_run(stack, DAG_ID, label)
    stack.client.wait_for_task_state(DAG_ID, run_id, TASK_ID, "deferred", timeout=60)
    folder = stack.execution_dir(DAG_ID, run_id, TASK_ID)
    wait_started(stack, folder)
    return run_id, folder


@pytest.mark.dag_id(DAG_ID)
def test_output_shows_while_the_task_runs_and_survives_a_triggerer_restart(
    airflow_stack: AirflowStack,
) -> None:
    run_id, folder = started_ticker(airflow_stack, "live")
    t0 = time.monotonic()

    seen = wait_until(lambda: ticks(log_of(airflow_stack, run_id)) or None, 30, "a tick in the task log")
    shown_after = time.monotonic() - t0
    assert not (airflow_stack.local_records(folder) / "exit.json").exists(), "the task ended: not live"
    print(
        f"[e2e] first output in the Logs tab {shown_after:.1f}s after the process started ({len(seen)} ticks)"
    )
    assert any(
        line.startswith("[stderr] warn ") for m in log_of(airflow_stack, run_id) for line in m.split("\n")
    )

    airflow_stack.restart_triggerer()  # SIGKILL: the new triggerer goes on from the cursor on disk
    airflow_stack.wait_triggerer_up()
    before = max(ticks(log_of(airflow_stack, run_id)))
    wait_until(
        lambda: max(ticks(log_of(airflow_stack, run_id)), default=0) > before + 3,
        90,
        "ticks copied by the new triggerer",
    )
    (folder / "work" / "release").touch()
    airflow_stack.client.wait_for_task_state(DAG_ID, run_id, TASK_ID, "success", timeout=60)

    messages = log_of(airflow_stack, run_id)
    got = ticks(messages)
    ticked = printed(folder)
    assert sorted(set(got)) == ticked, "a line printed by the task is missing from the task log"
    first_seen = sorted(set(got), key=got.index)
    assert first_seen == ticked, "lines out of order"
    # Where the copy stands is written at most every 30 s: a SIGKILL repeats at most the lines
    # copied in the 30 s before it (100 ticks at one per 0.3 s, plus the copy in flight).
    repeats = len(got) - len(set(got))
    assert repeats <= 120, f"{repeats} lines copied twice"
    assert any(line == "[stdout] released" for m in messages for line in m.split("\n"))
    assert not any(m.startswith("output of ") for m in messages), "the output was dumped again at the end"
    print(f"[e2e] {len(ticked)} lines printed, all in the task log, {repeats} repeated across the SIGKILL")


@pytest.mark.dag_id(DAG_ID)
def test_output_printed_until_a_user_marks_the_task_failed_stays_in_its_log(
    airflow_stack: AirflowStack,
) -> None:
    run_id, folder = started_ticker(airflow_stack, "killed")
    wait_until(lambda: airflow_stack.trigger_started(DAG_ID, run_id, TASK_ID), 30, "the trigger to run")
    time.sleep(2)  # a few ticks more than the last copy
    airflow_stack.client.set_task_state(DAG_ID, run_id, TASK_ID, "failed")
    wait_until(lambda: read_json(airflow_stack.local_records(folder) / "exit.json"), 30, "the kill")

    def all_copied() -> bool:
        return sorted(set(ticks(log_of(airflow_stack, run_id)))) == printed(folder)

    wait_until(all_copied, 20, "the output printed until the kill in the task log")
    got = ticks(log_of(airflow_stack, run_id))
    assert len(got) == len(set(got)), f"lines copied twice: {sorted(t for t in set(got) if got.count(t) > 1)}"
