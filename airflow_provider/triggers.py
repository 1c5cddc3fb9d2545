"""ExecutorTrigger: waits on an execution inside Airflow's triggerer, holding no worker slot."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider import executor_pool
from airflow_provider.execution import (
    ExecutionHandle,
    executor_for,
    open_driver,
    phase_logger,
    read_template,
)
from executors import DataStore, ErrorOrigin, TaskError, TaskStatus, retryable_failure
from executors.engine.driver import Waker

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
        handle = self.handle
        ctx = handle.task_ctx
        store = self._store = DataStore()
        global _warmed_up
        if not _warmed_up and self.task_instance is not None:
            # The triggerer builds its in-process API on the first task-state query (~3 s): do it
            # now, once per process, so that a user's kill later is decided at once.
            _warmed_up = True
            _detach(self._still_deferred())
        wake = executor_pool.wake_event(ctx.owner_id)
        try:
            status, handle = await self._watch(handle, store, wake)
        finally:
            executor_pool.release_wake_event(ctx.owner_id)
        self._final_seen = True  # from here on, on_kill must not touch the execution
        yield TriggerEvent({"status": status.to_dict(), "handle": handle.to_dict()})  # type: ignore[no-untyped-call]

    async def _watch(
        self, handle: ExecutionHandle, store: DataStore, wake: Waker
    ) -> tuple[TaskStatus, ExecutionHandle]:
        policy_streak = 0
        while True:  # set-up: a data store or backend that is down at first is waited for
            try:
                timeout = float(handle.policy.get("call_timeout", 120))
                executor = await asyncio.wait_for(executor_for(handle, store), timeout)
                template = await asyncio.wait_for(read_template(handle.task_ctx, store), timeout)
                break
            except Exception as exc:
                policy_streak += 1
                limit = int(handle.policy.get("unknown_limit", 10))
                self.log.warning(
                    "cannot resume %s (%d/%d): %s", handle.task_ctx.generated_name, policy_streak, limit, exc
                )
                if policy_streak >= limit:
                    return retryable_failure(
                        TaskError(
                            type(exc).__name__, f"cannot resume the execution: {exc}", ErrorOrigin.SYSTEM
                        )
                    ), handle
                await asyncio.sleep(float(handle.policy.get("interval", 5)))

        driver = open_driver(handle, executor, template, store, phase_logger(self.log, handle.executor_id))
        deadline = handle.deadline_at
        while True:
            if deadline is not None and dt.datetime.now(dt.UTC) >= deadline:
                # Bounded: the event must still go out (the try fails) if the backend will not listen.
                budget = 3 * float(handle.policy.get("call_timeout", 120))
                await self._kill(
                    executor, driver.ctx, f"timeout: still running at {deadline.isoformat()}", budget
                )
                status = retryable_failure(
                    TaskError(
                        "Timeout",
                        f"the execution did not finish before {deadline.isoformat()}",
                        ErrorOrigin.SYSTEM,
                    )
                )
                return status, handle.with_driver(driver)
            status = await driver.step()
            if status.phase.is_final_for_execution():
                return status, handle.with_driver(driver)
            delay = driver.next_delay(status)
            if deadline is not None:
                delay = max(0.0, min(delay, (deadline - dt.datetime.now(dt.UTC)).total_seconds()))
            await wake.wait(delay)

    async def _kill(self, executor: Any, ctx: Any, reason: str, budget: float = 300.0) -> None:
        attempt = 0
        retry = executor.get_properties().requires_finalizer
        deadline = asyncio.get_running_loop().time() + budget
        while True:
            attempt += 1
            try:
                await asyncio.wait_for(
                    executor.kill_task(ctx, reason), float(self.handle.policy.get("call_timeout", 120))
                )
                self.log.info("killed %s execution %s: %s", executor.get_id(), ctx.generated_name, reason)
                return
            except Exception as exc:
                self.log.warning("kill of %s failed (attempt %d): %s", ctx.generated_name, attempt, exc)
                if not retry or asyncio.get_running_loop().time() > deadline:
                    self.log.error("giving up killing %s: it may still be running", ctx.generated_name)
                    return
                # requires_finalizer: keep trying until it works (the triggerer bounds on_kill's time).
                await asyncio.sleep(min(5.0, 0.2 * 2**attempt))

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
        executor = await asyncio.wait_for(
            executor_for(handle, store), float(handle.policy.get("call_timeout", 120))
        )
        await self._kill(executor, handle.task_ctx, "the Airflow task was stopped by a user action")

    async def cleanup(self) -> None:
        """Runs on every trigger stop, restarts included: deliberately kills nothing."""
        return None
