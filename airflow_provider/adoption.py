"""Exactly one execution per try, even across worker crashes.

The operator records the execution of a try in Airflow's task state store *before* starting it
(and again, marked ``deferred``, when it hands it to the trigger). A later try of the same task
instance reads that record first: a succeeded execution, or one still running whose worker was
lost before it deferred, is adopted instead of started again; anything else is stopped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider.execution import ExecutionHandle, phase_logger
from executors import DataStore, Executor, PollPolicy, TaskContext, TaskPhase, TaskStatus
from executors.engine import submission
from executors.engine.driver import DriverSnapshot, Logger, kill_execution
from executors.engine.watchdog import call_with_limit

if TYPE_CHECKING:
    from airflow.sdk import Context

STATE_KEY = "executors.execution"
"""Task state store key holding the execution this task instance last started."""

ABOUT = (
    "Kept by airflow-provider-executors: the execution this task instance last started. Clearing it "
    "deletes no data, but then a later try cannot find that execution (one still running is neither "
    "adopted nor stopped, so it may run twice), and marking the task failed or success no longer "
    "stops it."
)
"""Said in the record itself: the UI's Task State Store tab shows the record, and offers "Clear All"
on it, with no word of its own on what clearing costs."""


def _state_store(context: Context) -> Any:
    try:
        return context["task_state_store"]
    except KeyError:
        return None


def remember(context: Context, handle: ExecutionHandle, *, deferred: bool = False) -> None:
    """Record the execution *before* starting it, so a crash right after start leaves a trace;
    and again when deferring, marked ``deferred``."""
    state_store = _state_store(context)
    if state_store is not None:
        state_store.set(STATE_KEY, {"about": ABOUT, **handle.to_dict(), "deferred": deferred})


def recorded(context: Context) -> tuple[ExecutionHandle, bool] | None:
    """The execution this task instance last recorded, and whether its try had deferred."""
    return _previous(context)


def _previous(context: Context) -> tuple[ExecutionHandle, bool] | None:
    state_store = _state_store(context)
    return from_record(state_store.get(STATE_KEY) if state_store is not None else None)


def from_record(record: Any) -> tuple[ExecutionHandle, bool] | None:
    """The execution a record holds and whether its try had deferred; ``None`` for anything that
    is not such a record (written by another version of us, or by someone else: ignored)."""
    if not isinstance(record, dict):
        return None
    try:
        return ExecutionHandle.from_dict(record), bool(record.get("deferred", False))
    except Exception:
        return None


async def adopt_previous(
    context: Context,
    executor: Executor,
    store: DataStore,
    ctx: TaskContext,
    policy: PollPolicy,
    log: Logger,
) -> ExecutionHandle | None:
    """Deal with an execution an earlier try of this task instance started; return its handle to
    adopt it, or ``None`` to start ``ctx`` afresh.

    Still running, or succeeded: adopt it (a worker lost mid-run must not throw away work or start a
    duplicate). Failed, killed, or unknown: make sure it is stopped, then start anew. The check is
    one driver step: time-bounded, an undefined phase a failure, a change of phase an event.
    """
    found = _previous(context)
    if found is None:
        return None
    previous, was_deferred = found
    if previous.task_ctx.generated_name == ctx.generated_name or previous.executor_id != executor.get_id():
        return None
    status, snapshot = await _check(executor, store, previous.task_ctx, policy, log)
    # A succeeded execution is always adopted (its outputs are published, nothing runs again).
    # A running one only if its try never deferred: then its worker was lost between start and
    # defer. Once deferred, its trigger owned it, so a new try means the user cleared the task
    # (or Airflow retried it on purpose): stop the old execution and start afresh.
    running = status.phase in (TaskPhase.RUNNING, TaskPhase.QUEUED)
    if status.phase is TaskPhase.SUCCEEDED or (running and not was_deferred):
        return ExecutionHandle(
            executor_id=previous.executor_id,
            executor_config=previous.executor_config,
            driver=DriverSnapshot(snapshot.task_ctx, accepted=True),
            policy=policy,
            deadline=previous.deadline,
            catalog=previous.catalog,
        )
    if not status.phase.is_terminal():
        await kill_execution(executor, previous.task_ctx, "superseded by a new try", policy, log=log)
    return None


async def _check(
    executor: Executor, store: DataStore, ctx: TaskContext, policy: PollPolicy, log: Logger
) -> tuple[TaskStatus, DriverSnapshot]:
    """One driver step on an earlier try's execution: time-bounded, an undefined phase a failure,
    a change of phase an event; UNKNOWN when its task cannot be read."""
    try:
        template = await call_with_limit(lambda: submission.read_template(store, ctx), policy.call_timeout)
    except Exception as exc:
        log.warning("cannot read the task of an earlier try (%s): %s; stopping it", ctx.generated_name, exc)
        return TaskStatus(TaskPhase.UNKNOWN), DriverSnapshot(ctx, accepted=True)
    driver = submission.open_driver(
        executor, template, DriverSnapshot(ctx, accepted=True), store,
        policy=policy, on_change=phase_logger(log, executor.get_id()),
    )  # fmt: skip
    status = await driver.step()
    return status, driver.snapshot()


async def stop_superseded(
    executor: Executor, store: DataStore, previous: TaskContext, policy: PollPolicy, log: Logger
) -> None:
    """A try started in the triggerer supersedes the previous try's execution: the task was
    cleared or retried, on purpose (a trigger-started try has no worker to lose). Stop it unless it
    is over or never started. The old trigger leaves it alone: the task is deferred again."""
    try:
        submitted = await call_with_limit(
            lambda: store.exists(previous.task_template_file), policy.call_timeout
        )
    except Exception as exc:
        log.warning("cannot tell whether the previous try (%s) started: %s", previous.generated_name, exc)
        submitted = True
    if not submitted:
        return
    status, _ = await _check(executor, store, previous, policy, log)
    if not status.phase.is_terminal():
        await kill_execution(executor, previous, "superseded by a new try", policy, log=log)
