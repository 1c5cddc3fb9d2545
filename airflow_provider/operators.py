"""ExecutorOperator: run a typed task on a pluggable executor, deferring while it runs."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import json
import math
import os
from collections.abc import Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from flyteidl.core import literals_pb2, tasks_pb2

from airflow_provider import config, executor_pool
from airflow_provider.execution import (
    ExecutionHandle,
    executor_for,
    failure_message,
    open_driver,
    phase_logger,
    read_template,
)
from airflow_provider.identity import execution_folder, node_id, task_execution_identifier
from airflow_provider.links import RUN_URL_XCOM_KEY, ExecutorRunLink
from airflow_provider.secrets import MissingSecretError, resolve_secrets
from airflow_provider.template_field import TaskTemplateField
from airflow_provider.triggers import ExecutorTrigger
from executors import (
    DataStore,
    ExecutionDriver,
    Executor,
    ExecutorsError,
    OwnerReference,
    PollPolicy,
    TaskContext,
    TaskExecutionID,
    TaskOverrides,
    TaskPhase,
    TaskStatus,
    known_executor_ids,
)
from executors.catalog import CacheKey, cache_key, is_cacheable
from executors.core.context import default_checkpoint_prefix
from executors.core.errors import (
    CorruptDataError,
    DataStoreError,
    InterfaceMismatchError,
    LiteralConversionError,
    OutputsError,
)
from executors.core.resources import resources_from_mapping
from executors.data.literals import from_literal_map, to_literal_map
from executors.data.storage import RefusedDataError, is_local, local_path
from executors.data.task_template import (
    TaskTemplateSource,
    build_task_template,
    load_task_template,
    parse_template_bytes,
    template_from_dict,
    template_to_dict,
)
from executors.engine.registry import get_executor_class

if TYPE_CHECKING:
    from airflow.sdk import Context

T = TypeVar("T")

CACHE_STATUS_XCOM_KEY = "cache_status"
"""XCom key of the catalog outcome (flyteidl ``CatalogCacheStatus`` name, e.g. ``CACHE_HIT``)."""

RESERVED_XCOM_KEYS = frozenset({"return_value", RUN_URL_XCOM_KEY, CACHE_STATUS_XCOM_KEY})

STATE_KEY = "executors.execution"
"""Task state store key holding the execution this task instance last started (see README)."""


def _key_text(key: Any) -> str:
    if isinstance(key, dict):
        return str(CacheKey(**key))
    return str(key)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from synchronous operator code, even if a loop already runs here."""
    try:
        asyncio.get_running_loop()
        running = True
    except RuntimeError:
        running = False
    if not running:  # outside the except block: no "no running event loop" chained on errors
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _positive_seconds(name: str, value: dt.timedelta | float | None, task_id: str) -> float | None:
    """``None`` (the default) or a positive number of seconds: ``poll_interval=0`` would busy-poll a
    core and ``timeout=0`` would silently mean no timeout, so both are errors naming the option."""
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, dt.timedelta) else value
    number = isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
    if not number or not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(
            f"{task_id}: {name} must be a positive number of seconds (or None for the default), got {value!r}"
        )
    return float(seconds)


def _template_known_at_parse_time(source: Any) -> tasks_pb2.TaskTemplate | None:
    """The template when it can be had without I/O beyond a local file: an object, its JSON form, or
    a local ``.pb``/``.json`` path. ``None`` otherwise (a remote URL, a missing or bad file: those are
    read, and reported, when the task runs)."""
    try:
        if isinstance(source, tasks_pb2.TaskTemplate):
            return source
        if isinstance(source, TaskTemplateField):
            return template_from_dict(source.value)
        if isinstance(source, Mapping):
            return template_from_dict(source)
        if isinstance(source, (str, os.PathLike)) and is_local(os.fspath(source)):
            with open(local_path(os.fspath(source)), "rb") as fh:
                return parse_template_bytes(fh.read(1 << 24), where=os.fspath(source))
    except (OSError, ExecutorsError):
        return None
    return None


class ExecutorOperator(BaseOperator):
    """Run a typed task (a Flyte ``TaskTemplate``) on an executor and publish its outputs to XCom.

    :param executor_id: registry id of the task executor (``local``, ``ray``, ...). Not called
        ``executor``: that name is BaseOperator's own (which *Airflow* executor runs the worker part),
        and reusing it would break DAG parsing and mapping.
    :param task_template: a ``TaskTemplate``, its JSON form (dict), or the path/URL of a serialized
        one (``.pb`` binary or ``.json``). Not Jinja-rendered: its command uses Flyte's ``{{.input}}``
        placeholders, which Jinja would reject.
    :param command: instead of ``task_template``: the container command (a list of strings, Flyte
        placeholders allowed) ...
    :param input_types: ... with the Python types of its inputs (``{"x": int}``) ...
    :param output_types: ... and of its outputs (``{"y": list[float]}``); the command writes
        ``outputs.pb`` under ``{{.outputPrefix}}``.
    :param inputs: the task's inputs as Python values (Jinja-templated; XComArgs work). Checked
        against the interface before anything starts: a wrong value fails the task without retry,
        naming the variable.
    :param data_dir: fsspec URL under which the execution gets its folder; default from
        ``[provider_executors] data_dir``, else ``$AIRFLOW_HOME/executions``.
    :param poll_interval: seconds between status checks (default from config, 5).
    :param deferrable: wait in the triggerer (default from config, True) or in this worker.
    :param timeout: the execution is killed and the attempt fails (retryable) after this long.
    :param requests: resource requests, Flyte style: ``{"cpu": "2", "memory": "4Gi", "gpu": 1}``.
    :param limits: resource limits, same form. (Not ``resources``: BaseOperator owns that name.)
    :param environment: extra environment variables of the task (win over the template's).
    :param executor_options: keyword arguments of the executor, merged over ``[provider_executors]
        executor_config``. (Not ``executor_config``: BaseOperator owns that name.)
    :param config: free-form executor configuration for this execution (the seed's ConfigMap).
    :param namespace, labels, annotations, service_account: passed to the executor as they are.
    :param cache, cache_version, cache_serialize, cache_ignore_inputs: Flyte's caching, for a task
        built from ``command=`` (a ``task_template`` says it in its own ``metadata``). A cached
        task whose inputs did not change finishes from the catalog without starting anything;
        with ``cache_serialize``, identical executions that overlap wait (deferred) for the first.
    :param secrets: for a task built from ``command=``: ``(group, key)`` pairs resolved from Airflow
        connections/variables when the task starts and handed to it as ``_FSEC_<GROUP>_<KEY>``
        environment variables (see README, "Secrets"); never written anywhere.
    :param catalog_conn_id: an ``executor_catalog`` connection; default: the catalog folder from
        ``[provider_executors] catalog_url`` (beside the data dir).

    Outputs: each output variable is pushed as an XCom under its own name, and the whole dict is the
    return value, as plain JSON-safe Python values (blobs and structured datasets as URIs).
    """

    template_fields: Sequence[str] = (
        "inputs",
        "data_dir",
        "environment",
        "labels",
        "annotations",
        "task_template",
    )
    template_fields_renderers = {"inputs": "json", "task_template": "json", "environment": "json"}
    operator_extra_links = (ExecutorRunLink(),)
    ui_color = "#dbe9f6"

    def __init__(
        self,
        *,
        executor_id: str = "local",
        task_template: TaskTemplateSource | TaskTemplateField | None = None,
        command: Sequence[str] | None = None,
        input_types: Mapping[str, Any] | None = None,
        output_types: Mapping[str, Any] | None = None,
        inputs: Mapping[str, Any] | None = None,
        data_dir: str | None = None,
        poll_interval: float | None = None,
        deferrable: bool | None = None,
        timeout: dt.timedelta | float | None = None,
        requests: Mapping[str, Any] | None = None,
        limits: Mapping[str, Any] | None = None,
        environment: Mapping[str, str] | None = None,
        executor_options: Mapping[str, Any] | None = None,
        config: Mapping[str, str] | None = None,
        namespace: str = "default",
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        service_account: str = "",
        cache: bool = False,
        cache_version: str = "",
        cache_serialize: bool = False,
        cache_ignore_inputs: Sequence[str] = (),
        catalog_conn_id: str | None = None,
        secrets: Sequence[tuple[str, str] | Mapping[str, str]] = (),
        **kwargs: Any,
    ) -> None:
        if kwargs.get("executor") in known_executor_ids():
            raise TypeError(
                f"ExecutorOperator: executor={kwargs['executor']!r} names Airflow's own executor; "
                f"choose the task executor with executor_id={kwargs['executor']!r}"
            )
        # Airflow pushes each key of the returned dict as its own XCom. Pushing them ourselves would
        # be the same XComs, but only an operator with multiple_outputs makes a downstream
        # ``op.output["k"]`` read a None output as None instead of raising XComNotFound.
        kwargs.setdefault("multiple_outputs", True)
        flyte = _template_known_at_parse_time(task_template)
        if flyte is not None:
            # What the template's own metadata says, as on Flyte, unless the DAG says otherwise.
            defaults = kwargs.get("default_args") or {}
            if flyte.metadata.retries.retries and "retries" not in kwargs and "retries" not in defaults:
                kwargs["retries"] = flyte.metadata.retries.retries
            if timeout is None and flyte.metadata.HasField("timeout") and flyte.metadata.timeout.ToSeconds():
                timeout = flyte.metadata.timeout.ToTimedelta()
        super().__init__(**kwargs)
        if (task_template is None) == (command is None):
            raise ValueError(f"{self.task_id}: pass exactly one of task_template= or command=")
        if command is not None:
            task_template = build_task_template(
                list(command),
                name=f"{self.dag_id}.{self.task_id}" if self.has_dag() else self.task_id,  # type: ignore[no-untyped-call]
                inputs=input_types or {},
                outputs=output_types or {},
                cache=cache,
                cache_version=cache_version,
                cache_serializable=cache_serialize,
                cache_ignore_inputs=cache_ignore_inputs,
                secrets=secrets,
            )
        # Kept as JSON in an object Jinja leaves alone (see template_field.py), or as a path.
        if isinstance(task_template, tasks_pb2.TaskTemplate):
            task_template = template_to_dict(task_template)
        if isinstance(task_template, Mapping):
            task_template = TaskTemplateField(dict(task_template))
        self.task_template: Any = task_template
        self.executor_id = executor_id
        self.inputs = dict(inputs or {})
        self.data_dir = data_dir
        self.poll_interval = _positive_seconds("poll_interval", poll_interval, self.task_id)
        self.deferrable = deferrable
        self.timeout = _positive_seconds("timeout", timeout, self.task_id)
        self.requests = dict(requests or {})
        self.limits = dict(limits or {})
        self.environment = dict(environment or {})
        self.executor_options = dict(executor_options or {})
        self.config = dict(config or {})
        self.namespace = namespace
        self.labels = dict(labels or {})
        self.annotations = dict(annotations or {})
        self.service_account = service_account
        self.catalog_conn_id = catalog_conn_id
        self._running: tuple[Executor, TaskContext] | None = None

    # -- configuration -------------------------------------------------------------------------

    def _policy(self) -> PollPolicy:
        return PollPolicy(
            interval=self.poll_interval if self.poll_interval is not None else config.poll_interval(),
            unknown_limit=config.unknown_limit(),
            call_timeout=config.call_timeout(),
        )

    def _executor_config(self) -> dict[str, Any]:
        merged = config.executor_config(self.executor_id)
        merged.update(self.executor_options)
        return merged

    def _check_names(self, template: tasks_pb2.TaskTemplate) -> None:
        """Environment values must be strings; outputs must not take the XComs we push ourselves."""
        bad_env = [k for k, v in self.environment.items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad_env:
            names = ", ".join(map(repr, bad_env))
            raise TypeError(f"environment variable(s) {names} must map strings to strings")
        clashes = RESERVED_XCOM_KEYS & set(template.interface.outputs.variables)
        if clashes:
            reserved = ", ".join(sorted(RESERVED_XCOM_KEYS))
            raise ValueError(
                f"output(s) {', '.join(sorted(clashes))} would overwrite the XCom of the same name that "
                f"this operator pushes; rename them (reserved: {reserved})"
            )

    def _catalog_spec(self) -> dict[str, Any]:
        return {"conn_id": self.catalog_conn_id} if self.catalog_conn_id else {"root": config.catalog_url()}

    def _is_deferrable(self) -> bool:
        return config.default_deferrable() if self.deferrable is None else bool(self.deferrable)

    # -- execute -------------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        return run_sync(executor_pool.closing(self._execute(context)))

    async def _execute(self, context: Context) -> Any:
        ti = context["ti"]
        ti.xcom_push(key=RUN_URL_XCOM_KEY, value="")  # the link reads it even if we fail early
        store = DataStore()
        try:
            get_executor_class(self.executor_id)
            source = self.task_template
            template = await load_task_template(
                source.value if isinstance(source, TaskTemplateField) else source, store
            )
            inputs = to_literal_map(self.inputs, template.interface.inputs, kind="input")
            if is_cacheable(template):
                cache_key(template, inputs)  # a discoverable task without a version: say so now
            overrides = TaskOverrides(
                resources=resources_from_mapping(
                    {"requests": self.requests, "limits": self.limits}, where=self.task_id
                ),
                config=self.config,
                environment=self.environment,
            )
            executor_config, policy = self._executor_config(), self._policy()
            self._check_names(template)
            secrets = await resolve_secrets(template)  # one found nowhere: say so before starting
        except DataStoreError as exc:  # the store is down (a missing file is a TaskTemplateError)
            raise AirflowException(f"{self.task_id}: data store unavailable: {exc}") from exc
        except (ExecutorsError, ValueError, TypeError, MissingSecretError) as exc:
            # Bad input: retrying cannot fix it.
            raise AirflowFailException(f"{self.task_id}: {exc}") from exc

        map_index = getattr(ti, "map_index", -1)
        map_index = -1 if map_index is None else map_index
        ident = task_execution_identifier(
            template, dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id, map_index=map_index,
            try_number=ti.try_number,
        )  # fmt: skip
        data_dir = self.data_dir or config.data_dir()
        folder = execution_folder(
            data_dir, dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, map_index=map_index,
            try_number=ti.try_number,
        )  # fmt: skip
        prev_checkpoint = await self._previous_checkpoint(store, data_dir, ti, map_index)
        ctx = TaskContext(
            task_execution_id=TaskExecutionID.create(ident),
            data_dir=folder,
            namespace=self.namespace,
            owner_id=f"{ti.dag_id}/{ti.run_id}/{node_id(ti.task_id, map_index)}",
            owner_reference=OwnerReference(
                kind="TaskInstance", name=f"{ti.dag_id}.{node_id(ti.task_id, map_index)}"
            ),
            overrides=overrides,
            labels=self.labels,
            annotations=self.annotations,
            service_account=self.service_account,
            prev_checkpoint_prefix=prev_checkpoint,
        )
        handle = ExecutionHandle(
            executor_id=self.executor_id,
            executor_config=executor_config,
            driver={"task_ctx": ctx.to_dict(), "accepted": False, "streak": 0},
            policy=policy.to_dict(),
            deadline=(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.timeout)).isoformat()
            if self.timeout
            else None,
            catalog=self._catalog_spec() if is_cacheable(template) else None,
        )
        executor = await self._executor(handle, store)

        adopted = await self._adopt_previous(context, executor, store, ctx)
        if adopted is not None:
            handle = adopted
            template = await read_template(handle.task_ctx, store)
            self.log.info("re-attached to %s, started by an earlier try", handle.task_ctx.generated_name)
        else:
            try:
                await store.write_protobuf(ctx.task_template_file, template)
                await store.write_protobuf(ctx.inputs_file, inputs)
            except DataStoreError as exc:
                raise AirflowException(f"data store unavailable at start: {exc}") from exc
            self._remember(context, handle)

        driver = open_driver(
            handle, executor, template, store, phase_logger(self.log, self.executor_id), secrets=secrets
        )
        self._push_run_url(context, executor, driver.ctx)
        status = await driver.step()
        handle = handle.with_driver(driver)
        if not status.phase.is_final_for_execution():
            if self._is_deferrable():
                self._defer(context, handle)
            self._running = (executor, driver.ctx)
            try:
                status = await self._wait_in_worker(driver, handle)
            finally:
                self._running = None
            handle = handle.with_driver(driver)
        return await self._finish(context, executor, template, handle, status, store)

    @staticmethod
    async def _previous_checkpoint(store: DataStore, data_dir: str, ti: Any, map_index: int) -> str:
        """Flyte's ``{{.prevCheckpointPrefix}}``: the checkpoint folder of the previous try, so a
        retried task (flytekit's ``current_context().checkpoint``) resumes where it left off; ``""``
        on the first try or when the previous try left no checkpoint folder."""
        if ti.try_number <= 1:
            return ""
        previous = execution_folder(
            data_dir, dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, map_index=map_index,
            try_number=ti.try_number - 1,
        )  # fmt: skip
        checkpoint = default_checkpoint_prefix(previous)
        try:
            present = await store.exists(checkpoint)
        except DataStoreError:
            present = False  # a checkpoint is an optimisation: never fail a try over it
        return checkpoint if present else ""

    async def _wait_in_worker(self, driver: ExecutionDriver, handle: ExecutionHandle) -> TaskStatus:
        deadline = handle.deadline_at
        if deadline is None:
            return await driver.run()
        remaining = (deadline - dt.datetime.now(dt.UTC)).total_seconds()
        try:
            return await asyncio.wait_for(driver.run(), timeout=max(0.0, remaining))
        except TimeoutError:
            when = deadline.isoformat()
            name = driver.ctx.generated_name
            try:
                await driver.executor.kill_task(driver.ctx, f"timeout: still running at {when}")
            except Exception as exc:
                self.log.error("could not kill %s after its timeout: %s", name, exc)
            raise AirflowException(
                f"{self.executor_id} execution {name} did not finish before {when}"
            ) from None

    def _defer(self, context: Context, handle: ExecutionHandle) -> None:
        # From here on the trigger owns the execution: a later try must not adopt it (see
        # _adopt_previous), it was cleared or retried on purpose, not lost with a worker.
        self._remember(context, handle, deferred=True)
        timeout = None
        if handle.deadline_at is not None:
            # A backstop only: the trigger enforces the deadline itself (and kills the execution).
            timeout = handle.deadline_at - dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
        self.defer(
            trigger=ExecutorTrigger(handle=handle.to_dict()),
            method_name="execute_complete",
            timeout=timeout,
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None, **_: Any) -> Any:
        """Resume after the trigger: the event carries the final status and the execution handle."""
        if not isinstance(event, dict) or "status" not in event:
            raise AirflowException(
                f"{self.task_id}: the trigger ended without a status event: {event!r:.200}"
            )
        return run_sync(executor_pool.closing(self._complete(context, event)))

    async def _complete(self, context: Context, event: dict[str, Any]) -> Any:
        store = DataStore()
        handle = ExecutionHandle.from_dict(event["handle"])
        status = TaskStatus.from_dict(event["status"])
        executor = await self._executor(handle, store)
        template = await read_template(handle.task_ctx, store)
        return await self._finish(context, executor, template, handle, status, store)

    async def _executor(self, handle: ExecutionHandle, store: DataStore) -> Executor:
        """The initialized executor; wrong options fail without retry, anything else retries,
        and either way the message says which executor and why."""
        try:
            return await executor_for(handle, store)
        except (TypeError, ValueError) as exc:
            raise AirflowFailException(
                f"{self.task_id}: executor {handle.executor_id!r} options: {exc}"
            ) from exc
        except Exception as exc:
            raise AirflowException(
                f"{self.task_id}: executor {handle.executor_id!r} could not be initialized: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    async def _finish(
        self,
        context: Context,
        executor: Executor,
        template: tasks_pb2.TaskTemplate,
        handle: ExecutionHandle,
        status: TaskStatus,
        store: DataStore,
    ) -> Any:
        ctx = handle.task_ctx
        cache = ctx.custom_state.get("catalog") if handle.catalog else None
        if isinstance(cache, dict) and cache.get("status"):
            self.log.info("cache: %s (key %s)", cache["status"], _key_text(cache.get("key")))
            if cache.get("error"):
                self.log.warning("catalog trouble (the task is not affected): %s", cache["error"])
            context["ti"].xcom_push(key=CACHE_STATUS_XCOM_KEY, value=cache["status"])
        try:
            logs = await executor.read_logs(ctx)
        except Exception as exc:  # logs are a courtesy: never fail a task over them
            self.log.warning("could not read the output of %s: %s", ctx.generated_name, exc)
            logs = None
        if logs:
            self.log.info("output of %s:\n%s", ctx.generated_name, logs)
        if status.phase is TaskPhase.SUCCEEDED:
            return await self._publish_outputs(context, executor, template, ctx)
        message = failure_message(executor.get_id(), ctx, status)
        if status.phase is TaskPhase.PERMANENT_FAILURE:
            raise AirflowFailException(message)
        raise AirflowException(message)

    async def _publish_outputs(
        self, context: Context, executor: Executor, template: tasks_pb2.TaskTemplate, ctx: TaskContext
    ) -> Any:
        declared = template.interface.outputs.variables
        if not declared:
            self.log.info("%s declares no outputs", ctx.generated_name)
            return self._return_value({})
        try:
            literals = await executor.resolve_outputs(ctx, *declared)
            values = from_literal_map(literals_pb2.LiteralMap(literals=literals), template.interface.outputs)
        except RefusedDataError as exc:
            # A FIFO, a device, a symlink out of the folder, a file over its cap: what the task wrote
            # is refused as it is, and every retry would adopt the same execution.
            raise AirflowFailException(
                f"{self.executor_id} execution {ctx.generated_name} succeeded but its outputs file was "
                f"refused: {exc}"
            ) from exc
        except (OutputsError, CorruptDataError, LiteralConversionError, InterfaceMismatchError) as exc:
            # The task wrote outputs that do not match its interface: every retry would adopt the
            # same execution and fail the same way.
            raise AirflowFailException(
                f"{self.executor_id} execution {ctx.generated_name} succeeded but its outputs do not match "
                f"its interface: {exc}"
            ) from exc
        except Exception as exc:
            # Retryable (the store, the backend): the outputs are still in the execution's folder and
            # the next try adopts the succeeded execution and publishes them without running it again.
            raise AirflowException(
                f"{self.executor_id} execution {ctx.generated_name} succeeded but its outputs could not be "
                f"read: {exc}"
            ) from exc
        # Airflow pushes one XCom per output from the return value (multiple_outputs, see __init__).
        self.log.info("outputs of %s: %s", ctx.generated_name, json.dumps(values, default=str)[:2000])
        return self._return_value(values)

    def _return_value(self, values: dict[str, Any]) -> Any:
        """The task's return value (XCom ``return_value``): every output, as a dict; with
        ``multiple_outputs`` Airflow also pushes each output under its own name."""
        return values

    # -- exactly one execution per try, even across worker crashes -----------------------------

    @staticmethod
    def _state_store(context: Context) -> Any:
        try:
            return context["task_state_store"]
        except KeyError:
            return None

    def _remember(self, context: Context, handle: ExecutionHandle, *, deferred: bool = False) -> None:
        """Record the execution *before* starting it, so a crash right after start leaves a trace;
        and again when deferring, marked ``deferred``."""
        state_store = self._state_store(context)
        if state_store is not None:
            state_store.set(STATE_KEY, {**handle.to_dict(), "deferred": deferred})

    async def _adopt_previous(
        self, context: Context, executor: Executor, store: DataStore, ctx: TaskContext
    ) -> ExecutionHandle | None:
        """Deal with an execution an earlier try of this task instance started.

        Still running, or succeeded: adopt it (a worker lost mid-run must not throw away work or
        start a duplicate). Failed, killed, or unknown: make sure it is stopped, then start anew.
        """
        state_store = self._state_store(context)
        if state_store is None:
            return None
        record = state_store.get(STATE_KEY)
        if not isinstance(record, dict):
            return None
        record = dict(record)
        was_deferred = bool(record.pop("deferred", False))
        try:
            previous = ExecutionHandle.from_dict(record)
            previous_ctx = previous.task_ctx
        except Exception:  # written by another version of us: ignore
            return None
        if previous_ctx.generated_name == ctx.generated_name or previous.executor_id != executor.get_id():
            return None
        try:
            template = await read_template(previous_ctx, store)
            status = await executor.check_task_status(previous_ctx, template)
        except Exception as exc:
            self.log.warning(
                "cannot check the execution of an earlier try (%s): %s; stopping it",
                previous_ctx.generated_name,
                exc,
            )
            status = TaskStatus(TaskPhase.UNKNOWN)
        # A succeeded execution is always adopted (its outputs are published, nothing runs again).
        # A running one only if its try never deferred: then its worker was lost between start and
        # defer. Once deferred, its trigger owned it, so a new try means the user cleared the task
        # (or Airflow retried it on purpose): stop the old execution and start afresh.
        running = status.phase in (TaskPhase.RUNNING, TaskPhase.QUEUED)
        if status.phase is TaskPhase.SUCCEEDED or (running and not was_deferred):
            accepted = {"task_ctx": previous_ctx.to_dict(), "accepted": True, "streak": 0}
            return ExecutionHandle(
                executor_id=previous.executor_id,
                executor_config=previous.executor_config,
                driver=accepted,
                policy=self._policy().to_dict(),
                deadline=previous.deadline,
                catalog=previous.catalog,
            )
        if not status.phase.is_terminal():
            try:
                await executor.kill_task(previous_ctx, "superseded by a new try")
            except Exception as exc:
                self.log.warning("kill of an earlier try's execution failed: %s", exc)
        return None

    def _push_run_url(self, context: Context, executor: Executor, ctx: TaskContext) -> None:
        url = executor.get_run_url(ctx)
        if url:
            context["ti"].xcom_push(key=RUN_URL_XCOM_KEY, value=url)

    def on_kill(self) -> None:
        """Worker-side kill (``deferrable=False``): stop the execution this worker waits on."""
        running = self._running
        if running is None:
            return
        executor, ctx = running
        run_sync(executor.kill_task(ctx, "the Airflow task was killed"))
