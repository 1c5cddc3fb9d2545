"""What one execution left in its folder, read back for a person: the Execution view's data.

An execution folder (see :class:`executors.TaskContext`) holds ``task.pb`` (the template, with its
typed interface), ``inputs.pb``, the output prefix's ``outputs.pb`` / ``error.pb``, one
``events/<stamp>-<phase>-v<n>.pb`` per phase change (:class:`DataStoreEventRecorder`) and, for the
local executor, ``logs/stdout.log`` / ``stderr.log``.

Everything in the folder was written by, or next to, a task, so every read here is guarded: files
are read with ``within=`` the folder and a size cap (a FIFO, a device, a symlink out of the folder
or a huge file is refused, see :mod:`executors.data.task_files`), at most :data:`MAX_EVENTS` events
are read, and a value is shown cut at :data:`MAX_VALUE_CHARS` characters. A file that is missing,
refused or unreadable never fails the whole record: it becomes a line in ``problems`` naming the
file and why, and the rest is still shown.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
from typing import Any

from flyteidl.core import errors_pb2, execution_pb2, interface_pb2, literals_pb2, tasks_pb2
from flyteidl.event import event_pb2

from executors.core.context import default_output_prefix
from executors.core.errors import DataNotFoundError, DataStoreError, ExecutorsError
from executors.data.literals import describe_type, to_python
from executors.data.storage import DataStore, is_local, join, local_path
from executors.data.task_files import tail_task_file

MAX_FILE_BYTES = 4 * 1024 * 1024
"""Largest ``task.pb`` / ``inputs.pb`` / ``outputs.pb`` / ``error.pb`` / event read (4 MiB)."""

MAX_EVENTS = 200
"""Events read per execution (the newest ones when there are more)."""

MAX_VALUE_CHARS = 2_000
"""A value's text is cut after this many characters."""

LOG_STREAMS = ("stdout", "stderr")

_PHASE_NAMES = frozenset(execution_pb2.TaskExecution.Phase.keys())


@dataclasses.dataclass(frozen=True)
class ShownValue:
    """One input or output: its declared type and its value as text, or a reference.

    ``kind`` is ``value`` (``text`` is the value as JSON), ``file`` or ``dataset`` (``text`` is the
    URI: the data itself is never read), ``missing`` (declared, not in the literal map) or
    ``unreadable`` (``text`` says why).
    """

    name: str
    type: str
    kind: str
    text: str


@dataclasses.dataclass(frozen=True)
class PhaseChange:
    """One recorded event: the phase it announced, when, and what it said."""

    phase: str
    occurred_at: dt.datetime | None
    phase_version: int
    reason: str
    producer: str
    """The id of the executor that reported it (``local``, ``ray``, ...)."""


@dataclasses.dataclass(frozen=True)
class ExecutionRecord:
    """An execution folder, read. ``problems`` lists what could not be read (and why)."""

    folder: str
    task: str
    task_type: str
    command: list[str]
    inputs: list[ShownValue]
    outputs: list[ShownValue]
    error: dict[str, str] | None
    events: list[PhaseChange]
    problems: list[str]
    template: tasks_pb2.TaskTemplate | None = dataclasses.field(default=None, repr=False)
    input_literals: literals_pb2.LiteralMap | None = dataclasses.field(default=None, repr=False)

    @property
    def phase(self) -> str:
        """The last recorded phase (``UNKNOWN`` when no event was recorded)."""
        return self.events[-1].phase if self.events else "UNKNOWN"

    @property
    def executor(self) -> str:
        """The executor that reported the last event (``""`` when none did)."""
        return self.events[-1].producer if self.events else ""


async def read_execution_record(store: DataStore, folder: str) -> ExecutionRecord:
    """Read the execution in ``folder`` (never raises for what the folder holds or lacks)."""
    problems: list[str] = []
    template = await _read(store, folder, join(folder, "task.pb"), tasks_pb2.TaskTemplate, problems)
    inputs = await _read(store, folder, join(folder, "inputs.pb"), literals_pb2.LiteralMap, problems)
    output_prefix = default_output_prefix(folder)
    outputs = await _read(
        store, folder, join(output_prefix, "outputs.pb"), literals_pb2.LiteralMap, problems, optional=True
    )
    error = await _read(
        store, folder, join(output_prefix, "error.pb"), errors_pb2.ErrorDocument, problems, optional=True
    )
    interface = template.interface if template is not None else interface_pb2.TypedInterface()
    return ExecutionRecord(
        folder=folder,
        task=_task_name(template),
        task_type=template.type if template is not None else "",
        command=_command(template),
        inputs=_shown(interface.inputs, inputs, "input") if inputs is not None else [],
        outputs=_shown(interface.outputs, outputs, "output") if outputs is not None else [],
        error=_error(error),
        events=await _events(store, folder, problems),
        problems=problems,
        template=template,
        input_literals=inputs,
    )


async def latest_phase(store: DataStore, folder: str) -> str:
    """The phase of the newest event (``UNKNOWN`` when none can be listed), read from its file's
    name (``<stamp>-<phase>-v<n>.pb``): what a page polling a running execution needs, without
    reading the rest of the folder."""
    try:
        names = await asyncio.to_thread(_event_names, store, folder, join(folder, "events"))
    except Exception:
        return "UNKNOWN"
    for name in reversed(names):
        parts = name[: -len(".pb")].split("-")
        if len(parts) >= 3 and parts[1].upper() in _PHASE_NAMES:
            return parts[1].upper()
    return "UNKNOWN"


async def read_log_tail(folder: str, stream: str, max_bytes: int = 64_000) -> tuple[str, int] | None:
    """The last ``max_bytes`` of ``logs/<stream>.log`` (cut to whole lines when cut) and its size;
    ``None`` when the folder keeps no such log (not local, or nothing written yet). A refused file
    (a FIFO, a symlink out of the folder) raises :class:`~executors.core.errors.RefusedDataError`."""
    if stream not in LOG_STREAMS:
        raise ValueError(f"stream must be one of {LOG_STREAMS}, not {stream!r}")
    if not is_local(folder):
        return None
    root = local_path(folder)
    path = os.path.join(root, "logs", f"{stream}.log")
    try:
        data, size = await asyncio.to_thread(tail_task_file, path, max_bytes, within=root)
    except FileNotFoundError:
        return None
    if len(data) < size and b"\n" in data:
        data = data[data.index(b"\n") + 1 :]
    return data.decode("utf-8", errors="replace"), size


async def _read(
    store: DataStore,
    folder: str,
    reference: str,
    message_type: type[Any],
    problems: list[str],
    *,
    optional: bool = False,
) -> Any:
    name = reference[len(folder) + 1 :] if reference.startswith(folder + "/") else reference
    try:
        return await store.read_protobuf(reference, message_type, within=folder, max_bytes=MAX_FILE_BYTES)
    except DataNotFoundError:
        if not optional:
            problems.append(f"{name}: not there")
    except (DataStoreError, ExecutorsError) as exc:
        problems.append(f"{name}: {exc}")
    return None


def _command(template: tasks_pb2.TaskTemplate | None) -> list[str]:
    if template is None or not template.HasField("container"):
        return []
    return [*template.container.command, *template.container.args]


def _task_name(template: tasks_pb2.TaskTemplate | None) -> str:
    if template is None:
        return ""
    ident = template.id
    name = "/".join(part for part in (ident.project, ident.domain, ident.name) if part)
    return f"{name}@{ident.version}" if ident.version else name


def _shown(
    variables: interface_pb2.VariableMap, literals: literals_pb2.LiteralMap, kind: str
) -> list[ShownValue]:
    shown = []
    declared = variables.variables
    for name in [*declared, *(n for n in sorted(literals.literals) if n not in declared)]:
        literal_type = declared[name].type if name in declared else None
        type_text = describe_type(literal_type) if literal_type is not None else "(not declared)"
        if name not in literals.literals:
            shown.append(ShownValue(name, type_text, "missing", "not in the literal map"))
            continue
        shown.append(_value(name, type_text, literals.literals[name], literal_type, kind))
    return shown


def _value(
    name: str, type_text: str, literal: literals_pb2.Literal, literal_type: Any, kind: str
) -> ShownValue:
    scalar = literal.scalar if literal.WhichOneof("value") == "scalar" else None
    if scalar is not None and scalar.WhichOneof("value") == "blob":
        return ShownValue(name, type_text, "file", scalar.blob.uri)
    if scalar is not None and scalar.WhichOneof("value") == "structured_dataset":
        return ShownValue(name, type_text, "dataset", scalar.structured_dataset.uri)
    try:
        value = to_python(literal, literal_type, path=f"{kind} '{name}'")
        text = json.dumps(value, default=str, ensure_ascii=False)
    except Exception as exc:  # a value that does not match its type is shown as such, not raised
        return ShownValue(name, type_text, "unreadable", str(exc))
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS] + f"... ({len(text):,} characters)"
    return ShownValue(name, type_text, "value", text)


def _error(document: errors_pb2.ErrorDocument | None) -> dict[str, str] | None:
    if document is None:
        return None
    error = document.error
    kind = errors_pb2.ContainerError.Kind.Name(error.kind)
    origin = execution_pb2.ExecutionError.ErrorKind.Name(error.origin)
    return {"code": error.code, "message": error.message, "kind": kind, "origin": origin}


async def _events(store: DataStore, folder: str, problems: list[str]) -> list[PhaseChange]:
    events_folder = join(folder, "events")
    try:
        names = await asyncio.to_thread(_event_names, store, folder, events_folder)
    except FileNotFoundError:
        return []
    except Exception as exc:
        problems.append(f"events/: {type(exc).__name__}: {exc}")
        return []
    if len(names) > MAX_EVENTS:
        problems.append(f"events/: {len(names):,} events, the {MAX_EVENTS} newest shown")
        names = names[-MAX_EVENTS:]
    changes = []
    for name in names:
        event = await _read(store, folder, join(events_folder, name), event_pb2.TaskExecutionEvent, problems)
        if event is None:
            continue
        when = event.occurred_at.ToDatetime(tzinfo=dt.UTC) if event.HasField("occurred_at") else None
        phase = execution_pb2.TaskExecution.Phase.Name(event.phase)
        changes.append(PhaseChange(phase, when, event.phase_version, event.reason, event.producer_id))
    return changes


def _event_names(store: DataStore, folder: str, events_folder: str) -> list[str]:
    """The event files' names, sorted (their names start with the time in microseconds)."""
    if is_local(events_folder):
        root = os.path.realpath(local_path(folder))
        path = os.path.realpath(local_path(events_folder))
        if os.path.commonpath([root, path]) != root:
            raise PermissionError(f"a symlink out of the execution folder (to {path})")
        with os.scandir(path) as entries:  # names only: no file is opened here
            return sorted(
                e.name for e in entries if e.name.endswith(".pb") and e.is_file(follow_symlinks=False)
            )
    fs, path = store.filesystem(events_folder)
    return sorted(p.rsplit("/", 1)[-1] for p in fs.ls(path, detail=False) if p.endswith(".pb"))
