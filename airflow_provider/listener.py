"""Stop an execution as soon as a user sets its task's state, whatever the triggerer is doing.

The trigger's ``on_kill`` stops an execution when a user ends a deferred task, but only while a
triggerer runs that trigger: a task marked failed (or success) while the triggerer restarts, or
before any triggerer picked its trigger up, never gets it, and its process or Ray job runs on.
Airflow 3.3's api-server calls the listener hooks ``on_task_instance_failed`` and
``on_task_instance_success`` with ``previous_state=None`` when a user sets task states through the
REST API (``PATCH .../taskInstances/{task}``, a run marked failed or success:
``api_fastapi/core_api/services/public/task_instances.py`` and ``.../dag_run.py``). This listener,
shipped by the provider's plugin (:mod:`airflow_provider.plugin`), stops the execution there.

- **Only user-set states.** Airflow calls the same hooks with ``previous_state=RUNNING`` when a
  task ended by itself (the worker's task runner, the scheduler's failure handling): those are
  ignored, their execution is over or belongs to the next try.
- **Only the provider's tasks.** The execution is the one the operator recorded in the task state
  store (key :data:`airflow_provider.operators.STATE_KEY`); without that record (a store cleared
  on success), the handle in the task's ``ExecutorTrigger`` row. Anything else is left alone.
- **Never after a terminal phase.** The executor is asked for the execution's status first: one
  that is over (succeeded, failed) is not killed. An unknown status is killed (kills are
  idempotent), as is one the trigger's ``on_kill`` kills too.
- **Never in Airflow's way.** The hook returns at once: the look-up and the kill run in a
  background thread pool, each executor call bounded by the handle's ``call_timeout``, retried
  while the executor ``requires_finalizer``. A process that exits (an api-server stopped with
  SIGTERM) first waits for the stops under way, up to :data:`EXIT_WAIT`. Errors are logged as
  warnings, never raised into Airflow.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import dataclasses
import enum
import json
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from airflow_provider.execution import ExecutionHandle
    from executors import DataStore, Executor

log = logging.getLogger(__name__)

hookimpl = pluggy.HookimplMarker("airflow")
"""Airflow's listener marker (``airflow.listeners.hookimpl`` in core, the same in the Task SDK)."""

TRIGGER_CLASSPATH = "airflow_provider.triggers.ExecutorTrigger"
EXIT_WAIT = 30.0
"""At most this long, a process that exits waits for the stops it still runs."""


class Outcome(enum.Enum):
    """What the listener did about one task instance (logged; returned for tests)."""

    NOT_AN_EXECUTION = "no execution recorded"
    ALREADY_OVER = "execution already over"
    KILLED = "killed"
    KILL_FAILED = "kill failed"
    ERROR = "error"


@dataclasses.dataclass(frozen=True)
class TaskInstanceRef:
    """The identity of a task instance, copied off Airflow's object in the hook's own thread."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1
    try_number: int | None = None
    trigger_id: int | None = None

    @classmethod
    def of(cls, ti: Any) -> TaskInstanceRef:
        map_index = getattr(ti, "map_index", -1)
        return cls(
            dag_id=str(ti.dag_id),
            run_id=str(ti.run_id),
            task_id=str(ti.task_id),
            map_index=-1 if map_index is None else int(map_index),
            try_number=getattr(ti, "try_number", None),
            trigger_id=getattr(ti, "trigger_id", None),
        )

    def __str__(self) -> str:
        node = self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"
        return f"{self.dag_id}/{self.run_id}/{node}"


# -- where the execution of a task instance is recorded -------------------------------------------


def _record_from_state_store(ref: TaskInstanceRef) -> dict[str, Any] | None:
    """The operator's record in the task state store (read the way the Execution API writes it:
    JSON text in the configured ``[state_store] backend``), or None."""
    from airflow.state import TaskScope, get_state_backend

    from airflow_provider.adoption import STATE_KEY

    scope = TaskScope(dag_id=ref.dag_id, run_id=ref.run_id, task_id=ref.task_id, map_index=ref.map_index)
    value: Any = get_state_backend().get(scope, STATE_KEY)
    if value is None:
        return None
    if isinstance(value, str):
        value = json.loads(value)
    # A worker-side state backend stores only a reference here: then the trigger row has to do.
    if not isinstance(value, dict) or "driver" not in value:
        return None
    return {k: v for k, v in value.items() if k != "deferred"}


def _record_from_trigger(ref: TaskInstanceRef) -> dict[str, Any] | None:
    """The handle in the task's trigger row (kept until a triggerer cleans unused triggers)."""
    if ref.trigger_id is None:
        return None
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session

    with create_session() as session:
        trigger = session.get(Trigger, ref.trigger_id)
        if trigger is None or trigger.classpath != TRIGGER_CLASSPATH:
            return None
        kwargs = trigger.kwargs
    from airflow.serialization.decoders import smart_decode_trigger_kwargs

    kwargs = smart_decode_trigger_kwargs(kwargs)  # type: ignore[no-untyped-call]  # as the triggerer does
    handle = kwargs.get("handle")
    if isinstance(handle, dict):
        return dict(handle)
    if isinstance(kwargs.get("start"), dict) and ref.try_number is not None:
        return _record_of_trigger_start(ref, kwargs)  # start_from_trigger: no handle stored
    return None


def _record_of_trigger_start(ref: TaskInstanceRef, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The handle a starting trigger gives the try, worked out the way the trigger does."""
    from airflow_provider.identity import Attempt
    from airflow_provider.start import handle_of_trigger_start
    from executors import DataStore

    assert ref.try_number is not None
    attempt = Attempt(ref.dag_id, ref.run_id, ref.task_id, ref.map_index, ref.try_number)
    handle = asyncio.run(handle_of_trigger_start(kwargs["start"], kwargs, attempt, DataStore()))
    if handle is None:
        log.warning(
            "executors listener: %s: its data_dir or task_template is templated; cannot place it", ref
        )
    return None if handle is None else handle.to_dict()


def load_handle(ref: TaskInstanceRef) -> ExecutionHandle | None:
    """The execution this task instance last started, from Airflow's metadata DB; None if none."""
    from airflow_provider.execution import ExecutionHandle

    record = None
    try:
        record = _record_from_state_store(ref)
    except Exception as exc:  # a store that cannot be read: the trigger row may still say it
        log.warning("executors listener: cannot read the task state store of %s: %s", ref, exc)
    if record is None:
        record = _record_from_trigger(ref)
    return None if record is None else ExecutionHandle.from_dict(record)


# -- stopping it ---------------------------------------------------------------------------------


async def stop_execution(handle: ExecutionHandle, reason: str) -> Outcome:
    """Kill the execution unless it is already over; every executor call is time-bounded."""
    from airflow_provider import executor_pool

    return await executor_pool.closing(_stop_execution(handle, reason))


def _connection(conn_id: str) -> Any:
    """A connection as a server process reads it: core's look-up includes the metadata DB. (The
    Task SDK hooks the worker and triggerer use read only env/secrets backends in a process that is
    not a task, which the api-server of 3.3.2 is.)"""
    from airflow.models.connection import Connection

    return Connection.get_connection_from_secrets(conn_id)


async def _executor_for(handle: ExecutionHandle, store: DataStore) -> Executor:
    """:func:`airflow_provider.execution.executor_for`, with the handle's connections (executor
    ``conn_id``, catalog ``conn_id``) resolved here, in the api-server."""
    from airflow_provider.execution import executor_for
    from airflow_provider.hooks import CatalogHook, ExecutorHook
    from airflow_provider.stats import AirflowStatsScope
    from executors.catalog.gate import CachingExecutor

    executor_conn = handle.executor_config.get("conn_id")
    catalog_conn = (handle.catalog or {}).get("conn_id")
    resolved = handle
    if executor_conn:
        conn = await asyncio.to_thread(_connection, str(executor_conn))
        config = ExecutorHook.config_from_connection(conn, str(executor_conn))
        config.update({k: v for k, v in handle.executor_config.items() if k != "conn_id"})
        resolved = dataclasses.replace(resolved, executor_config=config)
    if catalog_conn:
        resolved = dataclasses.replace(resolved, catalog=None)
    executor = await executor_for(resolved, store)
    if catalog_conn:
        conn = await asyncio.to_thread(_connection, str(catalog_conn))
        catalog = CatalogHook.catalog_from_connection(conn, str(catalog_conn))
        metrics = AirflowStatsScope(f"executors.{handle.executor_id}")
        executor = CachingExecutor(executor, catalog, store=store, metrics=metrics)
    return executor


async def _stop_execution(handle: ExecutionHandle, reason: str) -> Outcome:
    from executors import DataStore, TaskPhase, TaskStatus
    from executors.engine.driver import kill_execution
    from executors.engine.submission import read_template
    from executors.engine.watchdog import call_with_limit

    limit = handle.policy.call_timeout
    store = DataStore()
    ctx = handle.task_ctx
    executor = await call_with_limit(lambda: _executor_for(handle, store), limit)
    try:
        template = await call_with_limit(lambda: read_template(store, ctx), limit)
        status = await call_with_limit(lambda: executor.check_task_status(ctx, template), limit)
    except Exception as exc:  # cannot tell: stop it anyway (a kill is idempotent)
        log.warning(
            "executors listener: cannot check %s before stopping it (%s: %s); stopping it",
            ctx.generated_name,
            type(exc).__name__,
            exc,
        )
        status = TaskStatus(TaskPhase.UNKNOWN)
    if status.phase.is_final_for_execution():
        log.info(
            "executors listener: %s execution %s is already %s: nothing to stop",
            handle.executor_id,
            ctx.generated_name,
            status.phase.name,
        )
        return Outcome.ALREADY_OVER
    killed = await kill_execution(executor, ctx, reason, handle.policy, log=_prefixed)
    return Outcome.KILLED if killed else Outcome.KILL_FAILED


class _ListenerLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The listener's lines say whose they are (the api-server's log mixes many sources)."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"executors listener: {msg}", kwargs


_prefixed = _ListenerLog(log, {})


# -- the listener --------------------------------------------------------------------------------


class ExecutionStopper:
    """Airflow listener: a user set a task instance failed or success -> stop its execution.

    ``load`` finds the execution of a task instance (default: :func:`load_handle`, Airflow's
    metadata DB). Each hook returns at once; the work runs in a small thread pool created on
    first use. :meth:`drain` waits for the work handed over so far.
    """

    def __init__(
        self,
        load: Callable[[TaskInstanceRef], ExecutionHandle | None] | None = None,
        *,
        max_workers: int = 4,
    ) -> None:
        self._load = load or load_handle
        self._max_workers = max_workers
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._pending: set[concurrent.futures.Future[Outcome]] = set()

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
        self.user_set_state(previous_state, task_instance, "failed")

    @hookimpl
    def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
        self.user_set_state(previous_state, task_instance, "success")

    def user_set_state(
        self, previous_state: Any, task_instance: Any, new_state: str
    ) -> concurrent.futures.Future[Outcome] | None:
        """Hand the stop over to the pool if a user set this state; None when there is nothing to do.

        ``previous_state`` is None only from the api-server (a user's action); the worker's task
        runner and the scheduler pass RUNNING for a task that ended by itself.
        """
        try:
            if previous_state is not None:
                return None
            ref = TaskInstanceRef.of(task_instance)
            with self._lock:
                if self._pool is None:
                    self._pool = concurrent.futures.ThreadPoolExecutor(
                        self._max_workers, thread_name_prefix="executors-listener"
                    )
                    _at_exit(self._finish_at_exit)
                future = self._pool.submit(self._stop, ref, new_state)
                self._pending.add(future)
            future.add_done_callback(self._done)
            return future
        except Exception as exc:  # never into Airflow
            log.warning("executors listener: cannot handle a task marked %s: %s", new_state, exc)
            return None

    def _done(self, future: concurrent.futures.Future[Outcome]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _stop(self, ref: TaskInstanceRef, new_state: str) -> Outcome:
        """In a pool thread: find the execution and stop it. Never raises."""
        try:
            handle = self._load(ref)
            if handle is None:
                log.debug("executors listener: %s records no execution", ref)
                return Outcome.NOT_AN_EXECUTION
            log.info(
                "executors listener: %s was marked %s by a user: stopping %s execution %s",
                ref,
                new_state,
                handle.executor_id,
                handle.task_ctx.generated_name,
            )
            reason = f"the Airflow task was marked {new_state} by a user action (seen by the api-server)"
            return asyncio.run(stop_execution(handle, reason))
        except Exception as exc:
            log.warning(
                "executors listener: could not stop the execution of %s (marked %s): %s: %s",
                ref,
                new_state,
                type(exc).__name__,
                exc,
            )
            return Outcome.ERROR

    def _finish_at_exit(self) -> None:
        if not self.drain(timeout=EXIT_WAIT):
            log.warning("executors listener: exiting while executions are still being stopped")

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until the work handed over so far is done; False if some is still running."""
        with self._lock:
            pending = list(self._pending)
        _, not_done = concurrent.futures.wait(pending, timeout=timeout)
        return not not_done


def _at_exit(func: Callable[[], None]) -> None:
    """Run ``func`` when the process exits, *before* ``concurrent.futures`` shuts its thread pools
    down: a stop still under way needs them (``asyncio.to_thread``; a submit after that shutdown
    raises). CPython's ``threading._register_atexit`` (what concurrent.futures itself uses) runs
    its callbacks in reverse order of registration, so this one runs first."""
    register = getattr(threading, "_register_atexit", None)
    try:
        if register is None:
            raise RuntimeError("no threading._register_atexit")
        register(func)
    except RuntimeError:  # another Python, or the process is already exiting
        atexit.register(func)


listener = ExecutionStopper()
"""The instance the provider's plugin registers with Airflow's listener manager."""
