"""A Flyte workflow, serialized by flytekit, as an Airflow DAG: :func:`flyte_workflow_dag`.

Each node of the workflow becomes Airflow tasks, and each binding an argument:

* a **task node** -> an :class:`~airflow_provider.operators.ExecutorOperator` running the node's
  ``TaskTemplate`` unchanged, on the executor the DAG author picks (for all nodes or per node);
  its retries and timeout from the node's metadata (else the template's), caching from the
  template's own metadata (our catalog);
* a **sub-workflow** -> a ``TaskGroup`` holding its nodes, inlined;
* a **map task** (``ArrayNode``) -> one mapped ``ExecutorOperator`` instance per element, each
  running flytekit's own array task with the whole lists and its index (as Flyte runs an array
  node), then a task collecting the elements' outputs in order;
* a **binding** -> the value it holds: a literal constant as its Python value, a promise as the
  upstream task's XCom (``op.output[var]``), a collection or map of them as a list or dict;
* the workflow's **inputs** -> DAG params (their JSON types, the launch plan's defaults), which the
  ``workflow_inputs`` task hands on as XComs; its **outputs** -> the ``workflow_outputs`` task,
  whose return value is their dict.

A construct without a faithful mapping (a branch, a gate, a launch plan node, a map task that
tolerates failures, attribute access on a promise) fails when the DAG is built, naming the node.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flyteidl.core import literals_pb2, tasks_pb2, types_pb2
from flyteidl.core import workflow_pb2 as core_workflow_pb2

from executors.core.errors import TaskTemplateError
from executors.data.flyte_workflows import WorkflowPackage, load
from executors.data.literals import to_python

__all__ = ["flyte_workflow_dag"]

START_NODE = "start-node"
INPUTS_TASK = "workflow_inputs"
OUTPUTS_TASK = "workflow_outputs"
ARRAY_INDEX_VARIABLE = "FLYTE_ARRAY_INDEX"
"""The variable carrying an array element's index: flytekit reads the variable named by
``BATCH_JOB_ARRAY_INDEX_VAR_NAME``, as on Flyte's own array plugin."""


class UnsupportedWorkflowError(TaskTemplateError):
    """A workflow construct with no faithful Airflow mapping; the message names the node."""


@dataclasses.dataclass
class _Scope:
    """Where the promises of one workflow (or sub-workflow) resolve: its inputs and its nodes."""

    name: str
    inputs: dict[str, Any]
    nodes: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """Each built node's outputs (XComArgs or values), by node id and variable."""
    tasks: dict[str, list[Any]] = dataclasses.field(default_factory=dict)
    """Each built node's Airflow tasks (for ``upstream_node_ids`` without data)."""

    def resolve(self, reference: types_pb2.OutputReference, where: str) -> Any:
        if reference.attr_path:
            raise UnsupportedWorkflowError(
                f"{where}: a promise with attribute access ({reference.node_id}.{reference.var}"
                f"{''.join(f'.{a.string_value or a.int_value}' for a in reference.attr_path)}) is not "
                "supported: return the field from a task instead"
            )
        if reference.node_id in ("", START_NODE):
            if reference.var not in self.inputs:
                raise TaskTemplateError(f"{where}: {self.name} has no input {reference.var!r}")
            return self.inputs[reference.var]
        outputs = self.nodes.get(reference.node_id)
        if outputs is None or reference.var not in outputs:
            raise TaskTemplateError(f"{where}: no output {reference.var!r} of node {reference.node_id!r}")
        return outputs[reference.var]


def _task_id(node: core_workflow_pb2.Node) -> str:
    name = node.metadata.name.rsplit(".", 1)[-1] if node.metadata.name else ""
    name = re.sub(r"-arraynode$", "", re.sub(r"_[0-9a-f]{32}", "", name))
    raw = f"{node.id}_{name}" if name and name != node.id else node.id
    return re.sub(r"[^A-Za-z0-9_.-]", "_", raw)


def _binding_value(
    data: literals_pb2.BindingData, literal_type: types_pb2.LiteralType, scope: _Scope, where: str
) -> Any:
    kind = data.WhichOneof("value")
    if kind == "promise":
        return scope.resolve(data.promise, where)
    if kind == "scalar":
        return to_python(literals_pb2.Literal(scalar=data.scalar), literal_type, path=where)
    if kind == "collection":
        element = literal_type.collection_type if literal_type.HasField("collection_type") else literal_type
        return [
            _binding_value(item, element, scope, f"{where}[{index}]")
            for index, item in enumerate(data.collection.bindings)
        ]
    if kind == "map":
        entry = literal_type.map_value_type if literal_type.HasField("map_value_type") else literal_type
        return {
            key: _binding_value(item, entry, scope, f"{where}[{key!r}]")
            for key, item in data.map.bindings.items()
        }
    raise UnsupportedWorkflowError(f"{where}: a {kind or 'empty'} binding is not supported")


def _inputs(bindings: Any, variables: Mapping[str, Any], scope: _Scope, where: str) -> dict[str, Any]:
    found = {}
    for binding in bindings:
        variable = variables.get(binding.var)
        literal_type = variable.type if variable is not None else types_pb2.LiteralType()
        found[binding.var] = _binding_value(
            binding.binding, literal_type, scope, f"{where} input {binding.var!r}"
        )
    return found


@dataclasses.dataclass
class _Builder:
    package: WorkflowPackage
    executor_id: str
    executors: Mapping[str, str]
    operator_kwargs: dict[str, Any]

    def build(self, workflow: core_workflow_pb2.WorkflowTemplate, scope: _Scope) -> dict[str, Any]:
        """Build every node of ``workflow`` in the current DAG (and task group); return its outputs."""
        for node in workflow.nodes:
            where = f"workflow {workflow.id.name}: node {node.id} ({node.metadata.name or '-'})"
            target = node.WhichOneof("target")
            if target == "task_node":
                outputs, tasks = self._task_node(node, scope, where)
            elif target == "workflow_node":
                outputs, tasks = self._workflow_node(node, scope, where)
            elif target == "array_node":
                outputs, tasks = self._array_node(node, scope, where)
            else:
                construct = {"branch_node": "conditional branch", "gate_node": "gate"}.get(
                    target or "", target
                )
                raise UnsupportedWorkflowError(
                    f"{where}: a {construct} has no faithful Airflow mapping here and is not supported"
                )
            for upstream in node.upstream_node_ids:
                for before in scope.tasks.get(upstream, []):
                    for task in tasks:
                        before >> task
            scope.nodes[node.id] = outputs
            scope.tasks[node.id] = tasks
        end = f"workflow {workflow.id.name}: outputs"
        return _inputs(workflow.outputs, workflow.interface.outputs.variables, scope, end)

    def _operator_kwargs(
        self, node: core_workflow_pb2.Node, template: tasks_pb2.TaskTemplate
    ) -> dict[str, Any]:
        kwargs = dict(self.operator_kwargs)
        name = node.metadata.name.rsplit(".", 1)[-1]
        kwargs["executor_id"] = self.executors.get(name, self.executors.get(node.id, self.executor_id))
        if node.metadata.HasField("retries") and node.metadata.retries.retries:
            kwargs.setdefault("retries", node.metadata.retries.retries)
        if node.metadata.HasField("timeout") and node.metadata.timeout.ToTimedelta():
            kwargs.setdefault("execution_timeout", node.metadata.timeout.ToTimedelta())
        return kwargs

    def _task_node(
        self, node: core_workflow_pb2.Node, scope: _Scope, where: str
    ) -> tuple[dict[str, Any], list[Any]]:
        from airflow_provider.operators import ExecutorOperator

        template = self.package.task(node.task_node.reference_id, where=where)
        inputs = _inputs(node.inputs, template.interface.inputs.variables, scope, where)
        op = ExecutorOperator(
            task_id=_task_id(node),
            task_template=template,
            inputs=inputs,
            **self._operator_kwargs(node, template),
        )
        produced: Any = op.output
        outputs = {name: produced[name] for name in template.interface.outputs.variables}
        return outputs, [op]

    def _workflow_node(
        self, node: core_workflow_pb2.Node, scope: _Scope, where: str
    ) -> tuple[dict[str, Any], list[Any]]:
        from airflow.sdk import TaskGroup

        if node.workflow_node.WhichOneof("reference") != "sub_workflow_ref":
            raise UnsupportedWorkflowError(
                f"{where}: a launch plan node is not supported: use the workflow itself as a sub-workflow"
            )
        sub = self.package.sub_workflow(node.workflow_node.sub_workflow_ref, where=where)
        inputs = _inputs(node.inputs, sub.interface.inputs.variables, scope, where)
        with TaskGroup(group_id=_task_id(node)) as group:
            inner = _Scope(sub.id.name, inputs)
            outputs = self.build(sub, inner)
        return outputs, [group]

    def _array_node(
        self, node: core_workflow_pb2.Node, scope: _Scope, where: str
    ) -> tuple[dict[str, Any], list[Any]]:
        from airflow.sdk import task

        from airflow_provider.operators import ExecutorOperator

        array = node.array_node
        if (array.HasField("min_success_ratio") and array.min_success_ratio < 1.0) or array.min_successes:
            raise UnsupportedWorkflowError(
                f"{where}: a map task that tolerates failed elements (min_success_ratio "
                f"{array.min_success_ratio:g}) cannot be honoured: Airflow fails a mapped task when any "
                "instance fails"
            )
        inner = array.node
        if inner.WhichOneof("target") != "task_node":
            raise UnsupportedWorkflowError(
                f"{where}: an array node over a {inner.WhichOneof('target')} is not supported"
            )
        template = self.package.task(inner.task_node.reference_id, where=where)
        element = _element_template(template, where)
        inputs = _inputs(node.inputs, template.interface.inputs.variables, scope, where)
        mapped = [name for name in template.interface.inputs.variables if name not in set(array.bound_inputs)]
        kwargs = self._operator_kwargs(inner, template)
        environment = dict(kwargs.pop("environment", {}) or {})
        base_id = _task_id(node)

        @task(task_id=f"{base_id}_indices")
        def indices(values: dict[str, Any], environment: dict[str, str]) -> list[dict[str, str]]:
            lengths = {name: len(value) for name, value in values.items()}
            if len(set(lengths.values())) > 1:
                raise ValueError(f"the mapped inputs differ in length: {lengths}")
            count = next(iter(lengths.values()), 0)
            index_env = {"BATCH_JOB_ARRAY_INDEX_VAR_NAME": ARRAY_INDEX_VARIABLE}
            return [{**environment, **index_env, ARRAY_INDEX_VARIABLE: str(i)} for i in range(count)]

        planned: Any = indices({name: inputs[name] for name in mapped}, environment)
        op = ExecutorOperator.partial(task_id=base_id, task_template=element, inputs=inputs, **kwargs).expand(
            environment=planned
        )

        @task(task_id=f"{base_id}_collect", multiple_outputs=True)
        def collect(values: dict[str, Any]) -> dict[str, list[Any]]:
            # Each element's outputs, in element order (map index order), as the array's lists.
            return {name: list(items) for name, items in values.items()}

        produced: Any = op.output
        collected: Any = collect({name: produced[name] for name in element.interface.outputs.variables})
        outputs = {name: collected[name] for name in element.interface.outputs.variables}
        return outputs, [planned.operator, collected.operator]


def _element_template(template: tasks_pb2.TaskTemplate, where: str) -> tasks_pb2.TaskTemplate:
    """The array task as one element runs it: the same command and (whole-list) inputs, each output
    the element's own type (flytekit writes one element's outputs), no caching (every element
    has the same inputs: a cached one would answer for all)."""
    element = tasks_pb2.TaskTemplate()
    element.CopyFrom(template)
    for name, variable in element.interface.outputs.variables.items():
        if not variable.type.HasField("collection_type"):
            raise UnsupportedWorkflowError(f"{where}: the map task's output {name!r} is not a list")
        variable.type.CopyFrom(variable.type.collection_type)
    element.metadata.discoverable = False
    return element


def _params(
    workflow: core_workflow_pb2.WorkflowTemplate, defaults: Mapping[str, literals_pb2.Literal]
) -> dict[str, Any]:
    from airflow.sdk import Param

    params = {}
    for name, variable in workflow.interface.inputs.variables.items():
        schema = _param_schema(variable.type)
        if name in defaults:
            value = to_python(defaults[name], variable.type, path=f"workflow input {name!r} default")
            value = value.isoformat() if isinstance(value, dt.datetime) else value
            params[name] = Param(value, **schema)
        else:
            params[name] = Param(description=f"required input of {workflow.id.name}", **schema)
    return params


_JSON_TYPES = {
    types_pb2.INTEGER: "integer",
    types_pb2.FLOAT: "number",
    types_pb2.STRING: "string",
    types_pb2.BOOLEAN: "boolean",
    types_pb2.STRUCT: "object",
}


def _param_schema(literal_type: types_pb2.LiteralType) -> dict[str, Any]:
    """The JSON-schema ``type`` of a param, so a run's conf is checked when it is triggered."""
    kind = literal_type.WhichOneof("type")
    if kind == "simple" and literal_type.simple in _JSON_TYPES:
        return {"type": _JSON_TYPES[literal_type.simple]}
    if kind == "collection_type":
        return {"type": "array"}
    if kind == "map_value_type":
        return {"type": "object"}
    return {}


def flyte_workflow_dag(
    source: str | Path | WorkflowPackage,
    workflow: str | None = None,
    *,
    dag_id: str | None = None,
    executor_id: str = "local",
    executors: Mapping[str, str] | None = None,
    operator_kwargs: Mapping[str, Any] | None = None,
    **dag_kwargs: Any,
) -> Any:
    """An Airflow DAG running the Flyte workflow ``workflow`` of ``source`` (``pyflyte package``
    output, a ``WorkflowSpec`` or a ``WorkflowClosure`` file; see
    :func:`executors.data.flyte_workflows.load`).

    :param workflow: the workflow's name (``module.function`` or ``function``); optional when the
        package holds one workflow.
    :param dag_id: default: the workflow's name with dots as underscores.
    :param executor_id: the executor of every task node; ``executors`` overrides it per task
        (``{"train": "ray"}``, by the task's function name or the node id).
    :param operator_kwargs: passed to every ``ExecutorOperator`` (``environment``, ``data_dir``,
        ``poll_interval``, ...).
    :param dag_kwargs: passed to ``DAG`` (``schedule``, ``start_date``, ``tags``, ...).

    Raises :class:`UnsupportedWorkflowError` (a :class:`~executors.core.errors.TaskTemplateError`)
    naming the node for a construct that has no faithful mapping, when the DAG is built.
    """
    from airflow.sdk import DAG, task

    package = source if isinstance(source, WorkflowPackage) else load(source)
    template = package.workflow(workflow)
    name = template.id.name
    dag_kwargs.setdefault("schedule", None)
    dag_kwargs.setdefault("start_date", dt.datetime(2026, 1, 1))
    dag_kwargs.setdefault("catchup", False)
    dag_kwargs.setdefault("params", _params(template, package.defaults(name)))
    dag_kwargs.setdefault("doc_md", f"Flyte workflow `{name}` from `{package.source}`.")
    builder = _Builder(package, executor_id, dict(executors or {}), dict(operator_kwargs or {}))
    with DAG(dag_id=dag_id or name.replace(".", "_"), **dag_kwargs) as dag:
        names = list(template.interface.inputs.variables)
        inputs: dict[str, Any] = {}
        if names:
            # The run's params, as a task's XComs: typed values (JSON), not Jinja-rendered strings.
            @task(task_id=INPUTS_TASK, multiple_outputs=True)
            def workflow_inputs(params: dict[str, Any] | None = None) -> dict[str, Any]:
                return {var: (params or {}).get(var) for var in names}

            given: Any = workflow_inputs()
            inputs = {var: given[var] for var in names}
        outputs = builder.build(template, _Scope(name, inputs))

        @task(task_id=OUTPUTS_TASK)
        def workflow_outputs(values: dict[str, Any]) -> dict[str, Any]:
            return values

        workflow_outputs(outputs)
    return dag
