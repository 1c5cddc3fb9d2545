"""A user's mark failed / mark success stops the execution even while no triggerer runs.

The trigger's ``on_kill`` needs a triggerer that runs the trigger; the provider's listener
(airflow_provider/listener.py, shipped in its plugin) runs in the api-server when the user sets
the state. On a real stack (api-server, scheduler, dag-processor, triggerer; SQLite, LocalExecutor)
of its own, this module:

1. runs a task whose command (a process tree: Python and a ``sleep`` child) sleeps 120 s, waits
   until it is deferred and its trigger runs, SIGKILLs the triggerer, marks the task failed through
   the REST API and times until the whole tree (with the local executor's supervisor) is gone;
2. with the triggerer still down, runs another one that starts in a worker
   (``start_from_trigger=False``; its trigger never picked up by any triggerer), marks it success,
   and times the same; and one that starts in the triggerer (the default): deferred, nothing
   started; marked success, it must never start, not even when a triggerer comes back;
3. defers a short task (no triggerer yet), starts a triggerer again: that task runs to success by
   itself (outputs in XCom, nothing killed), the marked tasks stay failed / success, their runs
   end and nothing of them runs on (or ever ran, for the one that never started).

Test 1's task starts in the triggerer (``start_from_trigger``, the default): no handle is stored
anywhere then, the listener works it out from the trigger row the way the trigger does.

Found on the way (SQLite only): the new triggerer also runs the marked tasks' left-over trigger
rows (a triggerer assigns every trigger before it deletes the unused ones), and those fire at once
because their executions are dead. Airflow delivers such an event to whatever DEFERRED task has
that trigger id; SQLite reuses the id of a deleted row for the next trigger, so a task deferring
just then can be resumed with the stale event (seen here once: a task failed by
apache/airflow#72716 right after). PostgreSQL and MySQL never reuse ids. Test 3 therefore defers
its task before the triggerer starts.

The plugin is loaded from the ``airflow.plugins`` entry point, which is how Airflow (default
``lazy_discover_providers = True``) loads a provider's plugin. If the installed distribution does
not declare it yet, the stack gets a ``*.dist-info`` on its ``PYTHONPATH`` declaring exactly that
entry point (what ``pip install`` of the pyproject line leaves), as tests/reliability does for its
test executor.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from harness.airflow_stack import (
    AirflowStack,
    group_alive,
    process_alive,
    read_json,
    start_run,
    wait_until,
)

pytestmark = pytest.mark.e2e

DAG_ID, TASK_ID = "e2e_listener", "sleeper"
QUICK_DAG_ID, QUICK_TASK_ID = "e2e_listener_quick", "quick"
WORKER_DAG_ID = "e2e_listener_worker_start"  # the same sleeper, started in a worker
BUDGET = 10.0  # seconds from the PATCH until the process tree is gone
LISTENER_REASON = "by a user action (seen by the api-server)"
FIGURES: dict[str, float] = {}
MARKED: dict[str, tuple[str, str, Path]] = {}  # run id -> (dag id, the state the user set, records)
NEVER_STARTED: dict[str, str] = {}  # run id -> the state the user set (DAG_ID, nothing started)

# The task: a process tree (this process and a `sleep` child) recording its pids, sleeping 120 s.
SLEEPER = textwrap.dedent(
    """
    import os, subprocess, time
    pids = os.path.join(os.path.dirname(os.getcwd()), "pids.txt")
    child = subprocess.Popen(["sleep", "120"])
    with open(pids + ".tmp", "w") as fh:
        fh.write(f"{os.getpid()} {child.pid}")
    os.replace(pids + ".tmp", pids)
    time.sleep(120)
    """
)
QUICK = textwrap.dedent(
    """
    import sys, time
    from executors import task_io
    time.sleep(3)
    task_io.write_outputs(sys.argv[2], {"answer": 42}, sys.argv[3])
    """
)
DAG_FILE = f'''"""DAGs of tests/e2e/test_listener_stack.py (written there, into the stack's own dags folder)."""
import datetime as dt

from airflow.sdk import DAG

from airflow_provider.operators import ExecutorOperator

SLEEPER = {SLEEPER!r}
QUICK = {QUICK!r}
PLACEHOLDERS = ["{{{{.input}}}}", "{{{{.outputPrefix}}}}", "{{{{.taskTemplatePath}}}}"]
COMMON = dict(schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False, tags=["e2e"])

with DAG(dag_id={DAG_ID!r}, **COMMON):
    ExecutorOperator(
        task_id={TASK_ID!r}, executor_id="local", command=["python", "-c", SLEEPER], poll_interval=1
    )

with DAG(dag_id={WORKER_DAG_ID!r}, **COMMON):
    ExecutorOperator(
        task_id={TASK_ID!r},
        executor_id="local",
        command=["python", "-c", SLEEPER],
        poll_interval=1,
        start_from_trigger=False,
    )

with DAG(dag_id={QUICK_DAG_ID!r}, **COMMON):
    ExecutorOperator(
        task_id={QUICK_TASK_ID!r},
        executor_id="local",
        command=["python", "-c", QUICK, *PLACEHOLDERS],
        output_types={{"answer": int}},
        poll_interval=1,
    )
'''


@pytest.fixture(scope="module")
def airflow_stack(request: pytest.FixtureRequest) -> Iterator[AirflowStack]:
    """This module's own stack (it stops the triggerer, and may need the plugin entry point);
    named like the session's so that a failure report carries its logs."""
    home = Path(tempfile.mkdtemp(prefix="airflow-e2e-listener-"))
    dags = home / "dags"
    dags.mkdir()
    (dags / "e2e_listener.py").write_text(DAG_FILE)
    stack = AirflowStack(home, dags, poll_interval=1.0)
    print(f"\n[e2e-listener] AIRFLOW_HOME={home}; plugin from the installed airflow.plugins entry point")
    failed_before = request.session.testsfailed
    try:
        stack.start()
        print(f"[e2e-listener] stack healthy in {stack.startup_seconds:.1f}s at {stack.base_url}")
        yield stack
    finally:
        stack.stop()
        if FIGURES:
            shown = ", ".join(f"{k} {v:.2f}s" for k, v in FIGURES.items())
            print(f"\n[e2e-listener] PATCH -> process tree gone, no triggerer running: {shown}")
        if os.environ.get("E2E_KEEP_HOME") or request.session.testsfailed > failed_before:
            print(f"[e2e-listener] kept {home} for inspection")
        else:
            shutil.rmtree(home, ignore_errors=True)


# -- helpers -----------------------------------------------------------------------------------


def state_dir(stack: AirflowStack, pid: int) -> Path | None:
    """The local executor's record folder of the execution whose command is ``pid`` (found by its
    ``pid.json``, wherever the executor keeps it: the execution folder or its ``state_root``)."""
    for path in stack.home.rglob("pid.json"):
        record = read_json(path)
        if record is not None and record.get("pid") == pid:
            return path.parent
    return None


def deferred_tree(stack: AirflowStack, run_id: str, dag_id: str = DAG_ID) -> tuple[Path, dict[int, float]]:
    """Wait until the task is deferred and its tree runs: the executor's record folder of it and
    ``{pid: create_time}`` of the command, its ``sleep`` child and the local executor's supervisor."""
    stack.client.wait_for_task_state(dag_id, run_id, TASK_ID, "deferred", timeout=90)
    folder = stack.execution_dir(dag_id, run_id, TASK_ID)

    def pids() -> list[int] | None:
        with contextlib.suppress(OSError, ValueError):
            found = [int(p) for p in (folder / "pids.txt").read_text().split()]
            return found if len(found) == 2 else None
        return None

    command, child = wait_until(pids, 30, "the task's two processes to record their pids")
    records = wait_until(lambda: state_dir(stack, command), 30, "the local executor's pid.json")
    supervisor = int((read_json(records / "pid.json") or {})["supervisor_pid"])
    processes = {pid: psutil.Process(pid).create_time() for pid in (command, child, supervisor)}
    return records, processes


def alive(processes: dict[int, float]) -> list[int]:
    return [pid for pid, ct in processes.items() if process_alive(pid, ct)]


def kill_all(processes: dict[int, float]) -> list[int]:
    left = alive(processes)
    for pid in left:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return left


def no_triggerer(stack: AirflowStack) -> bool:
    """True when no triggerer process of this stack is alive."""
    if "triggerer" in stack.procs:
        return False
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            cmd = proc.info["cmdline"] or []
            if "triggerer" in cmd and proc.environ().get("AIRFLOW_HOME") == str(stack.home):
                return False
    return True


def without_a_triggerer(stack: AirflowStack) -> None:
    """Test 1 stops the triggerer; if it failed before doing so, stop it here."""
    if "triggerer" in stack.procs:
        stack.kill_component("triggerer", signal.SIGTERM, timeout=60)


def mark_and_time(
    stack: AirflowStack, run_id: str, new_state: str, processes: dict[int, float], dag_id: str = DAG_ID
) -> float | None:
    """PATCH the task's state; seconds until all of ``processes`` are gone (None: not in BUDGET),
    checking all along that no triggerer runs."""
    t0 = time.monotonic()
    stack.client.set_task_state(dag_id, run_id, TASK_ID, new_state)
    patched = time.monotonic() - t0
    deadline = t0 + BUDGET
    while alive(processes):
        assert no_triggerer(stack), "a triggerer runs: this test is about the case where none does"
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)
    elapsed = time.monotonic() - t0
    print(
        f"[e2e-listener] mark {new_state}: PATCH answered in {patched:.2f}s, tree gone {elapsed:.2f}s after it"
    )
    return elapsed


def api_server_says(stack: AirflowStack, text: str) -> bool:
    with contextlib.suppress(OSError):
        return text in (stack.component_logs / "api-server.log").read_text(errors="replace")
    return False


# -- 1. the triggerer dies with the trigger running; the task is marked failed ------------------


@pytest.mark.dag_id(DAG_ID)
def test_mark_failed_while_the_triggerer_is_dead_kills_the_execution(airflow_stack: AirflowStack) -> None:
    stack = airflow_stack
    run_id = start_run(stack, DAG_ID, "failed", timeout=90)
    records, processes = deferred_tree(stack, run_id)
    MARKED[run_id] = (DAG_ID, "failed", records)
    wait_until(lambda: stack.trigger_started(DAG_ID, run_id, TASK_ID), 60, "the trigger to run")

    triggerer = stack.procs["triggerer"]
    stack.kill_component("triggerer", signal.SIGKILL)
    assert not group_alive(triggerer.pid) and no_triggerer(stack)
    assert alive(processes) == list(processes), "the triggerer's death must not kill the task"
    assert stack.client.task_instance(DAG_ID, run_id, TASK_ID)["state"] == "deferred"

    try:
        elapsed = mark_and_time(stack, run_id, "failed", processes)
    finally:
        left = kill_all(processes)
    assert elapsed is not None, f"processes {left} still ran {BUDGET:g}s after the task was marked failed"
    FIGURES["mark failed (triggerer SIGKILLed)"] = elapsed
    assert elapsed <= BUDGET

    killed = read_json(records / "killed.json")
    assert killed is not None and f"marked failed {LISTENER_REASON}" in killed["reason"], killed
    exited = wait_until(lambda: read_json(records / "exit.json"), 10, "exit.json")
    assert exited["exit_code"] == -signal.SIGTERM, exited  # ended by the kill, not by finishing
    assert stack.client.task_instance(DAG_ID, run_id, TASK_ID)["state"] == "failed"
    assert api_server_says(stack, f"{DAG_ID}/{run_id}/{TASK_ID} was marked failed by a user")


# -- 2. no triggerer ever ran the trigger; the task is marked success -----------------------------


@pytest.mark.dag_id(DAG_ID)
def test_mark_success_before_any_triggerer_ran_the_trigger_kills_the_execution(
    airflow_stack: AirflowStack,
) -> None:
    stack = airflow_stack
    without_a_triggerer(stack)
    run_id = start_run(stack, WORKER_DAG_ID, "success", timeout=90)
    records, processes = deferred_tree(stack, run_id, WORKER_DAG_ID)
    MARKED[run_id] = (WORKER_DAG_ID, "success", records)
    time.sleep(1.0)  # a triggerer, if one ran, would have started the trigger by now
    assert not stack.trigger_started(WORKER_DAG_ID, run_id, TASK_ID), "a triggerer ran the trigger"
    assert no_triggerer(stack)

    try:
        elapsed = mark_and_time(stack, run_id, "success", processes, WORKER_DAG_ID)
    finally:
        left = kill_all(processes)
    assert elapsed is not None, f"processes {left} still ran {BUDGET:g}s after the task was marked success"
    FIGURES["mark success (trigger never picked up)"] = elapsed
    assert elapsed <= BUDGET

    killed = read_json(records / "killed.json")
    assert killed is not None and f"marked success {LISTENER_REASON}" in killed["reason"], killed
    assert stack.client.task_instance(WORKER_DAG_ID, run_id, TASK_ID)["state"] == "success"


@pytest.mark.dag_id(DAG_ID)
def test_a_task_marked_success_before_the_triggerer_started_it_never_starts(
    airflow_stack: AirflowStack,
) -> None:
    stack = airflow_stack
    without_a_triggerer(stack)
    run_id = start_run(stack, DAG_ID, "unstarted", timeout=90)
    # start_from_trigger: the scheduler defers it straight away; only a triggerer would start it.
    stack.client.wait_for_task_state(DAG_ID, run_id, TASK_ID, "deferred", timeout=90)
    time.sleep(2.0)
    folder = stack.execution_dir(DAG_ID, run_id, TASK_ID)
    assert not (folder / "task.pb").exists(), "nothing may start before a triggerer runs the trigger"
    stack.client.set_task_state(DAG_ID, run_id, TASK_ID, "success")
    NEVER_STARTED[run_id] = "success"
    assert stack.client.task_instance(DAG_ID, run_id, TASK_ID)["state"] == "success"
    # Test 3 starts a triggerer and checks that this one still never started.


# -- 3. a triggerer again: nothing else broke ---------------------------------------------------


@pytest.mark.dag_id(QUICK_DAG_ID)
def test_a_new_triggerer_finds_nothing_broken(airflow_stack: AirflowStack) -> None:
    stack, client = airflow_stack, airflow_stack.client
    # A task that runs to success by itself, deferred while no triggerer runs: the new triggerer
    # must finish it (outputs in XCom, nothing killed). It defers BEFORE the triggerer starts on
    # purpose: the new triggerer runs the two marked tasks' left-over triggers, which fire at once
    # (their executions are dead); on SQLite a trigger created after Airflow deleted those rows can
    # get one of their ids back and receive that stale event (see the module docstring).
    quick_run = start_run(stack, QUICK_DAG_ID, "quick", timeout=90)
    client.wait_for_task_state(QUICK_DAG_ID, quick_run, QUICK_TASK_ID, "deferred", timeout=90)
    assert no_triggerer(stack)

    t0 = time.monotonic()
    stack.start_component("triggerer")
    took = stack.wait_triggerer_up()
    print(f"[e2e-listener] new triggerer up {took:.1f}s after its start")

    ti = client.wait_for_task_state(QUICK_DAG_ID, quick_run, QUICK_TASK_ID, "success", timeout=120)
    print(f"[e2e-listener] the waiting task succeeded {time.monotonic() - t0:.1f}s after the triggerer start")
    assert ti["try_number"] == 1
    assert client.xcom(QUICK_DAG_ID, quick_run, QUICK_TASK_ID, "answer") == 42
    folder = stack.execution_dir(QUICK_DAG_ID, quick_run, QUICK_TASK_ID)
    assert (folder / "outputs" / "outputs.pb").exists()
    # Its records folder is the only one besides the marked tasks': no kill was ever recorded there.
    (records,) = {p.parent for p in stack.home.rglob("pid.json")} - {r for _, _, r in MARKED.values()}
    assert read_json(records / "killed.json") is None
    assert (read_json(records / "exit.json") or {}).get("exit_code") == 0
    client.wait_for_run_state(QUICK_DAG_ID, quick_run, "success", timeout=60)

    # The marked tasks keep the user's state, their runs end, nothing of them runs on.
    for run_id, (dag_id, expected, _) in MARKED.items():
        client.wait_for_run_state(dag_id, run_id, expected, timeout=60)
    time.sleep(3)  # a few heartbeats of the new triggerer
    for run_id, expected in NEVER_STARTED.items():
        ti = client.task_instance(DAG_ID, run_id, TASK_ID)
        assert (ti["state"], ti["try_number"]) == (expected, 1), ti
        folder = stack.execution_dir(DAG_ID, run_id, TASK_ID)
        assert not (folder / "task.pb").exists(), "a task the user ended before it started was started"
    for run_id, (dag_id, expected, records) in MARKED.items():
        ti = client.task_instance(dag_id, run_id, TASK_ID)
        assert (ti["state"], ti["try_number"]) == (expected, 1), ti
        record = read_json(records / "pid.json")
        assert record is not None
        assert not process_alive(int(record["pid"]), record.get("create_time"))
        assert not group_alive(int(record["pgid"]))
        assert not process_alive(int(record["supervisor_pid"]))
        assert not stack.execution_dir(dag_id, run_id, TASK_ID, try_number=2).exists()
    health = stack.wait_healthy(timeout=30)
    assert health["triggerer"]["status"] == "healthy", health
