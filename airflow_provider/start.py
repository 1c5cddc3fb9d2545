"""What a try needs to start an execution, and the one way of preparing it.

The operator starts a try in a worker; with ``start_from_trigger`` the trigger starts it in the
triggerer. Both hold a :class:`StartSpec` (the operator's arguments after Jinja, JSON-safe), call
:func:`prepare` (everything checked before anything starts: bad input fails without retry, naming
it) and :func:`new_handle` (who the try is and where its execution lives), then submit through
:func:`executors.engine.submission.submit`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shlex
from collections.abc import Mapping
from typing import Any

from airflow.sdk.exceptions import AirflowException
from flyteidl.core import literals_pb2, tasks_pb2

from airflow_provider import arguments, config, publishing
from airflow_provider.execution import ExecutionHandle
from airflow_provider.failures import TaskFailedForGood
from airflow_provider.identity import Attempt
from airflow_provider.secrets import MissingSecretError, resolve_secrets
from airflow_provider.template_field import TaskTemplateField
from executors import DataStore, ExecutorsError, PollPolicy, TaskContext, TaskExecutionID, TaskOverrides
from executors.catalog import is_cacheable
from executors.core.errors import DataStoreError
from executors.core.resources import resources_from_mapping
from executors.data.task_template import load_task_template
from executors.engine import submission
from executors.engine.driver import DriverSnapshot
from executors.engine.registry import get_executor_class


@dataclasses.dataclass(frozen=True)
class StartSpec:
    """The operator's arguments as a try starts with them (templated fields already rendered).

    ``task_template`` is the template's JSON form (a dict) or its path/URL; everything is JSON-safe,
    so a spec travels in ``StartTriggerArgs.trigger_kwargs``.
    """

    task_id: str
    executor_id: str
    task_template: Any
    inputs: Mapping[str, Any]
    data_dir: str | None = None
    poll_interval: float | None = None
    timeout: float | None = None
    requests: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    limits: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    environment: Mapping[str, str] = dataclasses.field(default_factory=dict)
    executor_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    config: Mapping[str, str] = dataclasses.field(default_factory=dict)
    namespace: str = "default"
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)
    service_account: str = ""
    catalog_conn_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if isinstance(self.task_template, TaskTemplateField):
            data["task_template"] = self.task_template.value
        return {k: dict(v) if isinstance(v, Mapping) else v for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StartSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def policy(self) -> PollPolicy:
        return PollPolicy(
            interval=self.poll_interval if self.poll_interval is not None else config.poll_interval(),
            output_interval=config.output_interval(),
            unknown_limit=config.unknown_limit(),
            call_timeout=config.call_timeout(),
        )

    async def load_template(self, store: DataStore) -> tasks_pb2.TaskTemplate:
        """The template, from its JSON form or its path/URL (raises ``TaskTemplateError``)."""
        source = self.task_template
        value = source.value if isinstance(source, TaskTemplateField) else source
        return await load_task_template(value, store)

    def executor_config(self) -> dict[str, Any]:
        return {**config.executor_config(self.executor_id), **self.executor_options}


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A try's checked arguments: what :func:`prepare` hands to the rest of the start."""

    template: tasks_pb2.TaskTemplate
    inputs: literals_pb2.LiteralMap
    overrides: TaskOverrides
    secrets: dict[str, str]
    executor_config: dict[str, Any]
    policy: PollPolicy


async def prepare(spec: StartSpec, store: DataStore) -> Prepared:
    """Everything checked before anything starts.

    Raises ``AirflowFailException`` (no retry) for bad input, naming it, and ``AirflowException``
    (retryable) when the data store is down.
    """
    try:
        get_executor_class(spec.executor_id)
        template = await spec.load_template(store)
        inputs = submission.typed_inputs(template, spec.inputs)
        await submission.check_input_data(store, inputs)  # a file or dataset input that is not there
        limits = {"requests": dict(spec.requests), "limits": dict(spec.limits)}
        overrides = TaskOverrides(
            resources=resources_from_mapping(limits, where=spec.task_id),
            config=dict(spec.config),
            environment=dict(spec.environment),
        )
        arguments.check_environment(spec.environment)
        publishing.check_output_names(template)
        executor_config, policy = spec.executor_config(), spec.policy()
        secrets = await resolve_secrets(template)  # one found nowhere: say so before starting
    except DataStoreError as exc:  # the store is down (a missing file is a TaskTemplateError)
        raise AirflowException(f"{spec.task_id}: data store unavailable: {exc}") from exc
    except (ExecutorsError, ValueError, TypeError, MissingSecretError) as exc:
        raise TaskFailedForGood(f"{spec.task_id}: {exc}") from exc
    return Prepared(template, inputs, overrides, secrets, executor_config, policy)


async def new_handle(
    spec: StartSpec,
    attempt: Attempt,
    store: DataStore,
    prepared: Prepared,
    *,
    started_at: dt.datetime | None = None,
) -> ExecutionHandle:
    """The handle of this try's execution (nothing is written or started).

    ``started_at``: when Airflow started the try (its task instance's ``start_date``); the time
    limit counts from there, so a trigger that starts the task again after a triggerer restart
    keeps the try's deadline. Unknown: from now.
    """
    template = prepared.template
    data_dir = spec.data_dir or config.data_dir()
    ctx = TaskContext(
        task_execution_id=TaskExecutionID.create(attempt.identifier(template)),
        data_dir=attempt.folder(data_dir),
        namespace=spec.namespace,
        owner_id=attempt.owner_id,
        owner_reference=attempt.owner_reference(),
        overrides=prepared.overrides,
        labels=dict(spec.labels),
        annotations=dict(spec.annotations),
        service_account=spec.service_account,
        prev_checkpoint_prefix=await attempt.previous_checkpoint(store, data_dir),
    )
    catalog = {"conn_id": spec.catalog_conn_id} if spec.catalog_conn_id else {"root": config.catalog_url()}
    deadline = _since(started_at) + dt.timedelta(seconds=spec.timeout) if spec.timeout else None
    return ExecutionHandle(
        executor_id=spec.executor_id,
        executor_config=prepared.executor_config,
        driver=DriverSnapshot(ctx),
        policy=prepared.policy,
        deadline=deadline.isoformat() if deadline else None,
        catalog=catalog if is_cacheable(template) else None,
    )


def _since(started_at: dt.datetime | None) -> dt.datetime:
    now = dt.datetime.now(dt.UTC)
    if not isinstance(started_at, dt.datetime):
        return now
    if started_at.tzinfo is None:  # Airflow's dates are UTC
        started_at = started_at.replace(tzinfo=dt.UTC)
    return min(started_at, now)


async def submit(store: DataStore, prepared: Prepared, handle: ExecutionHandle) -> None:
    """Write the execution's ``task.pb`` and ``inputs.pb`` (idempotent); a store that is down is a
    retryable ``AirflowException``."""
    try:
        await submission.submit(store, prepared.template, prepared.inputs, handle.task_ctx)
    except DataStoreError as exc:
        raise AirflowException(f"data store unavailable at start: {exc}") from exc


START_LINE_COMMAND_CHARS = 500


def start_line(prepared: Prepared, handle: ExecutionHandle) -> str:
    """The task-log line of a submitted try: executor, execution name, folder and command (its
    Flyte placeholders unrendered: the executor renders them)."""
    ctx, template = handle.task_ctx, prepared.template
    if template.HasField("container"):
        container = template.container
        command = shlex.join([*container.command, *container.args]) or "(no command)"
    else:
        command = f"(a {template.type or 'untyped'} task without a container)"
    if len(command) > START_LINE_COMMAND_CHARS:
        command = command[:START_LINE_COMMAND_CHARS] + " ..."
    return f"{handle.executor_id} execution {ctx.generated_name} in {ctx.data_dir}: {command}"


def starting_in_worker(op: Any) -> str | None:
    """Why the operator ``op`` must start its tries in a worker, or ``None`` when the triggerer can
    (``start_from_trigger``). Decided at DAG parse time, from what the DAG file says."""
    from airflow.sdk.definitions.xcom_arg import XComArg

    requested = getattr(op, "_start_requested", None)
    if requested is False or (requested is None and not config.start_from_trigger()):
        return "start_from_trigger is off"
    deferrable = op.deferrable if op.deferrable is not None else config.default_deferrable()
    if not deferrable:
        return "deferrable=False"
    values = [op._inputs(), op.task_template, op.data_dir, op.environment, op.labels, op.annotations]
    if any(_contains(value, XComArg) for value in values):
        return "an argument comes from an upstream task (XComArg), known only when the task runs"
    if op.has_dag() and getattr(op.dag, "render_template_as_native_obj", False):
        return "the DAG renders templates as native objects, which the triggerer does not"
    if op.on_execute_callback:
        return "an on_execute_callback runs in a worker"
    return None


def _contains(value: Any, kind: type) -> bool:
    if isinstance(value, kind):
        return True
    if isinstance(value, Mapping):
        return any(_contains(k, kind) or _contains(v, kind) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_contains(v, kind) for v in value)
    return False


RENDERED_FIELDS = ("inputs", "data_dir", "environment", "labels", "annotations", "task_template")
"""The operator's templated fields that a trigger starting its task takes as kwargs of the same
names: the triggerer renders exactly those (see ``BaseTrigger.task_instance``) before ``run()``."""


def spec_of_trigger(start: Mapping[str, Any], rendered: Mapping[str, Any]) -> StartSpec:
    """The :class:`StartSpec` in a starting trigger's kwargs: ``start`` (the fixed arguments, the
    template's JSON under ``template``) and the templated fields, as rendered (or not yet)."""
    fields = {name: rendered.get(name) for name in RENDERED_FIELDS}
    if fields["task_template"] is None:
        fields["task_template"] = start.get("template")
    fields["inputs"] = fields["inputs"] or {}
    return StartSpec.from_dict({**start, **{k: v for k, v in fields.items() if v is not None}})


def _has_jinja(value: str | None) -> bool:
    """Whether a templated string field (``data_dir``, a template path) is still unrendered."""
    return value is not None and ("{{" in value or "{%" in value)


async def handle_of_trigger_start(
    start: Mapping[str, Any], rendered: Mapping[str, Any], attempt: Attempt, store: DataStore
) -> ExecutionHandle | None:
    """The handle a starting trigger gives this try's execution, for a process that must stop it
    without running the trigger (the listener, while no triggerer runs). ``None`` when a field
    that places the execution (``data_dir``, ``task_template``) still holds Jinja: only the
    triggerer renders it."""
    if _has_jinja(rendered.get("data_dir")) or _has_jinja(rendered.get("task_template")):
        return None
    spec = spec_of_trigger(start, {**rendered, "inputs": {}})
    template = await spec.load_template(store)
    identity_only = Prepared(
        template, literals_pb2.LiteralMap(), TaskOverrides(), {}, spec.executor_config(), spec.policy()
    )
    return await new_handle(spec, attempt, store, identity_only)
