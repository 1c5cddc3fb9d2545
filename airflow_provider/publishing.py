"""The end of a try: the cache outcome, the task's output, and its outputs or its failure.

Outputs are returned (XCom ``return_value``; with ``multiple_outputs`` Airflow also pushes each
under its own name); a failed execution raises the Airflow exception that matches its phase.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from flyteidl.core import tasks_pb2

from airflow_provider.execution import failure_message, output_reader, output_sink
from airflow_provider.failures import try_failed
from airflow_provider.links import RUN_URL_XCOM_KEY, run_url
from executors import DataStore, Executor, TaskContext, TaskPhase, TaskStatus
from executors.catalog.gate import CacheOutcome
from executors.core.errors import (
    CorruptDataError,
    InterfaceMismatchError,
    LiteralConversionError,
    OutputsError,
)
from executors.data.storage import RefusedDataError
from executors.engine.driver import Logger as Log
from executors.engine.policy import DEFAULT_POLICY
from executors.engine.submission import output_copier, read_typed_outputs

if TYPE_CHECKING:
    from airflow.sdk import Context


CACHE_STATUS_XCOM_KEY = "cache_status"
"""XCom key of the catalog outcome (flyteidl ``CatalogCacheStatus`` name, e.g. ``CACHE_HIT``)."""

RESERVED_XCOM_KEYS = frozenset({"return_value", RUN_URL_XCOM_KEY, CACHE_STATUS_XCOM_KEY})


@dataclasses.dataclass(frozen=True)
class ReturnShape:
    """How a succeeded execution's outputs become the task's return value (XCom ``return_value``):
    the dict of them, or with ``single`` the value of that one output (``@task.executor`` with a
    plain return). With ``multiple_outputs`` each key of a dict value is its own XCom too."""

    single: str | None = None
    multiple_outputs: bool = True

    def value(self, outputs: dict[str, Any]) -> Any:
        return outputs.get(self.single) if self.single else outputs

    def xcoms(self, outputs: dict[str, Any]) -> dict[str, Any]:
        """What Airflow's task runner pushes for this return value, by key."""
        value = self.value(outputs)
        pushed = {"return_value": value}
        if self.multiple_outputs and isinstance(value, dict):
            pushed.update({str(k): v for k, v in value.items()})
        return pushed

    def to_dict(self) -> dict[str, Any]:
        return {"single": self.single, "multiple_outputs": self.multiple_outputs}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ReturnShape:
        data = data or {}
        return cls(single=data.get("single"), multiple_outputs=bool(data.get("multiple_outputs", True)))


def check_output_names(template: tasks_pb2.TaskTemplate) -> None:
    """Outputs must not take the XComs the operator pushes itself."""
    clashes = RESERVED_XCOM_KEYS & set(template.interface.outputs.variables)
    if clashes:
        reserved = ", ".join(sorted(RESERVED_XCOM_KEYS))
        raise ValueError(
            f"output(s) {', '.join(sorted(clashes))} would overwrite the XCom of the same name that "
            f"this operator pushes; rename them (reserved: {reserved})"
        )


def push_run_url(context: Context, executor: Executor, ctx: TaskContext) -> None:
    url = run_url(executor, ctx)
    if url:
        context["ti"].xcom_push(key=RUN_URL_XCOM_KEY, value=url)


@dataclasses.dataclass(frozen=True)
class Conclusion:
    """How a try ends, decided once for the worker and the triggerer alike.

    ``outputs``: a succeeded execution's outputs (plain values); else ``failure`` says why, and
    ``permanent`` whether a retry could change anything. ``xcoms``: what is pushed besides them.
    """

    xcoms: dict[str, Any]
    outputs: dict[str, Any] | None = None
    failure: str = ""
    permanent: bool = False


async def conclude(
    executor: Executor,
    template: tasks_pb2.TaskTemplate,
    ctx: TaskContext,
    status: TaskStatus,
    log: Log,
    *,
    store: DataStore | None = None,
    try_number: int | None = None,
) -> Conclusion:
    """Log the cache outcome and the rest of the task's output, then read the outputs of a
    succeeded execution (or say why the try failed). Never raises for the task's own failure.

    The output: what try ``try_number`` has not copied into its log yet (the copy's cursor is in
    the execution's folder in ``store``), or, from an executor that cannot read output piece by
    piece (or without a store), the tail of its logs."""
    xcoms: dict[str, Any] = {}
    outcome = CacheOutcome.of(ctx)
    if outcome is not None:
        log.info("cache: %s (key %s)", outcome.status, outcome.key)
        if outcome.error:
            log.warning("catalog trouble (the task is not affected): %s", outcome.error)
        xcoms[CACHE_STATUS_XCOM_KEY] = outcome.status
    await copy_rest_of_output(executor, ctx, log, store=store, try_number=try_number)
    if status.phase is not TaskPhase.SUCCEEDED:
        message = failure_message(executor.get_id(), ctx, status)
        return Conclusion(xcoms, failure=message, permanent=status.phase is TaskPhase.PERMANENT_FAILURE)
    what = f"{executor.get_id()} execution {ctx.generated_name} succeeded but its outputs"
    try:
        values = await read_typed_outputs(executor, template, ctx)
    except RefusedDataError as exc:
        # A FIFO, a device, a symlink out of the folder, a file over its cap: what the task wrote
        # is refused as it is, and every retry would adopt the same execution.
        return Conclusion(xcoms, failure=f"{what} file was refused: {exc}", permanent=True)
    except (OutputsError, CorruptDataError, LiteralConversionError, InterfaceMismatchError) as exc:
        # Outputs that do not match the interface: every retry would adopt the same execution.
        return Conclusion(xcoms, failure=f"{what} do not match its interface: {exc}", permanent=True)
    except Exception as exc:
        # Retryable (the store, the backend): the outputs are still in the execution's folder and
        # the next try adopts the succeeded execution and publishes them without running it again.
        return Conclusion(xcoms, failure=f"{what} could not be read: {exc}")
    if not template.interface.outputs.variables:
        log.info("%s declares no outputs", ctx.generated_name)
    else:
        log.info("outputs of %s: %s", ctx.generated_name, json.dumps(values, default=str)[:2000])
    return Conclusion(xcoms, outputs=values)


async def copy_rest_of_output(
    executor: Executor,
    ctx: TaskContext,
    log: Log,
    *,
    store: DataStore | None,
    try_number: int | None = None,
) -> None:
    """Copy into the task log what the execution printed and this try has not copied yet (all of
    it when nothing was copied while it ran); never raises: output is a courtesy."""
    if store is not None:
        reader = output_reader(ctx, try_number)
        copier = output_copier(executor, store, ctx, output_sink(log), DEFAULT_POLICY, reader, log=log)
        await copier.copy(ctx, final=True)
        if copier.supported:
            return
    try:
        logs = await executor.read_logs(ctx)
    except Exception as exc:  # logs are a courtesy: never fail a task over them
        log.warning("could not read the output of %s: %s", ctx.generated_name, exc)
        logs = None
    if logs:
        log.info("output of %s:\n%s", ctx.generated_name, logs)


async def finish(
    context: Context,
    executor: Executor,
    template: tasks_pb2.TaskTemplate,
    ctx: TaskContext,
    status: TaskStatus,
    log: Log,
) -> dict[str, Any]:
    """:func:`conclude` in a worker: push its XComs, then return the outputs of a succeeded
    execution or raise: ``AirflowFailException`` for a permanent failure, else ``AirflowException``."""
    ti = context["ti"]
    conclusion = await conclude(
        executor, template, ctx, status, log, store=DataStore(), try_number=getattr(ti, "try_number", None)
    )
    for key, value in conclusion.xcoms.items():
        context["ti"].xcom_push(key=key, value=value)
    if conclusion.outputs is not None:
        return conclusion.outputs
    raise try_failed(conclusion.failure, permanent=conclusion.permanent)
