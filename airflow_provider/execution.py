"""What the operator and the trigger share: the handle of one execution, and how to resume it.

An :class:`ExecutionHandle` is small and JSON-safe (references, never payloads): the task
template and inputs live in the execution's folder and are read by URL. It travels in the trigger
kwargs *and* in the trigger's event, because ``dag.test()`` in Airflow 3.3.2 drops ``defer()``
kwargs (apache/airflow#53640 family): the resume method must not depend on them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from flyteidl.core import literals_pb2, tasks_pb2

from executors import DataStore, ExecutionDriver, Executor, PollPolicy, TaskContext, TaskStatus
from executors.engine.events import DataStoreEventRecorder


@dataclasses.dataclass(frozen=True)
class ExecutionHandle:
    """Everything needed to resume watching an execution, in any process."""

    executor_id: str
    executor_config: dict[str, Any]
    driver: dict[str, Any]
    """:meth:`ExecutionDriver.snapshot`: the TaskContext, whether the start was accepted, streak."""
    policy: dict[str, Any]
    deadline: str | None = None
    """ISO timestamp after which the execution is killed and the attempt fails (``timeout``)."""
    catalog: dict[str, Any] | None = None
    """Where the result catalog is: ``{"conn_id": ...}`` or ``{"root": url}``; None: no caching."""

    @property
    def task_ctx(self) -> TaskContext:
        return TaskContext.from_dict(self.driver["task_ctx"])

    @property
    def deadline_at(self) -> dt.datetime | None:
        return dt.datetime.fromisoformat(self.deadline) if self.deadline else None

    def with_driver(self, driver: ExecutionDriver) -> ExecutionHandle:
        return dataclasses.replace(self, driver=driver.snapshot())

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExecutionHandle:
        """Known fields only: a record may carry more (the operator's ``deferred`` marker)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


async def executor_for(handle: ExecutionHandle, store: DataStore) -> Executor:
    """The initialized executor (with the catalog in front when the handle names one)."""
    from airflow_provider import executor_pool

    return await executor_pool.get_executor(handle.executor_id, handle.executor_config, store, handle.catalog)


async def read_template(task_ctx: TaskContext, store: DataStore) -> tasks_pb2.TaskTemplate:
    return await store.read_protobuf(task_ctx.task_template_file, tasks_pb2.TaskTemplate)


def open_driver(
    handle: ExecutionHandle,
    executor: Executor,
    template: tasks_pb2.TaskTemplate,
    store: DataStore,
    on_change: Callable[[TaskContext, TaskStatus], None] | None,
    secrets: dict[str, str] | None = None,
) -> ExecutionDriver:
    """A driver resuming from the handle's snapshot (start is only called if never accepted).

    ``secrets``: already resolved secret environment for the start; without it they are looked up
    (again) from Airflow's secrets backend whenever a start is needed.
    """
    ctx = handle.task_ctx

    async def load_inputs() -> literals_pb2.LiteralMap:
        return await store.read_protobuf(ctx.inputs_file, literals_pb2.LiteralMap)

    return ExecutionDriver(
        executor,
        template,
        ctx,
        inputs_loader=load_inputs,
        policy=PollPolicy.from_dict(handle.policy),
        accepted=bool(handle.driver.get("accepted")),
        streak=int(handle.driver.get("streak", 0)),
        unknown_streak=int(handle.driver.get("unknown_streak", 0)),
        event_recorders=(DataStoreEventRecorder(store),),
        on_change=on_change,
        secrets_loader=_secrets_loader(template, secrets),
    )


def _secrets_loader(
    template: tasks_pb2.TaskTemplate, resolved: dict[str, str] | None
) -> Callable[[], Awaitable[dict[str, str]]] | None:
    if not template.security_context.secrets:
        return None

    async def load() -> dict[str, str]:
        from airflow_provider.secrets import resolve_secrets

        return resolved if resolved is not None else await resolve_secrets(template)

    return load


def phase_logger(log: logging.Logger | Any, executor_id: str) -> Callable[[TaskContext, TaskStatus], None]:
    """The one task-log line written per phase (or phase version) change."""

    def on_change(ctx: TaskContext, status: TaskStatus) -> None:
        version = f" (version {status.phase_version})" if status.phase_version else ""
        detail = f": {status.err}" if status.err else ""
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
