"""What the operator, the trigger and the listener share: the handle of one execution.

An :class:`ExecutionHandle` is small and JSON-safe (references, never payloads): the task
template and inputs live in the execution's folder and are read by URL. It travels in the trigger
kwargs *and* in the trigger's event, because ``dag.test()`` in Airflow 3.3.2 drops ``defer()``
kwargs (apache/airflow#53640 family): the resume method must not depend on them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Any

from flyteidl.core import tasks_pb2

from executors import DataStore, ExecutionDriver, Executor, PollPolicy, TaskContext, TaskPhase, TaskStatus
from executors.catalog.gate import HIT, CacheOutcome
from executors.core.output import OutputLines
from executors.engine import submission
from executors.engine.driver import DriverSnapshot
from executors.engine.output import OutputSink


@dataclasses.dataclass(frozen=True)
class ExecutionHandle:
    """Everything needed to resume watching an execution, in any process."""

    executor_id: str
    executor_config: dict[str, Any]
    driver: DriverSnapshot
    policy: PollPolicy = dataclasses.field(default_factory=PollPolicy)
    deadline: str | None = None
    """ISO timestamp after which the execution is killed and the attempt fails (``timeout``)."""
    catalog: dict[str, Any] | None = None
    """Where the result catalog is: ``{"conn_id": ...}`` or ``{"root": url}``; None: no caching."""

    @property
    def task_ctx(self) -> TaskContext:
        return self.driver.task_ctx

    @property
    def deadline_at(self) -> dt.datetime | None:
        return dt.datetime.fromisoformat(self.deadline) if self.deadline else None

    def with_driver(self, driver: ExecutionDriver) -> ExecutionHandle:
        return dataclasses.replace(self, driver=driver.snapshot())

    def to_dict(self) -> dict[str, Any]:
        return {
            "executor_id": self.executor_id,
            "executor_config": self.executor_config,
            "driver": self.driver.to_dict(),
            "policy": self.policy.to_dict(),
            "deadline": self.deadline,
            "catalog": self.catalog,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExecutionHandle:
        """Known fields only: a record may carry more (the operator's ``deferred`` marker)."""
        return cls(
            executor_id=data["executor_id"],
            executor_config=dict(data.get("executor_config") or {}),
            driver=DriverSnapshot.from_dict(data["driver"]),
            policy=PollPolicy.from_dict(data.get("policy")),
            deadline=data.get("deadline"),
            catalog=data.get("catalog"),
        )


async def executor_for(handle: ExecutionHandle, store: DataStore) -> Executor:
    """The initialized executor (with the catalog in front when the handle names one)."""
    from airflow_provider import executor_pool

    return await executor_pool.get_executor(handle.executor_id, handle.executor_config, store, handle.catalog)


async def open_executor(handle: ExecutionHandle, store: DataStore, task_id: str) -> Executor:
    """:func:`executor_for` for a task: wrong options fail without retry, anything else retries,
    and either way the message says which executor and why."""
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    try:
        return await executor_for(handle, store)
    except (TypeError, ValueError) as exc:
        raise AirflowFailException(f"{task_id}: executor {handle.executor_id!r} options: {exc}") from exc
    except Exception as exc:
        cause = f"{type(exc).__name__}: {exc}"
        raise AirflowException(
            f"{task_id}: executor {handle.executor_id!r} could not be initialized: {cause}"
        ) from exc


def open_driver(
    handle: ExecutionHandle,
    executor: Executor,
    template: tasks_pb2.TaskTemplate,
    store: DataStore,
    on_change: Callable[[TaskContext, TaskStatus], None] | None,
    secrets: dict[str, str] | None = None,
    *,
    log: logging.Logger | Any = None,
    try_number: int | None = None,
) -> ExecutionDriver:
    """:func:`executors.engine.submission.open_driver` for the handle, with Airflow's secrets.

    ``secrets``: already resolved secret environment for the start; without it they are looked up
    (again) from Airflow's secrets backend whenever a start is needed. ``log``: the task log the
    execution's output is copied into as it comes (:func:`output_sink`), by try ``try_number``
    (default: the try that started the execution).
    """
    loader = None
    if template.security_context.secrets:

        async def loader() -> dict[str, str]:
            from airflow_provider.secrets import resolve_secrets

            return secrets if secrets is not None else await resolve_secrets(template)

    return submission.open_driver(
        executor,
        template,
        handle.driver,
        store,
        policy=handle.policy,
        on_change=on_change,
        secrets_loader=loader,
        output=None if log is None else output_sink(log),
        output_reader=output_reader(handle.task_ctx, try_number),
    )


def output_reader(task_ctx: TaskContext, try_number: int | None = None) -> str:
    """Who copies an execution's output: the Airflow try whose log it goes into (each try keeps
    its own cursor, so a later try that adopts an execution copies its output into its own log)."""
    number = try_number if try_number is not None else task_ctx.task_execution_id.id.retry_attempt + 1
    return f"try-{number}"


def output_sink(log: logging.Logger | Any) -> OutputSink:
    """Writes copied output into a task log, each line tagged with its stream (``[stdout] ...``),
    one record per piece (the consecutive lines of a stream in one read): a few string operations
    and one pass through Airflow's log processors per copy, however many lines it holds."""

    def write(pieces: Sequence[OutputLines]) -> None:
        for piece in pieces:
            # One level for both streams: stderr is where most programs log, warnings or not.
            log.info("%s", piece.tagged(f"[{piece.stream}] "))

    return write


def phase_logger(log: logging.Logger | Any, executor_id: str) -> Callable[[TaskContext, TaskStatus], None]:
    """The one task-log line written per phase (or phase version) change."""

    def on_change(ctx: TaskContext, status: TaskStatus) -> None:
        version = f" (version {status.phase_version})" if status.phase_version else ""
        detail = f": {status.err}" if status.err else ""
        outcome = CacheOutcome.of(ctx)
        if status.phase is TaskPhase.SUCCEEDED and outcome is not None and outcome.status == HIT:
            detail = ", answered from the cache: nothing ran"  # not "SUCCEEDED" as if it had run
        log.info(
            "%s execution %s is %s%s%s", executor_id, ctx.generated_name, status.phase.name, version, detail
        )

    return on_change


def failure_message(executor_id: str, ctx: TaskContext, status: TaskStatus) -> str:
    """The text of the Airflow exception for a failed execution: executor, execution, cause."""
    err = status.err
    cause = f"[{err.origin.value}:{err.code}] {err.message}" if err else "no error detail"
    kind = "permanently (no retry)" if status.phase.is_permanent_failure() else "(retryable)"
    return f"{executor_id} execution {ctx.generated_name} failed {kind}: {cause}"
