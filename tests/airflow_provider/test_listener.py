"""The listener that stops an execution when a user sets its task's state (airflow_provider/listener.py).

Real executions of the real LocalExecutor (processes, files), real handles (built the way the
operator builds them), Airflow's real metadata DB (SQLite, migrated once per session) for the
look-up, and Airflow's real listener managers and plugin loading. What was killed is read from the
machine: the process tree, and the ``killed.json`` that every ``kill_task`` of the local executor
writes (its absence proves ``kill_task`` was never called).
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import importlib.metadata
import json
import logging
import re
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest
from airflow.utils.state import TaskInstanceState

from airflow_provider import executor_pool
from airflow_provider.adoption import STATE_KEY
from airflow_provider.execution import ExecutionHandle, open_driver
from airflow_provider.listener import (
    TRIGGER_CLASSPATH,
    ExecutionStopper,
    Outcome,
    TaskInstanceRef,
    listener,
    load_handle,
)
from airflow_provider.triggers import ExecutorTrigger
from executors import DataStore, OwnerReference, PollPolicy, TaskContext, TaskExecutionID, TaskPhase
from executors.engine import submission
from executors.engine.driver import DriverSnapshot
from tests.conftest import DOUBLER, INT, make_identifier, python_template

POLICY = PollPolicy(interval=0.1, max_backoff=0.3, jitter=0.0, unknown_limit=10, call_timeout=20.0)

# A process tree: this process and a child, both pids written once both run; then sleeps.
TREE = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    if len(sys.argv) > 2 and sys.argv[2] == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    with open(sys.argv[1] + ".tmp", "w") as fh:
        fh.write(f"{os.getpid()} {child.pid}")
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    time.sleep(300)
    """
)
DOUBLE = python_template(DOUBLER, "{{.input}}", "{{.outputPrefix}}", inputs={"x": INT}, outputs={"y": INT})
FAILS = python_template("import sys; sys.exit(3)")


@dataclasses.dataclass
class TI:
    """What the api-server hands the hook: Airflow's TaskInstance (the attributes read)."""

    dag_id: str = "listener_dag"
    run_id: str = "manual__1"
    task_id: str = "task"
    map_index: int = -1
    try_number: int = 1
    trigger_id: int | None = None


@dataclasses.dataclass
class Execution:
    handle: ExecutionHandle
    ctx: TaskContext
    pids_file: Path
    root: Path
    """Holds the data dir and the local executor's ``state_root``."""

    def command_pid(self, timeout: float = 20) -> int:
        deadline = time.monotonic() + timeout
        while not self.pids_file.exists():
            assert time.monotonic() < deadline, "the task never wrote its pids"
            time.sleep(0.02)
        return int(self.pids_file.read_text().split()[0])

    def records(self) -> Path:
        """The local executor's record folder of this execution (``pid.json``, ``killed.json``,
        ...), found by the command's pid wherever the executor keeps it."""
        pid = self.command_pid()
        for path in self.root.rglob("pid.json"):
            if json.loads(path.read_text()).get("pid") == pid:
                return path.parent
        raise AssertionError(f"no pid.json of pid {pid} under {self.root}")

    def killed(self) -> dict[str, Any] | None:
        try:
            return dict(json.loads((self.records() / "killed.json").read_text()))
        except OSError:
            return None

    def processes(self) -> dict[int, float]:
        """``{pid: create_time}`` of the command, its child and the supervisor, once all run."""
        self.command_pid()
        pids = [int(p) for p in self.pids_file.read_text().split()]
        supervisor = int(json.loads((self.records() / "pid.json").read_text())["supervisor_pid"])
        return {pid: psutil.Process(pid).create_time() for pid in [*pids, supervisor]}


def no_kill_recorded(root: Path) -> bool:
    """No ``killed.json`` anywhere: ``kill_task`` of the local executor was never called."""
    return not list(root.rglob("killed.json"))


def alive(processes: dict[int, float]) -> list[int]:
    found = []
    for pid, created in processes.items():
        try:
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE and abs(proc.create_time() - created) < 1:
                found.append(pid)
        except psutil.Error:
            continue
    return found


def wait_gone(processes: dict[int, float], timeout: float = 20) -> float:
    t0 = time.monotonic()
    while alive(processes):
        assert time.monotonic() - t0 < timeout, f"still running: {alive(processes)}"
        time.sleep(0.02)
    return time.monotonic() - t0


@pytest.fixture
def config(tmp_path: Path) -> dict[str, Any]:
    return {"state_root": str(tmp_path / "local-state"), "kill_grace_period": 2}


async def start(
    tmp_path: Path,
    config: dict[str, Any],
    template: Any = None,
    *,
    name: str = "task",
    args: tuple[str, ...] = (),
    inputs: Any = None,
) -> Execution:
    """Write the execution's template and inputs and start it, as ExecutorOperator does."""
    from flyteidl.core import literals_pb2

    pids_file = tmp_path / f"{name}.pids"
    if template is None:
        template = python_template(TREE, str(pids_file), *args)
    store = DataStore()
    ctx = TaskContext(
        task_execution_id=TaskExecutionID.create(make_identifier(node=name)),
        data_dir=str(tmp_path / "executions" / name),
        owner_id=f"listener_dag/manual__1/{name}",
        owner_reference=OwnerReference(kind="TaskInstance", name=f"listener_dag.{name}"),
    )
    await submission.submit(store, template, inputs or literals_pb2.LiteralMap(), ctx)
    handle = ExecutionHandle(
        executor_id="local",
        executor_config=config,
        driver=DriverSnapshot(ctx, accepted=False),
        policy=POLICY,
    )

    async def first_step() -> ExecutionHandle:
        executor = await executor_pool.get_executor("local", config, store)
        driver = open_driver(handle, executor, template, store, None)
        status = await driver.step()
        assert status.phase in (TaskPhase.QUEUED, TaskPhase.RUNNING), status
        return handle.with_driver(driver)

    return Execution(await executor_pool.closing(first_step()), ctx, pids_file, tmp_path)


async def run_to_end(execution: Execution, timeout: float = 30) -> TaskPhase:
    """Wait (as the trigger would) until the execution is over; its final phase."""
    from executors.engine.submission import read_template

    store = DataStore()

    async def watch() -> TaskPhase:
        executor = await executor_pool.get_executor("local", execution.handle.executor_config, store)
        template = await read_template(store, execution.ctx)
        while True:
            status = await executor.check_task_status(execution.ctx, template)
            if status.phase.is_final_for_execution():
                return status.phase
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(executor_pool.closing(watch()), timeout)


def stopper_for(*executions: tuple[TI, Execution]) -> ExecutionStopper:
    """A listener whose look-up answers these executions (the metadata-DB look-up has its own tests)."""
    known = {TaskInstanceRef.of(ti): ex.handle for ti, ex in executions}
    return ExecutionStopper(lambda ref: known.get(ref))


def outcome_of(stopper: ExecutionStopper, previous_state: Any, ti: Any, new_state: str) -> Outcome | None:
    future = stopper.user_set_state(previous_state, ti, new_state)
    return None if future is None else future.result(timeout=60)


# -- which user actions kill, which do not --------------------------------------------------------


@pytest.mark.parametrize("new_state", ["failed", "success"])
async def test_a_user_setting_the_state_kills_the_running_process_tree(
    tmp_path: Path, config: dict[str, Any], new_state: str
) -> None:
    ti, execution = TI(), await start(tmp_path, config)
    processes = execution.processes()
    stopper = stopper_for((ti, execution))

    t0 = time.monotonic()
    if new_state == "failed":
        stopper.on_task_instance_failed(previous_state=None, task_instance=ti, error="marked failed")
    else:
        stopper.on_task_instance_success(previous_state=None, task_instance=ti)
    returned = time.monotonic() - t0
    assert stopper.drain(timeout=30)
    wait_gone(processes, timeout=5)
    elapsed = time.monotonic() - t0

    print(f"hook returned in {returned * 1000:.1f} ms; process tree gone {elapsed:.2f}s after the hook")
    assert returned < 0.5, f"the hook blocked for {returned:.2f}s"
    killed = execution.killed()
    assert killed is not None and f"marked {new_state} by a user action" in killed["reason"], killed
    assert not alive(processes)


async def test_the_hook_returns_at_once_while_a_slow_kill_completes(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    """A tree that ignores SIGTERM: the kill needs kill_grace_period (2 s) and then SIGKILL."""
    ti, execution = TI(), await start(tmp_path, config, args=("stubborn",))
    processes = execution.processes()
    stopper = stopper_for((ti, execution))

    t0 = time.monotonic()
    future = stopper.user_set_state(None, ti, "failed")
    returned = time.monotonic() - t0
    assert future is not None and not future.done()
    assert future.result(timeout=30) is Outcome.KILLED
    took = time.monotonic() - t0
    wait_gone(processes, timeout=5)  # the supervisor exits right after recording the exit
    print(f"hook returned in {returned * 1000:.1f} ms; the SIGTERM-proof tree was killed after {took:.2f}s")
    assert returned < 0.5 and took >= 2.0


@pytest.mark.parametrize("hook", ["failed", "success"])
async def test_a_task_that_ended_by_itself_is_left_alone(
    tmp_path: Path, config: dict[str, Any], hook: str
) -> None:
    """The worker's task runner and the scheduler call the hooks with previous_state=RUNNING."""
    ti, execution = TI(), await start(tmp_path, config)
    processes = execution.processes()
    stopper = stopper_for((ti, execution))
    try:
        if hook == "failed":
            stopper.on_task_instance_failed(
                previous_state=TaskInstanceState.RUNNING, task_instance=ti, error=RuntimeError("boom")
            )
        else:
            stopper.on_task_instance_success(previous_state=TaskInstanceState.RUNNING, task_instance=ti)
        assert outcome_of(stopper, TaskInstanceState.RUNNING, ti, hook) is None
        assert stopper.drain(timeout=5)
        time.sleep(0.3)
        assert alive(processes) == list(processes), "a task that ended by itself was killed"
        assert execution.killed() is None
    finally:
        await executor_pool.closing(_kill(execution))


async def _kill(execution: Execution) -> None:
    executor = await executor_pool.get_executor("local", execution.handle.executor_config, DataStore())
    await executor.kill_task(execution.ctx, "test cleanup")


async def test_a_succeeded_execution_is_never_killed(tmp_path: Path, config: dict[str, Any]) -> None:
    from flyteidl.core import literals_pb2

    inputs = literals_pb2.LiteralMap()
    inputs.literals["x"].scalar.primitive.integer = 21
    ti = TI()
    execution = await start(tmp_path, config, DOUBLE, inputs=inputs)
    assert await run_to_end(execution) is TaskPhase.SUCCEEDED
    stopper = stopper_for((ti, execution))

    assert outcome_of(stopper, None, ti, "success") is Outcome.ALREADY_OVER
    assert outcome_of(stopper, None, ti, "failed") is Outcome.ALREADY_OVER
    assert no_kill_recorded(tmp_path), "kill_task was called after a terminal phase"


async def test_a_failed_execution_is_not_killed(tmp_path: Path, config: dict[str, Any]) -> None:
    ti, execution = TI(), await start(tmp_path, config, FAILS)
    assert (await run_to_end(execution)).is_final_for_execution()
    assert outcome_of(stopper_for((ti, execution)), None, ti, "failed") is Outcome.ALREADY_OVER
    assert no_kill_recorded(tmp_path)


async def test_only_the_marked_task_instance_is_stopped(tmp_path: Path, config: dict[str, Any]) -> None:
    marked, other = TI(task_id="marked"), TI(task_id="other")
    first = await start(tmp_path, config, name="marked")
    second = await start(tmp_path, config, name="other")
    first_tree, second_tree = first.processes(), second.processes()
    stopper = stopper_for((marked, first), (other, second))
    try:
        assert outcome_of(stopper, None, marked, "failed") is Outcome.KILLED
        assert (
            outcome_of(stopper, None, TI(task_id="plain_python_task"), "failed") is Outcome.NOT_AN_EXECUTION
        )
        wait_gone(first_tree)
        assert alive(second_tree) == list(second_tree)
        assert second.killed() is None
    finally:
        await executor_pool.closing(_kill(second))


async def test_idempotent_with_the_triggers_own_on_kill(tmp_path: Path, config: dict[str, Any]) -> None:
    """Both may fire for one user action (a triggerer runs the trigger): one kill, no error."""
    ti, execution = TI(), await start(tmp_path, config)
    processes = execution.processes()
    stopper = stopper_for((ti, execution))
    trigger = ExecutorTrigger(handle=execution.handle.to_dict())

    future = stopper.user_set_state(None, ti, "failed")
    await trigger.on_kill()
    assert future is not None
    outcome = await asyncio.wrap_future(future)
    wait_gone(processes)
    # Whichever came second found the execution killed (over) or killed it again: both are fine.
    assert outcome in (Outcome.KILLED, Outcome.ALREADY_OVER), outcome
    assert outcome_of(stopper, None, ti, "failed") is Outcome.ALREADY_OVER
    assert execution.killed() is not None


def test_errors_never_reach_airflow(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A broken look-up, a broken handle, an unknown executor, a strange task instance: logged."""
    valid = sample_handle(tmp_path)

    def broken_lookup(ref: TaskInstanceRef) -> ExecutionHandle | None:
        if ref.task_id == "db_down":
            raise ConnectionError("metadata DB unreachable")
        if ref.task_id == "unknown_executor":
            return dataclasses.replace(valid, executor_id="no-such-executor")
        return dataclasses.replace(valid, driver=None)  # type: ignore[arg-type]  # cannot be used

    stopper = ExecutionStopper(broken_lookup)
    caplog.set_level(logging.WARNING, logger="airflow_provider.listener")
    for task_id in ("db_down", "unknown_executor", "bad_handle"):
        stopper.on_task_instance_failed(previous_state=None, task_instance=TI(task_id=task_id), error=None)
        assert outcome_of(stopper, None, TI(task_id=task_id), "failed") is Outcome.ERROR
    stopper.on_task_instance_failed(previous_state=None, task_instance=object(), error=None)  # no dag_id
    assert stopper.drain(timeout=30)
    text = caplog.text
    assert "metadata DB unreachable" in text and "no-such-executor" in text, text
    assert "cannot handle a task marked failed" in text, text


# -- registration: a plugin, loaded by Airflow's own plugin and listener machinery -------------------


def test_the_provider_ships_the_listener_in_a_plugin() -> None:
    from airflow._shared.module_loading import import_string
    from airflow._shared.plugins_manager import is_valid_plugin

    from airflow_provider.get_provider_info import get_provider_info

    (entry,) = get_provider_info()["plugins"]
    plugin = import_string(entry["plugin-class"])
    assert is_valid_plugin(plugin)
    assert plugin.name == entry["name"]
    assert listener in plugin.listeners


def test_airflows_providers_manager_finds_the_plugin() -> None:
    """The provider-info path (Airflow uses it with ``[core] lazy_discover_providers = False``)."""
    from airflow.plugins_manager import _load_providers_plugins

    from airflow_provider.plugin import ExecutorsProviderPlugin

    plugins, errors = _load_providers_plugins()
    assert ExecutorsProviderPlugin in list[Any](plugins), (plugins, errors)  # classes, not instances


@pytest.mark.parametrize("side", ["core", "task-sdk"])
def test_airflows_listener_managers_accept_it(side: str) -> None:
    """pluggy checks hook names and arguments against Airflow's hookspecs when registering."""
    package = "airflow._shared.listeners" if side == "core" else "airflow.sdk._shared.listeners"
    listeners: Any = importlib.import_module(f"{package}.listener")
    manager = listeners.ListenerManager()
    manager.add_hookspecs(importlib.import_module(f"{package}.spec.taskinstance"))
    stopper = ExecutionStopper(lambda ref: pytest.fail(f"looked up {ref}: not a user action"))
    manager.add_listener(stopper)
    assert manager.has_listeners
    manager.hook.on_task_instance_success(previous_state=TaskInstanceState.RUNNING, task_instance=TI())
    manager.hook.on_task_instance_failed(
        previous_state=TaskInstanceState.RUNNING, task_instance=TI(), error="failed by itself"
    )
    assert stopper.drain(timeout=5)


def test_the_airflow_plugins_entry_point_names_the_plugin() -> None:
    """With default settings (``lazy_discover_providers = True``) Airflow loads provider plugins only
    from the ``airflow.plugins`` entry point (pyproject.toml), not from the provider info."""
    dist = importlib.metadata.distribution("airflow-provider-executors")
    values = [ep.value for ep in dist.entry_points if ep.group == "airflow.plugins"]
    assert values == ["airflow_provider.plugin:ExecutorsProviderPlugin"]


# -- the look-up in Airflow's metadata DB ------------------------------------------------------------


@pytest.fixture
def dag_run(airflow_db: str) -> TI:
    """A real DagRun row (the task state store is keyed on it); its TI identity."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunType

    ti = TI(dag_id="listener_dag", run_id=f"manual__{uuid.uuid4().hex[:8]}")
    with create_session() as session:
        session.add(
            DagRun(ti.dag_id, ti.run_id, run_type=DagRunType.MANUAL, state=DagRunState.RUNNING, conf={})
        )
    return ti


def remember(ti: TI, handle: ExecutionHandle, *, deferred: bool = True) -> None:
    """Write the operator's record the way the Execution API stores it (JSON in the backend)."""
    from airflow.state import TaskScope, get_state_backend

    scope = TaskScope(dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, map_index=ti.map_index)
    get_state_backend().set(scope, STATE_KEY, json.dumps({**handle.to_dict(), "deferred": deferred}))


def trigger_row(classpath: str, kwargs: dict[str, Any]) -> int:
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session

    with create_session() as session:
        row = Trigger(classpath=classpath, kwargs=kwargs)
        session.add(row)
        session.flush()
        return int(row.id)


def test_the_state_store_record_is_found(dag_run: TI, tmp_path: Path) -> None:
    handle = sample_handle(tmp_path)
    remember(dag_run, handle)
    assert load_handle(TaskInstanceRef.of(dag_run)) == handle
    other_map_index = dataclasses.replace(dag_run, map_index=3)
    assert load_handle(TaskInstanceRef.of(other_map_index)) is None


def test_without_a_record_the_trigger_row_is_used(dag_run: TI, tmp_path: Path) -> None:
    handle = sample_handle(tmp_path)
    classpath, kwargs = ExecutorTrigger(handle=handle.to_dict()).serialize()
    assert classpath == TRIGGER_CLASSPATH
    ti = dataclasses.replace(dag_run, trigger_id=trigger_row(classpath, kwargs))
    assert load_handle(TaskInstanceRef.of(ti)) == handle

    foreign = dataclasses.replace(
        dag_run, trigger_id=trigger_row("airflow.providers.standard.triggers.temporal.TimeDeltaTrigger", {})
    )
    assert load_handle(TaskInstanceRef.of(foreign)) is None
    assert load_handle(TaskInstanceRef.of(dag_run)) is None  # no record, no trigger: not ours


async def test_from_the_metadata_db_to_a_dead_process_tree(
    dag_run: TI, tmp_path: Path, config: dict[str, Any]
) -> None:
    """The default look-up end to end: the operator's record in the DB -> the tree is killed."""
    execution = await start(tmp_path, config)
    processes = execution.processes()
    remember(dag_run, execution.handle)
    stopper = ExecutionStopper()  # the real look-up, as registered by the plugin
    stopper.on_task_instance_failed(previous_state=None, task_instance=dag_run, error="manually failed")
    assert stopper.drain(timeout=30)
    wait_gone(processes, timeout=5)
    killed = execution.killed()
    assert killed is not None and "marked failed by a user action" in killed["reason"]


def sample_handle(tmp_path: Path) -> ExecutionHandle:
    ctx = TaskContext(
        task_execution_id=TaskExecutionID.create(make_identifier(node="sample")),
        data_dir=str(tmp_path / "executions" / "sample"),
        owner_id="listener_dag/run/sample",
    )
    return ExecutionHandle(
        executor_id="local",
        executor_config={"state_root": str(tmp_path / "local-state")},
        driver=DriverSnapshot(ctx, accepted=True),
        policy=POLICY,
    )


async def test_an_executor_connection_is_read_from_the_metadata_db(
    airflow_db: str, tmp_path: Path, config: dict[str, Any]
) -> None:
    """A handle naming an ``executor`` connection (``executor_options={"conn_id": ...}``): the
    api-server is no task, so the connection is read the server's way (metadata DB included)."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    conn_id = f"listener_local_{uuid.uuid4().hex[:6]}"
    with create_session() as session:
        session.add(Connection(conn_id=conn_id, conn_type="executor", extra=json.dumps(config)))
    ti, execution = TI(), await start(tmp_path, config)
    processes = execution.processes()
    by_connection = dataclasses.replace(execution.handle, executor_config={"conn_id": conn_id})
    stopper = ExecutionStopper(lambda ref: by_connection)

    assert outcome_of(stopper, None, ti, "failed") is Outcome.KILLED
    wait_gone(processes)
    killed = execution.killed()
    assert killed is not None and "marked failed by a user action" in killed["reason"]


EXITING_PROCESS = """
import json, sys, time
from airflow_provider.execution import ExecutionHandle
from airflow_provider.listener import ExecutionStopper

class TI:
    dag_id, run_id, task_id = "listener_dag", "manual__1", "task"

handle = ExecutionHandle.from_dict(json.loads(sys.argv[1]))
t0 = time.monotonic()
ExecutionStopper(lambda ref: handle).on_task_instance_failed(previous_state=None, task_instance=TI(), error=None)
print(f"HOOK-RETURNED-IN {time.monotonic() - t0:.3f}")
"""  # ... and the interpreter exits at once, with the kill still under way


async def test_a_process_that_exits_right_after_the_hook_still_completes_the_kill(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    """The pool's threads are joined when the interpreter exits (concurrent.futures does that):
    a SIGTERM-proof tree (2 s of grace, then SIGKILL) is gone when the process has exited."""
    import subprocess
    import sys

    execution = await start(tmp_path, config, args=("stubborn",))
    processes = execution.processes()
    t0 = time.monotonic()
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", EXITING_PROCESS, json.dumps(execution.handle.to_dict())],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    exited = time.monotonic() - t0
    assert done.returncode == 0, done.stderr[-3000:]
    (returned_text,) = re.findall(r"HOOK-RETURNED-IN ([0-9.]+)", done.stdout)
    returned = float(returned_text)
    left = alive(processes)
    print(f"hook returned in {returned * 1000:.1f} ms; the process exited {exited:.2f}s after its start")
    assert returned < 0.5
    assert left in ([], list(processes)[-1:]), left  # at most the supervisor, recording the exit
    wait_gone(processes, timeout=5)
    killed = execution.killed()
    assert killed is not None and "marked failed by a user action" in killed["reason"]
