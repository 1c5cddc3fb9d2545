"""TaskContext and the value objects it holds: who an execution is, where its data lives.

Everything here round-trips through a JSON-safe dict exactly (``to_dict``/``from_dict``): a
context travels inside Airflow trigger kwargs and must come back identical in another process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from flyteidl.core import identifier_pb2, tasks_pb2
from google.protobuf import json_format

from executors.core.phase import TaskPhase
from executors.core.status import CustomState

_MAX_NAME = 63
_HASH_LEN = 12
_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def _message_to_dict(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)  # type: ignore[no-any-return]


def generated_name_for(identifier: identifier_pb2.TaskExecutionIdentifier) -> str:
    """A deterministic, per-attempt unique name that is a valid DNS-1123 label.

    Shape: ``<readable prefix>-<12 hex digits>``, lowercase, at most 63 characters, starting with
    a letter, so it is usable as a Kubernetes object name and a Ray ``submission_id``. The hash
    covers every identifying field (project, domain, task, node, run, retry attempt), so two
    attempts never share a name even when their readable prefixes are truncated alike.
    """
    node = identifier.node_execution_id
    fields = [
        identifier.task_id.project,
        identifier.task_id.domain,
        identifier.task_id.name,
        identifier.task_id.version,
        node.execution_id.project,
        node.execution_id.domain,
        node.execution_id.name,
        node.node_id,
        str(identifier.retry_attempt),
    ]
    # Length-prefixed so ("a-b", "c") and ("a", "b-c") hash differently.
    canonical = "".join(f"{len(f)}:{f};" for f in fields)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:_HASH_LEN]
    readable = f"{node.node_id}-{identifier.retry_attempt}".lower()
    readable = _NOT_DNS.sub("-", readable).strip("-")
    readable = re.sub("-{2,}", "-", readable)
    if not readable or not readable[0].isalpha():
        readable = "t" + (f"-{readable}" if readable else "")
    readable = readable[: _MAX_NAME - _HASH_LEN - 1].rstrip("-")
    return f"{readable}-{digest}"


@dataclasses.dataclass(frozen=True)
class TaskExecutionID:
    """The identity of one execution attempt (seed: ``TaskExecutionID``)."""

    id: identifier_pb2.TaskExecutionIdentifier
    generated_name: str

    @classmethod
    def create(cls, identifier: identifier_pb2.TaskExecutionIdentifier) -> TaskExecutionID:
        """Build the id, deriving the generated name from the identifier."""
        return cls(id=identifier, generated_name=generated_name_for(identifier))

    def to_dict(self) -> dict[str, Any]:
        return {"id": _message_to_dict(self.id), "generated_name": self.generated_name}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskExecutionID:
        identifier = json_format.ParseDict(data["id"], identifier_pb2.TaskExecutionIdentifier())
        return cls(id=identifier, generated_name=str(data["generated_name"]))


@dataclasses.dataclass(frozen=True)
class TaskOverrides:
    """Per-execution overrides of what the task template says (seed: ``TaskOverrides``).

    ``resources`` replaces the container's requests/limits entry by entry; ``config`` is free-form
    executor configuration (seed: the plugin ConfigMap); ``environment`` is added to (and wins
    over) the container's environment.
    """

    resources: tasks_pb2.Resources | None = None
    config: Mapping[str, str] = dataclasses.field(default_factory=dict)
    environment: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "resources": _message_to_dict(self.resources) if self.resources is not None else None,
            "config": dict(self.config),
            "environment": dict(self.environment),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskOverrides:
        resources = data.get("resources")
        return cls(
            resources=json_format.ParseDict(resources, tasks_pb2.Resources())
            if resources is not None
            else None,
            config=dict(data.get("config") or {}),
            environment=dict(data.get("environment") or {}),
        )


@dataclasses.dataclass(frozen=True)
class OwnerReference:
    """What owns the execution (seed: a Kubernetes ``OwnerReference``); in Airflow, the task instance."""

    kind: str
    name: str
    uid: str = ""
    api_version: str = ""

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OwnerReference:
        return cls(**{k: str(v) for k, v in data.items()})


def _join(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}"


OUTPUTS_FOLDER = "outputs"
"""The sub-folder of an execution folder that is its default output prefix (``{{.outputPrefix}}``)."""


def default_output_prefix(data_dir: str) -> str:
    """Where an execution whose folder is ``data_dir`` writes ``outputs.pb`` / ``error.pb`` by
    default (Flyte's ``{{.outputPrefix}}``): a folder of its own, so a task that empties or
    recreates it (``rm -rf "$OUT"; mkdir "$OUT"``) cannot delete ``task.pb``, ``inputs.pb``,
    ``events/`` or ``logs/``."""
    return _join(data_dir, OUTPUTS_FOLDER)


def default_checkpoint_prefix(data_dir: str) -> str:
    """Where an execution whose folder is ``data_dir`` writes its checkpoints by default (a retry
    reads the previous try's from there: Flyte's ``{{.prevCheckpointPrefix}}``)."""
    return _join(data_dir, "checkpoint")


@dataclasses.dataclass(frozen=True)
class TaskContext:
    """Everything an executor knows about one execution (seed: ``TaskContext``).

    ``data_dir`` is the execution's folder as an fsspec URL (a local path is fine). The file
    references default to Flyte's names: ``{data_dir}/inputs.pb``, and ``outputs.pb`` /
    ``error.pb`` in the output prefix (:attr:`output_prefix`, Flyte's ``{{.outputPrefix}}``),
    ``{data_dir}/outputs/``: a folder of its own that holds only what the task writes there, as on
    Flyte, so a task that cleans it cannot delete ``task.pb``, ``inputs.pb``, ``events/`` or
    ``logs/``. An explicit ``outputs_file`` without an ``error_file`` puts ``error.pb`` next to
    it. Raw output data and checkpoints default to the sub-folders ``raw/`` and ``checkpoint/`` of
    ``data_dir``. A context always serializes its file references (``to_dict``), so one made with
    an older layout (``{data_dir}/outputs.pb``) keeps its paths through ``from_dict``. ``custom_state``,
    ``phase`` and ``phase_version`` are what the last call of the executor reported; use
    :meth:`with_status` to carry them forward.
    """

    task_execution_id: TaskExecutionID
    data_dir: str
    namespace: str = "default"
    owner_id: str = ""
    owner_reference: OwnerReference | None = None
    overrides: TaskOverrides = dataclasses.field(default_factory=TaskOverrides)
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)
    custom_state: CustomState = dataclasses.field(default_factory=dict)
    service_account: str = ""
    phase: TaskPhase = TaskPhase.NOT_READY
    phase_version: int = 0
    inputs_file: str = ""
    outputs_file: str = ""
    error_file: str = ""
    raw_output_prefix: str = ""
    checkpoint_prefix: str = ""
    prev_checkpoint_prefix: str = ""
    secret_environment: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False, compare=False)
    """Secrets for the task's environment (Flyte's ``_FSEC_<GROUP>_<KEY>``), present only while
    starting. Deliberately left out of ``to_dict``, ``repr`` and equality: a secret never travels in
    trigger kwargs, events or logs, and executors must not write it anywhere."""

    def __post_init__(self) -> None:
        # Fill the Flyte-style defaults once, so every reader sees the same references. error.pb
        # goes where outputs.pb goes: both are in the output prefix the task is given.
        output_prefix = (
            self.outputs_file.rsplit("/", 1)[0] if self.outputs_file else default_output_prefix(self.data_dir)
        )
        defaults = {
            "inputs_file": _join(self.data_dir, "inputs.pb"),
            "outputs_file": _join(output_prefix, "outputs.pb"),
            "error_file": _join(output_prefix, "error.pb"),
            "raw_output_prefix": _join(self.data_dir, "raw"),
            "checkpoint_prefix": default_checkpoint_prefix(self.data_dir),
        }
        for name, value in defaults.items():
            if not getattr(self, name):
                object.__setattr__(self, name, value)
        try:
            json.dumps(self.custom_state)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"TaskContext.custom_state must be JSON-safe: {exc}") from exc

    @property
    def generated_name(self) -> str:
        return self.task_execution_id.generated_name

    @property
    def output_prefix(self) -> str:
        """The folder that holds ``outputs.pb`` and ``error.pb`` (Flyte's ``{{.outputPrefix}}``):
        ``{data_dir}/outputs`` by default; the task may empty or recreate it."""
        return self.outputs_file.rsplit("/", 1)[0]

    @property
    def input_prefix(self) -> str:
        return self.inputs_file.rsplit("/", 1)[0]

    @property
    def task_template_file(self) -> str:
        return _join(self.data_dir, "task.pb")

    def with_status(self, phase: TaskPhase, phase_version: int, state: CustomState | None) -> TaskContext:
        """A copy carrying what the executor last reported (``state=None`` keeps the old state).

        Called on every poll: a plain copy, without re-running ``__post_init__``'s checks (only the
        custom state can be new, and it is JSON-checked when the context is serialized).
        """
        same_state = state is None or state == self.custom_state
        if phase == self.phase and phase_version == self.phase_version and same_state:
            return self  # nothing new, no copy: under load a copy a poll would reach the old GC generation
        copy = object.__new__(TaskContext)
        copy.__dict__.update(self.__dict__)
        object.__setattr__(copy, "phase", phase)
        object.__setattr__(copy, "phase_version", phase_version)
        if state is not None:
            object.__setattr__(copy, "custom_state", state)
        return copy

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_execution_id": self.task_execution_id.to_dict(),
            "data_dir": self.data_dir,
            "namespace": self.namespace,
            "owner_id": self.owner_id,
            "owner_reference": self.owner_reference.to_dict() if self.owner_reference else None,
            "overrides": self.overrides.to_dict(),
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "custom_state": self.custom_state,
            "service_account": self.service_account,
            "phase": int(self.phase),
            "phase_version": self.phase_version,
            "inputs_file": self.inputs_file,
            "outputs_file": self.outputs_file,
            "error_file": self.error_file,
            "raw_output_prefix": self.raw_output_prefix,
            "checkpoint_prefix": self.checkpoint_prefix,
            "prev_checkpoint_prefix": self.prev_checkpoint_prefix,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskContext:
        owner = data.get("owner_reference")
        return cls(
            task_execution_id=TaskExecutionID.from_dict(data["task_execution_id"]),
            data_dir=data["data_dir"],
            namespace=data.get("namespace", "default"),
            owner_id=data.get("owner_id", ""),
            owner_reference=OwnerReference.from_dict(owner) if owner else None,
            overrides=TaskOverrides.from_dict(data.get("overrides") or {}),
            labels=dict(data.get("labels") or {}),
            annotations=dict(data.get("annotations") or {}),
            custom_state=dict(data.get("custom_state") or {}),
            service_account=data.get("service_account", ""),
            phase=TaskPhase(data.get("phase", TaskPhase.NOT_READY)),
            phase_version=int(data.get("phase_version", 0)),
            inputs_file=data.get("inputs_file", ""),
            outputs_file=data.get("outputs_file", ""),
            error_file=data.get("error_file", ""),
            raw_output_prefix=data.get("raw_output_prefix", ""),
            checkpoint_prefix=data.get("checkpoint_prefix", ""),
            prev_checkpoint_prefix=data.get("prev_checkpoint_prefix", ""),
        )
