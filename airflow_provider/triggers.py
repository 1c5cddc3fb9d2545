"""ExecutorTrigger: waits on an execution inside Airflow's triggerer, holding no worker slot."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException
from airflow.triggers.base import BaseTrigger, TaskFailedEvent, TaskSuccessEvent, TriggerEvent
from flyteidl.core import tasks_pb2

from airflow_provider import adoption, ending, links, publishing, start, task_states
from airflow_provider.execution import ExecutionHandle, executor_for, open_driver, phase_logger
from airflow_provider.identity import Attempt
from airflow_provider.links import RUN_URL_XCOM_KEY
from airflow_provider.publishing import ReturnShape
from airflow_provider.start import RENDERED_FIELDS
from executors import DataStore, Executor, TaskStatus
from executors.core.status import ErrorOrigin, TaskError, permanent_failure, retryable_failure
from executors.engine.background import detach
from executors.engine.driver import SetupFailed, kill_execution, retry_setup
from executors.engine.submission import read_template
from executors.engine.watchdog import call_with_limit

_warmed_up = False


class ResumeEvent(TriggerEvent):
    """The event of a task that resumes in a worker (its payload is for ``execute_complete``).

    The triggerer logs every event's repr ("Trigger fired event ... result=..."); Airflow's own
    repr prints the whole payload, execution handle included, on one line. This one says what
    happened. On the wire it is an ordinary ``TriggerEvent``: the same fields, the same payload.
    """

    def __repr__(self) -> str:
        payload = self.payload if isinstance(self.payload, dict) else {}
        status = payload.get("status") or {}
        try:
            phase = TaskStatus.from_dict(status).phase.name
        except (KeyError, TypeError, ValueError):
            phase = "no status"
        try:
            where = f"execution {ExecutionHandle.from_dict(payload['handle']).task_ctx.generated_name}"
        except (KeyError, TypeError, ValueError):
            where = "nothing started"
        concluded = " (outcome read in the triggerer)" if payload.get("conclusion") else ""
        return f"TriggerEvent<{phase}: {where}; the task resumes in a worker{concluded}>"


# States in which a cancelled trigger must NOT kill: the task is still deferred, so the trigger
# was only moved (another triggerer took it over after a restart or a missed heartbeat).
_STILL_DEFERRED = {"deferred"}


class ExecutorTrigger(BaseTrigger):
    """Polls one execution until it is over, then yields exactly one event.

    Two ways in: ``handle`` (the operator started the execution in a worker and deferred), or
    ``start`` (``start_from_trigger``: the triggerer renders the templated fields, passed as
    kwargs of the same names, and this trigger prepares and submits the try itself, through
    :mod:`airflow_provider.start`, the code path the operator uses).

    Two ways out: with ``end_from_trigger`` and nothing that needs a worker (see
    :mod:`airflow_provider.ending`), a ``TaskSuccessEvent`` carrying the XComs or a
    ``TaskFailedEvent``; otherwise an event ``{"status": TaskStatus.to_dict(), "handle":
    ExecutionHandle.to_dict() | None, "conclusion"?: ...}`` that the operator's ``execute_complete``
    turns into the end state and outputs.

    Restart safety: ``run()`` starts from its kwargs on every (re)start. With a handle it only
    *checks* an execution whose start was accepted; with ``start`` it submits again under the same
    execution name (the try's identity), which every executor treats as the same execution, so a
    new triggerer re-attaches and never starts twice. ``cleanup()`` (every stop, restarts included)
    kills nothing; ``on_kill()`` (a user marked the task failed/success, cleared it, or failed the
    run) kills the execution unless a terminal phase was already seen or the task is still
    deferred (the trigger was only moved).
    """

    def __init__(
        self,
        *,
        handle: dict[str, Any] | None = None,
        start: dict[str, Any] | None = None,
        end_from_trigger: bool = False,
        returns: dict[str, Any] | None = None,
        **rendered: Any,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if (handle is None) == (start is None):
            raise TypeError("ExecutorTrigger takes exactly one of handle= or start=")
        unknown = set(rendered) - set(RENDERED_FIELDS)
        if unknown:
            raise TypeError(f"ExecutorTrigger: unexpected argument(s) {', '.join(sorted(unknown))}")
        self.handle = ExecutionHandle.from_dict(handle) if handle is not None else None
        self.start = dict(start) if start is not None else None
        for name in RENDERED_FIELDS:
            setattr(self, name, rendered.get(name))
        self.end_from_trigger = bool(end_from_trigger)
        self.returns = ReturnShape.from_dict(returns)
        self._final_seen = False
        self._store: DataStore | None = None
        self._run_url_pushed: str | None = None
        self._run_url_push: asyncio.Task[None] | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "end_from_trigger": self.end_from_trigger,
            "returns": self.returns.to_dict(),
        }
        if self.start is not None:
            kwargs["start"] = self.start
            kwargs.update({name: getattr(self, name) for name in RENDERED_FIELDS})
        else:
            assert self.handle is not None
            kwargs["handle"] = self.handle.to_dict()
        return ("airflow_provider.triggers.ExecutorTrigger", kwargs)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        store = self._store = DataStore()
        global _warmed_up
        if not _warmed_up and self.task_instance is not None:
            # The triggerer builds its in-process API on the first task-state query (~3 s): do it
            # now, once per process, so that a user's kill later is decided at once.
            _warmed_up = True
            detach(self._still_deferred())
        template: tasks_pb2.TaskTemplate | None = None
        secrets: dict[str, str] | None = None
        if self.handle is None:
            started = await self._start_here(store)
            if isinstance(started, TaskStatus):  # refused before anything started
                self._final_seen = True
                yield await self._end(started, None, None, None)
                return
            template, secrets = started
        assert self.handle is not None
        status, handle, executor, template = await self._watch(self.handle, store, template, secrets)
        self._final_seen = True  # from here on, on_kill must not touch the execution
        yield await self._end(status, handle, executor, template)

    async def _start_here(
        self, store: DataStore
    ) -> TaskStatus | tuple[tasks_pb2.TaskTemplate, dict[str, str]]:
        """Prepare and submit this try (``start_from_trigger``); a refusal is a failed status."""
        assert self.start is not None
        spec = start.spec_of_trigger(self.start, {name: getattr(self, name) for name in RENDERED_FIELDS})
        try:
            if self.task_instance is None:
                raise AirflowException("no task instance: start_from_trigger needs a triggerer")
            # A new triggerer also runs the trigger rows of tasks a user ended meanwhile (marked
            # success or failed while no triggerer ran): those must never start. Unknown: start.
            state = await self._task_state("starting")
            if state is not None and state not in _STILL_DEFERRED:
                reason = f"not started: the task is {state} now"
                return permanent_failure(TaskError("NoLongerDeferred", reason, ErrorOrigin.SYSTEM))
            prepared = await start.prepare(spec, store)
            attempt = Attempt.of(self.task_instance)
            started_at = getattr(self.task_instance, "start_date", None)
            handle = await start.new_handle(spec, attempt, store, prepared, started_at=started_at)
            self.handle = handle  # from here on a user's kill has an execution to stop
            if attempt.try_number > 1:
                await self._stop_previous_try(spec, attempt, store, prepared, handle)
            await start.submit(store, prepared, handle)
            # In the background: 32 tasks starting at once queue their pushes on the triggerer's one
            # channel to Airflow, and the execution's launch must not wait in that queue.
            self._run_url_push = detach(self._push_run_url(handle, store))
        except AirflowFailException as exc:
            return permanent_failure(TaskError("InvalidTask", str(exc), ErrorOrigin.USER))
        except AirflowException as exc:
            return retryable_failure(TaskError("StartFailed", str(exc), ErrorOrigin.SYSTEM))
        except Exception as exc:  # a bug of ours or a backend's: fail this try, never the triggerer
            self.log.exception("could not start %s", spec.task_id)
            error = TaskError(type(exc).__name__, f"start failed: {exc}", ErrorOrigin.SYSTEM)
            return retryable_failure(error)
        self.log.info("submitted from the triggerer: %s", start.start_line(prepared, handle))
        return prepared.template, prepared.secrets

    async def _push_run_url(self, handle: ExecutionHandle, store: DataStore) -> None:
        """The run link's XCom as soon as the execution is submitted (as a worker does), so that
        the link shows while it runs and the end has one XCom less to push; never fails the start."""
        try:
            executor = await executor_for(handle, store)
            url = links.run_url(executor, handle.task_ctx)
            await ending.push_xcoms(self.task_instance, {RUN_URL_XCOM_KEY: url})
        except Exception as exc:
            self.log.warning("could not push the run link yet (it is pushed at the end): %s", exc)
            return
        self._run_url_pushed = url

    async def _stop_previous_try(
        self,
        spec: start.StartSpec,
        attempt: Attempt,
        store: DataStore,
        prepared: start.Prepared,
        handle: ExecutionHandle,
    ) -> None:
        """A cleared or retried task: the previous try's execution may still run (its trigger
        sees the task deferred again and leaves it alone). Never fails the start over it."""
        previous_try = dataclasses.replace(attempt, try_number=attempt.try_number - 1)
        try:
            previous = await start.new_handle(spec, previous_try, store, prepared)
            executor = await executor_for(handle, store)
            await adoption.stop_superseded(executor, store, previous.task_ctx, handle.policy, self.log)
        except Exception as exc:
            self.log.warning("could not check the previous try's execution: %s", exc)

    async def _watch(
        self,
        handle: ExecutionHandle,
        store: DataStore,
        template: tasks_pb2.TaskTemplate | None,
        secrets: dict[str, str] | None,
    ) -> tuple[TaskStatus, ExecutionHandle, Executor | None, tasks_pb2.TaskTemplate | None]:
        async def open_executor() -> tuple[Executor, tasks_pb2.TaskTemplate]:
            known = template if template is not None else await read_template(store, handle.task_ctx)
            return await executor_for(handle, store), known

        try:
            executor, template = await retry_setup(
                open_executor, handle.policy, "resume the execution", log=self.log
            )
        except SetupFailed as failed:
            return failed.status, handle, None, None
        on_change = phase_logger(self.log, handle.executor_id)
        driver = open_driver(
            handle,
            executor,
            template,
            store,
            on_change,
            secrets=secrets,
            log=self.log,
            try_number=self._try_number(),
        )
        # The driver waits on a waker of its own, which the executor's enqueue_owner sets.
        status = await driver.run(deadline=handle.deadline_at, log=self.log)
        return status, handle.with_driver(driver), executor, template

    async def _end(
        self,
        status: TaskStatus,
        handle: ExecutionHandle | None,
        executor: Executor | None,
        template: tasks_pb2.TaskTemplate | None,
    ) -> TriggerEvent:
        """The one event: the task's end (``end_from_trigger``) or its way back to a worker."""
        if self._run_url_push is not None:
            await self._run_url_push  # never raises; after it, no later XCom can be overwritten
        payload: dict[str, Any] = {"status": status.to_dict(), "handle": handle.to_dict() if handle else None}
        if self.task_instance is not None:
            # Whose event this is: on SQLite a trigger id can be reused, and Airflow then hands the
            # event of a stale trigger to the task now deferred under that id (see execute_complete).
            payload["owner"] = dataclasses.asdict(Attempt.of(self.task_instance))
        why_worker = await self._worker_needed()
        if why_worker is not None:
            if self.end_from_trigger:
                self.log.info("the task ends in a worker: %s", why_worker)
            return ResumeEvent(payload=payload)
        if handle is None or executor is None or template is None:  # nothing ran, nothing to read
            message = status.err.message if status.err else status.phase.name
            conclusion = publishing.Conclusion(
                {}, failure=message, permanent=status.phase.is_permanent_failure()
            )
            run_url = ""
        else:
            conclusion = await publishing.conclude(
                executor,
                template,
                handle.task_ctx,
                status,
                self.log,
                store=self._store,
                try_number=self._try_number(),
            )
            run_url = links.run_url(executor, handle.task_ctx)
        if conclusion.outputs is None and conclusion.permanent:
            # A TaskFailedEvent would be retried: a worker fails the task for good instead.
            self.log.error("%s", conclusion.failure)
            payload["conclusion"] = {
                "xcoms": conclusion.xcoms, "failure": conclusion.failure, "permanent": True,
            }  # fmt: skip
            return ResumeEvent(payload=payload)
        xcoms = ending.end_xcoms(conclusion, self.returns, run_url)
        if self._run_url_pushed == run_url:
            del xcoms[RUN_URL_XCOM_KEY]  # pushed at the start
        try:
            await ending.push_xcoms(self.task_instance, xcoms)
        except Exception as exc:
            self.log.warning("the task ends in a worker: its XComs could not be pushed from here: %s", exc)
            return ResumeEvent(payload=payload)
        if conclusion.outputs is not None:
            return TaskSuccessEvent()
        self.log.error("%s", conclusion.failure)
        return TaskFailedEvent()

    def _try_number(self) -> int | None:
        """The try whose log this trigger writes (``None`` without a task instance: dag.test())."""
        return getattr(self.task_instance, "try_number", None) if self.task_instance is not None else None

    async def _worker_needed(self) -> str | None:
        """Why this task must end in a worker, or ``None`` when the trigger may end it."""
        if not self.end_from_trigger:
            return "end_from_trigger is off"
        if self.trigger_id is None:
            return "not run by a triggerer (dag.test() runs triggers inline)"
        blockers = await ending.process_blockers()
        if blockers:
            return ", ".join(blockers)
        if self.start is not None and ending.mapped_dependants(self.task):
            return "a downstream task maps over its output"
        # Only a task still deferred is ended from here: a stale trigger (its task ended or moved
        # on while no triggerer ran) hands back an ordinary event, which the task checks is its own.
        state = await self._task_state("ending the task")
        if state is not None and state not in _STILL_DEFERRED:
            return f"the task is {state} now"
        return None

    async def _task_state(self, purpose: str) -> str | None:
        """The task's state as Airflow has it now; ``None`` when it cannot be read (said in the log)."""
        ti = self.task_instance
        if ti is None:
            return None
        try:
            # Read together with the other triggers' reads of the moment (one call for many).
            return await task_states.task_state(ti.dag_id, ti.run_id, ti.task_id, ti.map_index)
        except Exception as exc:
            self.log.warning("could not read the task's state before %s (%s)", purpose, exc)
            return None

    async def _still_deferred(self) -> bool:
        """Whether Airflow still has this task deferred (then we were only moved, not killed);
        unknown counts as not (a kill is idempotent)."""
        return await self._task_state("killing") in _STILL_DEFERRED

    async def on_kill(self) -> None:
        """A user ended the deferred task: stop the execution (never after a terminal phase).

        The kill runs as its own task: Airflow 3.3 cancels a cancelled trigger again about every
        second until it is gone, which would otherwise cut a kill off between SIGTERM and SIGKILL.
        """
        handle = self.handle
        if self._final_seen or handle is None:  # over, or started here and nothing submitted yet
            return
        kill = detach(self._kill_unless_moved(handle))
        try:
            await asyncio.shield(kill)
        except asyncio.CancelledError:
            self.log.info("the kill of %s goes on in the background", handle.task_ctx.generated_name)

    async def _kill_unless_moved(self, handle: ExecutionHandle) -> None:
        if await self._still_deferred():
            self.log.info("trigger moved to another triggerer; leaving the execution running")
            return
        store = self._store or DataStore()
        executor = await call_with_limit(lambda: executor_for(handle, store), handle.policy.call_timeout)
        reason = "the Airflow task was stopped by a user action"
        await kill_execution(executor, handle.task_ctx, reason, handle.policy, log=self.log)
        # What it printed until then stays in the try's log.
        await publishing.copy_rest_of_output(
            executor, handle.task_ctx, self.log, store=store, try_number=self._try_number()
        )

    async def cleanup(self) -> None:
        """Runs on every trigger stop, restarts included: deliberately kills nothing."""
        return None
