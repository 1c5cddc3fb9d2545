"""ExecutorOperator: run a typed task on a pluggable executor, deferring while it runs.

The operator is Airflow glue over :mod:`executors.engine`: it checks its arguments
(:mod:`~airflow_provider.arguments`), submits one execution per try (adopting an earlier try's,
:mod:`~airflow_provider.adoption`), waits for it in the triggerer or the worker, and publishes the
outcome (:mod:`~airflow_provider.publishing`).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import datetime as dt
import threading
from collections.abc import Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException
from airflow.triggers.base import StartTriggerArgs
from flyteidl.core import tasks_pb2

from airflow_provider import adoption, arguments, config, ending, executor_pool, lineage, publishing, start
from airflow_provider.execution import ExecutionHandle, open_driver, open_executor, phase_logger
from airflow_provider.failures import plainly, try_failed
from airflow_provider.identity import Attempt
from airflow_provider.links import RUN_URL_XCOM_KEY, ExecutorRunLink
from airflow_provider.publishing import CACHE_STATUS_XCOM_KEY, RESERVED_XCOM_KEYS, ReturnShape
from airflow_provider.start import RENDERED_FIELDS, starting_in_worker
from airflow_provider.template_field import TaskTemplateField
from airflow_provider.triggers import ExecutorTrigger
from executors import (
    Cache,
    DataStore,
    Executor,
    PollPolicy,
    TaskContext,
    TaskStatus,
)
from executors.core.cache import refuse_legacy_cache_arguments
from executors.data.task_template import TaskTemplateSource, build_task_template
from executors.engine import submission
from executors.engine.driver import kill_execution
from executors.engine.registry import known_executor_ids

if TYPE_CHECKING:
    from airflow.sdk import Context

T = TypeVar("T")

__all__ = ["CACHE_STATUS_XCOM_KEY", "RESERVED_XCOM_KEYS", "ExecutorOperator", "run_sync"]


_runners = threading.local()


def _runner() -> asyncio.Runner:
    """This thread's event loop for :func:`run_sync`, kept between calls: a new loop per call (and
    the thread pool behind its ``to_thread`` calls, joined at each close) cost about as much as the
    operator's own work. Closed when the process exits."""
    runner: asyncio.Runner | None = getattr(_runners, "runner", None)
    if runner is None:
        runner = _runners.runner = asyncio.Runner()
        atexit.register(runner.close)
    return runner


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from synchronous operator code, even if a loop already runs here."""
    try:
        asyncio.get_running_loop()
        running = True
    except RuntimeError:
        running = False
    if not running:  # outside the except block: no "no running event loop" chained on errors
        return _runner().run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


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
    :param cache: Flyte's caching, for a task built from ``command=`` (a ``task_template`` says it
        in its own ``metadata``): ``Cache(version="1", serialize=..., ignored_inputs=(...))``. A
        cached task whose inputs did not change finishes from the catalog without starting
        anything; with ``serialize``, identical executions that overlap wait (deferred) for the first.
    :param secrets: for a task built from ``command=``: ``(group, key)`` pairs resolved from Airflow
        connections/variables when the task starts and handed to it as ``_FSEC_<GROUP>_<KEY>``
        environment variables (see docs/operator.md, "Secrets"); never written anywhere.
    :param catalog_conn_id: an ``executor-catalog`` connection; default: the catalog folder from
        ``[provider_executors] catalog_url`` (beside the data dir).
    :param start_from_trigger: start the try in the triggerer, no worker turn at the start
        (default from config, True). Only for a deferrable task whose arguments are known without a
        worker (no XComArg, not mapped, no ``on_execute_callback``, no native-object rendering);
        any other starts in a worker as before. See docs/operator.md, "Start and end in the
        triggerer".
    :param end_from_trigger: end the task in the triggerer, publishing its XComs from there, no
        worker turn at the end (default from config, True). A worker still ends it when a
        listener, a custom XCom backend or a downstream ``.expand()`` needs one, and for a
        permanent failure.

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
        cache: bool | Cache = False,
        catalog_conn_id: str | None = None,
        secrets: Sequence[tuple[str, str] | Mapping[str, str]] = (),
        start_from_trigger: bool | None = None,
        end_from_trigger: bool | None = None,
        **kwargs: Any,
    ) -> None:
        refuse_legacy_cache_arguments(type(self).__name__, list(kwargs))
        if kwargs.get("executor") in known_executor_ids():
            raise TypeError(
                f"ExecutorOperator: executor={kwargs['executor']!r} names Airflow's own executor; "
                f"choose the task executor with executor_id={kwargs['executor']!r}"
            )
        # Airflow pushes each key of the returned dict as its own XCom; only an operator with
        # multiple_outputs makes a downstream ``op.output["k"]`` read a None output as None.
        kwargs.setdefault("multiple_outputs", True)
        timeout = arguments.apply_template_metadata(kwargs, task_template, timeout)
        super().__init__(**kwargs)
        if (task_template is None) == (command is None):
            raise ValueError(f"{self.task_id}: pass exactly one of task_template= or command=")
        if command is not None:
            task_template = build_task_template(
                list(command),
                name=f"{self.dag_id}.{self.task_id}" if self.has_dag() else self.task_id,  # type: ignore[no-untyped-call]
                inputs=input_types or {},
                outputs=output_types or {},
                cache=Cache.of(cache),
                secrets=secrets,
            )
        self.task_template: Any = arguments.stored_template(task_template)
        self.executor_id = executor_id
        self.inputs = dict(inputs or {})
        self.data_dir = data_dir
        self.poll_interval = arguments.positive_seconds("poll_interval", poll_interval, self.task_id)
        self.deferrable = deferrable
        self.timeout = arguments.positive_seconds("timeout", timeout, self.task_id)
        self.requests, self.limits = dict(requests or {}), dict(limits or {})
        self.environment = dict(environment or {})
        self.executor_options = dict(executor_options or {})
        self.config = dict(config or {})
        self.namespace, self.service_account = namespace, service_account
        self.labels, self.annotations = dict(labels or {}), dict(annotations or {})
        self.catalog_conn_id = catalog_conn_id
        # Not ``self.end_from_trigger``: Airflow's DagBag refuses a task whose ``end_from_trigger``
        # is true while any listener is installed (ours always is), and we fall back to a worker
        # by ourselves whenever a listener needs one (see airflow_provider/ending.py).
        self._end_requested = end_from_trigger
        self._start_requested = start_from_trigger
        self._running: tuple[Executor, TaskContext] | None = None
        self._configure_start()

    def _spec(self) -> start.StartSpec:
        """This try's arguments (templated fields as rendered) in the form both starts take."""
        return start.StartSpec(
            task_id=self.task_id,
            executor_id=self.executor_id,
            task_template=self.task_template,
            inputs=self._inputs(),
            data_dir=self.data_dir,
            poll_interval=self.poll_interval,
            timeout=self._time_limit(),
            requests=self.requests,
            limits=self.limits,
            environment=self.environment,
            executor_options=self.executor_options,
            config=self.config,
            namespace=self.namespace,
            labels=self.labels,
            annotations=self.annotations,
            service_account=self.service_account,
            catalog_conn_id=self.catalog_conn_id,
        )

    def _inputs(self) -> dict[str, Any]:
        """The task's input values (``@task.executor`` binds its function's arguments)."""
        return self.inputs

    def _policy(self) -> PollPolicy:
        return self._spec().policy()

    def _time_limit(self) -> float | None:
        """Seconds a try may take: ``timeout`` or Airflow's ``execution_timeout``, the shorter.

        Airflow itself applies ``execution_timeout`` only while a worker runs ``execute()``, never
        across a deferral; here it holds wherever the task waits, from the try's start, and ends
        the try as Airflow's own does (the execution is killed, the try fails and is retried).
        """
        limits = [self.timeout]
        if isinstance(self.execution_timeout, dt.timedelta):
            limits.append(self.execution_timeout.total_seconds())
        known = [limit for limit in limits if limit is not None and limit > 0]
        return min(known) if known else None

    # -- start in the triggerer ---------------------------------------------------------------

    def _configure_start(self) -> None:
        """Airflow's ``start_from_trigger`` when this task qualifies (decided at parse time: the
        scheduler reads it from the serialized DAG); ``_start_in_worker`` says why not."""
        self._start_in_worker = starting_in_worker(self)
        self.start_from_trigger = self._start_in_worker is None
        if self._start_in_worker is not None:
            self.start_trigger_args = None
            return
        # A backstop only: the trigger enforces ``timeout`` itself (and kills the execution).
        backstop = dt.timedelta(seconds=self.timeout) + dt.timedelta(minutes=5) if self.timeout else None
        self.start_trigger_args = StartTriggerArgs(
            trigger_cls="airflow_provider.triggers.ExecutorTrigger",
            trigger_kwargs=self._start_trigger_kwargs(),
            next_method="execute_complete",
            next_kwargs=None,
            timeout=backstop,
        )

    def _start_trigger_kwargs(self) -> dict[str, Any]:
        """The kwargs of a trigger that starts this task: the templated fields under their own
        names (a triggerer renders those), everything else under ``start``."""
        spec = self._spec().to_dict()
        rendered = {name: spec.pop(name) for name in RENDERED_FIELDS if name != "task_template"}
        template = spec.pop("task_template")
        if isinstance(template, str):
            rendered["task_template"] = template  # a path/URL: Jinja may render it, as in a worker
        else:
            spec["template"] = template  # JSON: kept away from Jinja ({{.input}} is Flyte's)
        return {
            "start": spec,
            **rendered,
            "end_from_trigger": self._ends_in_triggerer(),
            "returns": self._returns().to_dict(),
        }

    def _ends_in_triggerer(self, *, check_dependants: bool = False) -> bool:
        """Whether the trigger may end the task (it still checks what only the triggerer knows).
        Downstream tasks are known when the task runs, not while its own DAG line is parsed."""
        requested = self._end_requested
        wanted = config.end_from_trigger() if requested is None else bool(requested)
        if wanted and check_dependants and ending.mapped_dependants(self):
            return False  # the worker records the length a downstream .expand() maps over
        return wanted

    def execute(self, context: Context) -> Any:
        return plainly(lambda: run_sync(executor_pool.closing(self._execute(context))))

    async def _execute(self, context: Context) -> Any:
        context["ti"].xcom_push(key=RUN_URL_XCOM_KEY, value="")  # the link reads it even if we fail early
        store = DataStore()
        spec = self._spec()
        if self._start_in_worker is not None and self._start_requested is not False:
            self.log.info("starting in the worker: %s", self._start_in_worker)
        prepared = await start.prepare(spec, store)
        template = prepared.template
        ti = context["ti"]
        started_at = getattr(ti, "start_date", None)
        handle = await start.new_handle(spec, Attempt.of(ti), store, prepared, started_at=started_at)
        executor = await open_executor(handle, store, self.task_id)
        adopted = await adoption.adopt_previous(
            context, executor, store, handle.task_ctx, handle.policy, self.log
        )
        if adopted is not None:
            handle = adopted
            template = await submission.read_template(store, handle.task_ctx)
            self.log.info("re-attached to %s, started by an earlier try", handle.task_ctx.generated_name)
        else:
            await start.submit(store, prepared, handle)
            self.log.info("submitted: %s", start.start_line(prepared, handle))
            adoption.remember(context, handle)
        on_change = phase_logger(self.log, self.executor_id)
        driver = open_driver(
            handle,
            executor,
            template,
            store,
            on_change,
            secrets=prepared.secrets,
            log=self.log,
            try_number=ti.try_number,
        )
        status = await driver.step()
        publishing.push_run_url(context, executor, driver.ctx)  # after the start: a cache hit has none
        if not status.phase.is_final_for_execution():
            if self._is_deferrable():
                self._defer(context, handle.with_driver(driver))
            self._running = (executor, driver.ctx)
            try:
                status = await driver.run(deadline=handle.deadline_at, log=self.log)
            finally:
                self._running = None
        return await self._finish(context, executor, template, handle.with_driver(driver), status)

    def _is_deferrable(self) -> bool:
        return config.default_deferrable() if self.deferrable is None else bool(self.deferrable)

    def _defer(self, context: Context, handle: ExecutionHandle) -> None:
        # From here on the trigger owns the execution: a later try must not adopt it (see
        # adoption.adopt_previous), it was cleared or retried on purpose, not lost with a worker.
        adoption.remember(context, handle, deferred=True)
        timeout = None
        if handle.deadline_at is not None:
            # A backstop only: the trigger enforces the deadline itself (and kills the execution).
            timeout = handle.deadline_at - dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
        trigger = ExecutorTrigger(
            handle=handle.to_dict(),
            end_from_trigger=self._ends_in_triggerer(check_dependants=True),
            returns=self._returns().to_dict(),
        )
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            timeout=timeout,
        )

    def _redefer_after_a_stray_event(self, context: Context, owner: Attempt) -> None:
        """The event is another task's: on SQLite Airflow reuses the id of a deleted trigger row,
        and a trigger still running under that id fires into whichever task now waits on it. Wait
        again, on a trigger of our own (the same try: it re-attaches, never starts twice)."""
        self.log.warning(
            "ignoring an event meant for %s/%s try %d (a reused trigger id); waiting again",
            owner.run_id, owner.node, owner.try_number,
        )  # fmt: skip
        found = adoption.recorded(context)
        if found is not None:
            handle, _ = found
            if Attempt.of(context["ti"]).owns(handle.task_ctx):
                self._defer(context, handle)
        if self.start_from_trigger:
            kwargs = {
                **self._start_trigger_kwargs(),
                "end_from_trigger": self._ends_in_triggerer(check_dependants=True),
            }
            self.defer(trigger=ExecutorTrigger(**kwargs), method_name="execute_complete")
        raise AirflowException(f"{self.task_id}: got another task's event and cannot wait again; retrying")

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None, **_: Any) -> Any:
        """Resume after the trigger: the event carries the final status and the execution handle."""
        if not isinstance(event, dict) or "status" not in event:
            raise AirflowException(
                f"{self.task_id}: the trigger ended without a status event: {event!r:.200}"
            )
        return plainly(lambda: run_sync(executor_pool.closing(self._complete(context, event))))

    async def _complete(self, context: Context, event: dict[str, Any]) -> Any:
        owner = event.get("owner")
        if isinstance(owner, dict) and Attempt(**owner) != Attempt.of(context["ti"]):
            self._redefer_after_a_stray_event(context, Attempt(**owner))
        status = TaskStatus.from_dict(event["status"])
        concluded = event.get("conclusion")
        if isinstance(concluded, dict):  # the trigger read the outcome already: only publish it
            for key, value in (concluded.get("xcoms") or {}).items():
                context["ti"].xcom_push(key=key, value=value)
            failure = str(concluded.get("failure") or status)
            raise try_failed(failure, permanent=bool(concluded.get("permanent")))
        if event.get("handle") is None:  # refused in the triggerer before anything started
            message = f"{self.task_id}: {status.err.message if status.err else status.phase.name}"
            raise try_failed(message, permanent=status.phase.is_permanent_failure())
        store = DataStore()
        handle = ExecutionHandle.from_dict(event["handle"])
        executor = await open_executor(handle, store, self.task_id)
        template = await submission.read_template(store, handle.task_ctx)
        return await self._finish(context, executor, template, handle, status)

    async def _finish(
        self,
        context: Context,
        executor: Executor,
        template: tasks_pb2.TaskTemplate,
        handle: ExecutionHandle,
        status: TaskStatus,
    ) -> Any:
        values = await publishing.finish(context, executor, template, handle.task_ctx, status, self.log)
        if lineage.enabled():  # read back only for OpenLineage's listener, which asks next
            try:
                ctx = handle.task_ctx
                self._lineage = await lineage.collect(executor, DataStore(), template, ctx, values)
            except Exception as exc:  # lineage is a report: it never fails the task
                self.log.warning("no OpenLineage data for this try: %s", exc)
        return self._return_value(values)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage's hook (its listener calls it when the task succeeded): the files,
        directories and datasets the try read and wrote, and an ``executors`` run facet with the
        scalar outputs and the cache outcome (:mod:`airflow_provider.lineage`)."""
        found = getattr(self, "_lineage", None)
        return found.operator_lineage() if found is not None else None

    def _return_value(self, values: dict[str, Any]) -> Any:
        return self._returns().value(values)

    def _returns(self) -> ReturnShape:
        """The task's return value (XCom ``return_value``): every output, as a dict; with
        ``multiple_outputs`` Airflow also pushes each output under its own name."""
        return ReturnShape(multiple_outputs=bool(self.multiple_outputs))

    def on_kill(self) -> None:
        """Worker-side kill (``deferrable=False``): stop the execution this worker waits on."""
        running = self._running
        if running is not None:
            executor, ctx = running
            run_sync(
                kill_execution(executor, ctx, "the Airflow task was killed", self._policy(), log=self.log)
            )
