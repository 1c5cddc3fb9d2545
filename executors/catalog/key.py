"""Cache keys, following Flyte's datacatalog scheme, with hashes that never drift.

For a task whose ``metadata.discoverable`` is set:

* **dataset**: project and domain of the task id, name ``flyte_task-<task name>``, version
  ``<discovery_version>-<in8>-<out8>`` where ``in8``/``out8`` are the first 8 hex digits of the hash
  of the interface's input/output variables (names and types; descriptions do not count). Changing
  an input or output type is a new dataset; bumping ``discovery_version`` is a new dataset.
* **tag**: ``flyte_cached-<hash of the inputs>``, with ``metadata.cache_ignore_input_vars`` dropped
  and any literal that carries ``Literal.hash`` represented by that hash alone (how Flyte lets a
  large offloaded value be keyed cheaply).

Hashes are SHA-256 over a canonical JSON encoding that this module defines itself (sorted keys,
no whitespace, floats as ``float.hex()``, timestamps as seconds and nanos): it does not depend on
protobuf's serializer, map order, or JSON float formatting, so the same inputs give the same key in
any process, on any machine, with any protobuf version.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from flyteidl.core import interface_pb2, literals_pb2, tasks_pb2
from flyteidl.datacatalog import datacatalog_pb2
from google.protobuf import json_format

from executors.core.errors import ExecutorsError


class CacheKeyError(ExecutorsError, ValueError):
    """The template cannot be cached as declared (e.g. discoverable without a version)."""


@dataclasses.dataclass(frozen=True)
class CacheKey:
    """Where one cached result lives: a dataset (task + version + interface) and a tag (inputs)."""

    project: str
    domain: str
    dataset: str
    version: str
    tag: str

    def dataset_id(self) -> datacatalog_pb2.DatasetID:
        return datacatalog_pb2.DatasetID(
            project=self.project, domain=self.domain, name=self.dataset, version=self.version
        )

    def __str__(self) -> str:
        # A task built from a command has no project or domain: no empty path parts ("//name").
        dataset = "/".join(part for part in (self.project, self.domain, self.dataset) if part)
        return f"{dataset}@{self.version}:{self.tag}"


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical_value(value: Any) -> Any:
    """A protobuf ``Struct``/``Value`` tree as JSON with floats spelled exactly."""
    if isinstance(value, float):
        return {"f": value.hex()}
    if isinstance(value, dict):
        return {k: _canonical_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical_value(v) for v in value]
    return value


def canonical_literal(literal: literals_pb2.Literal) -> Any:
    """The canonical, JSON-safe form of a literal used for hashing."""
    if literal.hash:
        return {"hash": literal.hash}
    kind = literal.WhichOneof("value")
    if kind == "collection":
        return {"list": [canonical_literal(item) for item in literal.collection.literals]}
    if kind == "map":
        return {"map": {k: canonical_literal(v) for k, v in literal.map.literals.items()}}
    if kind == "offloaded_metadata":
        return {"offloaded": literal.offloaded_metadata.uri}
    if kind != "scalar":
        return {"empty": True}
    scalar = literal.scalar
    which = scalar.WhichOneof("value")
    if which == "primitive":
        p = scalar.primitive
        field = p.WhichOneof("value")
        if field == "integer":
            return {"int": str(p.integer)}
        if field == "float_value":
            return {"float": p.float_value.hex()}
        if field == "string_value":
            return {"str": p.string_value}
        if field == "boolean":
            return {"bool": p.boolean}
        if field == "datetime":
            return {"datetime": [p.datetime.seconds, p.datetime.nanos]}
        if field == "duration":
            return {"duration": [p.duration.seconds, p.duration.nanos]}
        return {"primitive": None}
    if which == "none_type":
        return {"none": True}
    if which == "blob":
        meta = scalar.blob.metadata.type
        return {"blob": [scalar.blob.uri, meta.format, int(meta.dimensionality)]}
    if which == "structured_dataset":
        sd = scalar.structured_dataset
        return {"sd": [sd.uri, sd.metadata.structured_dataset_type.format]}
    if which == "generic":
        return {"struct": _canonical_value(json_format.MessageToDict(scalar.generic))}
    if which == "union":
        return canonical_literal(scalar.union.value)
    if which == "binary":
        return {"binary": [scalar.binary.value.hex(), scalar.binary.tag]}
    if which == "error":
        return {"error": [scalar.error.failed_node_id, scalar.error.message]}
    return {"scalar": which}


def _canonical_variables(variables: interface_pb2.VariableMap) -> Any:
    return {
        name: json_format.MessageToDict(var.type, preserving_proto_field_name=True)
        for name, var in variables.variables.items()
    }


def interface_hash(variables: interface_pb2.VariableMap) -> str:
    return _digest(_canonical_variables(variables))


def inputs_hash(inputs: literals_pb2.LiteralMap, ignore: tuple[str, ...] | list[str] = ()) -> str:
    dropped = set(ignore)
    return _digest({k: canonical_literal(v) for k, v in inputs.literals.items() if k not in dropped})


def is_cacheable(template: tasks_pb2.TaskTemplate) -> bool:
    return bool(template.metadata.discoverable)


def cache_key(template: tasks_pb2.TaskTemplate, inputs: literals_pb2.LiteralMap) -> CacheKey:
    """The key of this task's result for these inputs. Only for discoverable templates."""
    name = template.id.name
    if not template.metadata.discoverable:
        raise CacheKeyError(f"task {name or '<unnamed>'} is not discoverable (metadata.discoverable unset)")
    version = template.metadata.discovery_version
    if not version:
        raise CacheKeyError(
            f"task {name or '<unnamed>'} is discoverable but has no discovery_version (cache_version): "
            "set one, and bump it whenever the task's code changes"
        )
    if not name:
        raise CacheKeyError("a discoverable task needs a name (TaskTemplate.id.name)")
    in8 = interface_hash(template.interface.inputs)[:8]
    out8 = interface_hash(template.interface.outputs)[:8]
    return CacheKey(
        project=template.id.project,
        domain=template.id.domain,
        dataset=f"flyte_task-{name}",
        version=f"{version}-{in8}-{out8}",
        tag=f"flyte_cached-{inputs_hash(inputs, list(template.metadata.cache_ignore_input_vars))}",
    )
