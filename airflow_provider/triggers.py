"""ExecutorTrigger: waits on an execution inside Airflow's triggerer, holding no worker slot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent
from flyteidl.core import tasks_pb2

from airflow_provider.execution import ExecutionHandle, executor_for, open_driver, phase_logger
from executors import DataStore, Executor, TaskStatus
from executors.engine.driver import SetupFailed, kill_execution, retry_setup
from executors.engine.submission import read_template
from executors.engine.watchdog import call_with_limit

_background: set[asyncio.Task[Any]] = set()
"""Strong references to detached tasks (kills, warm-up): the loop keeps only weak ones."""

_warmed_up = False


def _detach(coro: Any) -> asyncio.Task[Any]:
    task = asyncio.get_running_loop().create_task(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)
    return task


# States in which a cancelled trigger must NOT kill: the task is still deferred, so the trigger
# was only moved (another triggerer took it over after a restart or a missed heartbeat).
_STILL_DEFERRED = {"deferred"}


class ExecutorTrigger(BaseTrigger):
    """Polls one execution until it is over, then yields exactly one event.

    The event payload is ``{"status": TaskStatus.to_dict(), "handle": ExecutionHandle.to_dict()}``;
    the operator's ``execute_complete`` turns it into the Airflow task's end state and outputs.

    Restart safety: ``run()`` starts from its kwargs on every (re)start and only *checks* an
    execution whose start was accepted, so a new triggerer re-attaches and never starts twice.
    ``cleanup()`` (every stop, restarts included) kills nothing; ``on_kill()`` (a user marked the
    task failed/success, cleared it, or failed the run) kills the execution unless a terminal phase
    was already seen or the task is still deferred (the trigger was only moved).
    """

    def __init__(self, *, handle: dict[str, Any]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.handle = ExecutionHandle.from_dict(handle)
        self._final_seen = False
        self._store: DataStore | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("airflow_provider.triggers.ExecutorTrigger", {"handle": self.handle.to_dict()})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        store = self._store = DataStore()
        global _warmed_up
        if not _warmed_up and self.task_instance is not None:
            # The triggerer builds its in-process API on the first task-state query (~3 s): do it
            # now, once per process, so that a user's kill later is decided at once.
            _warmed_up = True
            _detach(self._still_deferred())
        status, handle = await self._watch(self.handle, store)
        self._final_seen = True  # from here on, on_kill must not touch the execution
        yield TriggerEvent({"status": status.to_dict(), "handle": handle.to_dict()})  # type: ignore[no-untyped-call]

    async def _watch(self, handle: ExecutionHandle, store: DataStore) -> tuple[TaskStatus, ExecutionHandle]:
        async def open_executor() -> tuple[Executor, tasks_pb2.TaskTemplate]:
            return await executor_for(handle, store), await read_template(store, handle.task_ctx)

        try:
            executor, template = await retry_setup(
                open_executor, handle.policy, "resume the execution", log=self.log
            )
        except SetupFailed as failed:
            return failed.status, handle
        driver = open_driver(handle, executor, template, store, phase_logger(self.log, handle.executor_id))
        # The driver waits on a waker of its own, which the executor's enqueue_owner sets.
        status = await driver.run(deadline=handle.deadline_at, log=self.log)
        return status, handle.with_driver(driver)

    async def _still_deferred(self) -> bool:
        """Whether Airflow still has this task deferred (then we were only moved, not killed)."""
        ti = self.task_instance
        if ti is None:
            return False
        try:
            from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
            from asgiref.sync import sync_to_async

            states = await sync_to_async(RuntimeTaskInstance.get_task_states)(
                dag_id=ti.dag_id, map_index=ti.map_index, task_ids=[ti.task_id], run_ids=[ti.run_id]
            )
        except Exception as exc:
            self.log.warning("could not read the task's state before killing (%s); killing", exc)
            return False
        key = ti.task_id if ti.map_index is None or ti.map_index < 0 else f"{ti.task_id}_{ti.map_index}"
        state = states.get(ti.run_id, {}).get(key)
        return str(getattr(state, "value", state)) in _STILL_DEFERRED

    async def on_kill(self) -> None:
        """A user ended the deferred task: stop the execution (never after a terminal phase).

        The kill runs as its own task: Airflow 3.3 cancels a cancelled trigger again about every
        second until it is gone, which would otherwise cut a kill off between SIGTERM and SIGKILL.
        """
        if self._final_seen:
            return
        kill = _detach(self._kill_unless_moved())
        try:
            await asyncio.shield(kill)
        except asyncio.CancelledError:
            self.log.info("the kill of %s goes on in the background", self.handle.task_ctx.generated_name)

    async def _kill_unless_moved(self) -> None:
        if await self._still_deferred():
            self.log.info("trigger moved to another triggerer; leaving the execution running")
            return
        handle = self.handle
        store = self._store or DataStore()
        executor = await call_with_limit(lambda: executor_for(handle, store), handle.policy.call_timeout)
        reason = "the Airflow task was stopped by a user action"
        await kill_execution(executor, handle.task_ctx, reason, handle.policy, log=self.log)

    async def cleanup(self) -> None:
        """Runs on every trigger stop, restarts included: deliberately kills nothing."""
        return None
