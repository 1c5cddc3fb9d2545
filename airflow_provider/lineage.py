"""OpenLineage: what a finished try read and wrote, for ``get_openlineage_facets_on_complete``.

With ``apache-airflow-providers-openlineage`` installed and a transport configured, its listener
asks the operator for the task's lineage when the task succeeds. The files, directories and
datasets among the inputs and outputs are OpenLineage datasets (namespace and name from the URI,
following OpenLineage's naming: ``s3://bucket`` + ``key``, ``file`` + an absolute path; a dataset's
declared columns as a schema facet); the scalar outputs, the executor, the execution and the cache
outcome are one run facet, ``executors``.

What is reported is collected at the end of the try, only when OpenLineage is enabled, and never
fails the task: a store that cannot be read gives a warning and no lineage.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import attrs
from flyteidl.core import literals_pb2, tasks_pb2

from executors import DataStore, Executor, TaskContext
from executors.catalog.gate import CacheOutcome
from executors.data.literal_uris import DataReference, data_references

_DATA_TYPES = frozenset({"blob", "structured_dataset_type"})

SCALAR_TEXT_MAX = 1000
"""A string output longer than this is cut in the run facet (XCom holds the whole of it)."""


def enabled() -> bool:
    """Whether OpenLineage's provider is installed here and will emit events (a transport is set)."""
    try:
        from airflow.providers.openlineage.conf import is_disabled
    except ImportError:
        return False
    try:
        return not is_disabled()
    except Exception:  # a broken OpenLineage configuration is OpenLineage's to report
        return False


@dataclasses.dataclass(frozen=True)
class TryLineage:
    """What one try read and wrote: its data references and its run facet's fields."""

    inputs: list[DataReference]
    outputs: list[DataReference]
    executor: str
    execution: str
    cache_status: str
    scalar_outputs: dict[str, Any]

    def operator_lineage(self) -> Any:
        """As OpenLineage's ``OperatorLineage``."""
        from airflow.providers.openlineage.extractors import OperatorLineage

        return OperatorLineage(
            inputs=[_dataset(ref, output=False) for ref in self.inputs],
            outputs=[_dataset(ref, output=True) for ref in self.outputs],
            run_facets={"executors": _run_facet(self)},
        )


async def collect(
    executor: Executor,
    store: DataStore,
    template: tasks_pb2.TaskTemplate,
    ctx: TaskContext,
    outputs: dict[str, Any],
) -> TryLineage:
    """Read a succeeded try's inputs (``inputs.pb``) and output literals for their data."""
    inputs = await store.read_protobuf(ctx.inputs_file, literals_pb2.LiteralMap)
    declared = list(template.interface.outputs.variables)
    written = literals_pb2.LiteralMap()
    if declared:
        written = literals_pb2.LiteralMap(literals=await executor.resolve_outputs(ctx, *declared))
    outcome = CacheOutcome.of(ctx)
    variables = template.interface.outputs.variables
    referenced = {name for name in declared if variables[name].type.WhichOneof("type") in _DATA_TYPES}
    return TryLineage(
        inputs=data_references(inputs, "input"),
        outputs=data_references(written, "output"),
        executor=executor.get_id(),
        execution=ctx.generated_name,
        cache_status=outcome.status if outcome is not None else "",
        scalar_outputs={
            name: _scalar(value)
            for name, value in outputs.items()
            if _is_scalar(value) and name not in referenced  # a file's URI is a dataset, not a value
        },
    )


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _scalar(value: Any) -> Any:
    if isinstance(value, str) and len(value) > SCALAR_TEXT_MAX:
        return value[:SCALAR_TEXT_MAX] + "..."
    return value


def namespace_and_name(uri: str) -> tuple[str, str]:
    """OpenLineage's dataset naming for a URI: ``s3://bucket/a/b`` -> (``s3://bucket``, ``a/b``);
    a local path (or ``file://``) -> (``file``, the absolute path)."""
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme == "file":
        path = rest if sep else uri
        return "file", path if path.startswith("/") else f"/{path}"
    authority, _, path = rest.partition("/")
    return f"{scheme}://{authority}", path or "/"


def _dataset(ref: DataReference, *, output: bool) -> Any:
    from openlineage.client.event_v2 import InputDataset, OutputDataset
    from openlineage.client.facet_v2 import schema_dataset

    namespace, name = namespace_and_name(ref.uri)
    facets: dict[str, Any] = {}
    if ref.columns:
        fields = [schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in ref.columns]
        facets["schema"] = schema_dataset.SchemaDatasetFacet(fields=fields)
    kind = OutputDataset if output else InputDataset
    return kind(namespace=namespace, name=name, facets=facets)


@functools.cache
def _facet_class() -> Any:
    """The run facet's class, made once (OpenLineage's client is imported only when it is used)."""
    from openlineage.client.facet_v2 import RunFacet

    @attrs.define
    class ExecutorsRunFacet(RunFacet):
        """The try's executor, execution, cache outcome, scalar outputs and data URIs."""

        executor: str
        execution: str
        cacheStatus: str  # OpenLineage facets name fields in camelCase
        outputs: dict[str, Any]
        data: list[dict[str, str]]

    return ExecutorsRunFacet


def _run_facet(lineage: TryLineage) -> Any:
    data = [{"where": r.where, "kind": r.kind, "uri": r.uri} for r in (*lineage.inputs, *lineage.outputs)]
    return _facet_class()(
        executor=lineage.executor,
        execution=lineage.execution,
        cacheStatus=lineage.cache_status,
        outputs=lineage.scalar_outputs,
        data=data,
    )
