"""Submitting an execution and reading its typed outputs: the one path every caller takes.

An execution is submitted by writing its ``task.pb`` (the template) and ``inputs.pb`` (the checked
inputs) into its folder *before* anything starts; from then on any process resumes it from its
:class:`~executors.engine.driver.DriverSnapshot` and those two files, read by URL. The Airflow
operator and trigger and the ``run-typed-task`` CLI all use these functions.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from flyteidl.core import literals_pb2, tasks_pb2

from executors.catalog.key import cache_key, is_cacheable
from executors.core.context import TaskContext
from executors.core.errors import InputDataNotFoundError
from executors.core.interface import Executor
from executors.core.status import TaskStatus
from executors.data.literal_uris import data_references
from executors.data.literals import from_literal_map, to_literal_map
from executors.data.storage import DataStore, join, parse_protobuf, path_segment
from executors.engine.driver import DriverSnapshot, ExecutionDriver
from executors.engine.events import DataStoreEventRecorder
from executors.engine.output import OutputCopier, OutputSink
from executors.engine.policy import PollPolicy

MAX_CHECKED_DATA_INPUTS = 64
"""How many file, directory and dataset inputs :func:`check_input_data` looks up (a list of
thousands of files would cost as many requests to the store before the start)."""


async def _exists(store: DataStore, uri: str) -> bool | None:
    """Whether something is at ``uri``; ``None`` when this process cannot tell (no filesystem for
    its scheme here, no credentials, the store down): the task itself will then find out."""
    try:
        return await store.exists(uri)
    except Exception:  # any failure to look is "cannot tell", never a verdict
        return None


async def check_input_data(store: DataStore, inputs: literals_pb2.LiteralMap) -> None:
    """Raise :class:`~executors.core.errors.InputDataNotFoundError` naming the first file, directory
    or dataset input (of the first :data:`MAX_CHECKED_DATA_INPUTS`) whose URI holds nothing.

    Looked up through ``store`` (its storage options; and an answer only when it could look:
    fsspec's own ``exists`` says False for a store it failed to reach), all at once and without
    blocking: the caller may be the triggerer's event loop."""
    found = data_references(inputs, "input")[:MAX_CHECKED_DATA_INPUTS]
    if not found:
        return
    answers = await asyncio.gather(*(_exists(store, ref.uri) for ref in found))
    for ref, exists in zip(found, answers, strict=True):
        if exists is False:
            raise InputDataNotFoundError(ref.where, ref.uri)


def typed_inputs(template: tasks_pb2.TaskTemplate, values: Mapping[str, Any]) -> literals_pb2.LiteralMap:
    """``values`` as the literal map the template's interface declares, checked before anything
    starts. Raises :class:`~executors.core.errors.ExecutorsError` subclasses naming the input (and,
    for a cached task, naming what its cache key lacks, e.g. a version)."""
    inputs = to_literal_map(values, template.interface.inputs, kind="input")
    if is_cacheable(template):
        cache_key(template, inputs)
    return inputs


async def submit(
    store: DataStore, template: tasks_pb2.TaskTemplate, inputs: literals_pb2.LiteralMap, task_ctx: TaskContext
) -> None:
    """Write ``task.pb`` and ``inputs.pb`` into the execution's folder (idempotent: the same
    execution writes the same bytes). Raises :class:`~executors.core.errors.DataStoreError`."""
    await store.write_protobuf(task_ctx.task_template_file, template)
    await store.write_protobuf(task_ctx.inputs_file, inputs)


_SHARED_TEMPLATES: collections.OrderedDict[bytes, tasks_pb2.TaskTemplate] = collections.OrderedDict()
"""Parsed templates by their bytes, most recently read last (see :func:`read_template`)."""
SHARED_TEMPLATES_MAX = 512
SHARED_TEMPLATE_MAX_BYTES = 64 * 1024
_shared_lock = threading.Lock()


async def read_template(store: DataStore, task_ctx: TaskContext) -> tasks_pb2.TaskTemplate:
    """The template an execution was submitted with. Raises ``CorruptDataError`` for a file that
    does not parse as one, and the store's errors as they come.

    The message is shared: executions submitted with the same template bytes (every instance of a
    mapped Airflow task) get the same object, so do not modify it (copy it first). A parsed
    ``TaskTemplate`` costs about 2.6 KiB of native protobuf memory however small the file; a
    triggerer holding 10,000 mapped instances of one task otherwise keeps 10,000 copies of it.
    """
    reference = task_ctx.task_template_file
    data = await store.read_bytes(reference)
    with _shared_lock:
        shared = _SHARED_TEMPLATES.get(data)
        if shared is not None:
            _SHARED_TEMPLATES.move_to_end(data)
            return shared
    template = parse_protobuf(reference, data, tasks_pb2.TaskTemplate)
    if len(data) <= SHARED_TEMPLATE_MAX_BYTES:
        with _shared_lock:
            template = _SHARED_TEMPLATES.setdefault(data, template)
            while len(_SHARED_TEMPLATES) > SHARED_TEMPLATES_MAX:
                _SHARED_TEMPLATES.popitem(last=False)
    return template


def open_driver(
    executor: Executor,
    template: tasks_pb2.TaskTemplate,
    snapshot: DriverSnapshot,
    store: DataStore,
    *,
    policy: PollPolicy,
    on_change: Callable[[TaskContext, TaskStatus], None] | None = None,
    secrets_loader: Callable[[], Awaitable[dict[str, str]]] | None = None,
    output: OutputSink | None = None,
    output_reader: str = "",
) -> ExecutionDriver:
    """A driver for a submitted execution, going on from ``snapshot``: the inputs are read from
    ``inputs.pb`` (only if a start is still needed) and every event is recorded in the store.

    ``output``: where the execution's output goes as it is printed (:mod:`executors.engine.output`),
    the cursor kept in the execution's folder under ``output_reader`` (who copies: an Airflow try
    copies into its own log, so each try keeps its own cursor)."""
    inputs_file = snapshot.task_ctx.inputs_file

    async def load_inputs() -> literals_pb2.LiteralMap:
        return await store.read_protobuf(inputs_file, literals_pb2.LiteralMap)

    return ExecutionDriver.resume(
        executor,
        template,
        snapshot,
        inputs_loader=load_inputs,
        policy=policy,
        event_recorders=(DataStoreEventRecorder(store),),
        on_change=on_change,
        secrets_loader=secrets_loader,
        output=None
        if output is None
        else output_copier(executor, store, snapshot.task_ctx, output, policy, output_reader),
    )


def output_cursor_file(task_ctx: TaskContext, reader: str = "") -> str:
    """Where the copy of an execution's output into ``reader``'s log stands."""
    name = f"output-copied-{path_segment(reader)}.json" if reader else "output-copied.json"
    return join(task_ctx.data_dir, name)


def output_copier(
    executor: Executor,
    store: DataStore,
    task_ctx: TaskContext,
    sink: OutputSink,
    policy: PollPolicy,
    reader: str = "",
    log: Any = None,
) -> OutputCopier:
    """The copier of an execution's output into ``sink``, its cursor kept in the execution's folder."""
    return OutputCopier(
        executor,
        sink,
        store=store,
        cursor_file=output_cursor_file(task_ctx, reader),
        call_timeout=policy.call_timeout,
        log=log,
    )


async def read_typed_outputs(
    executor: Executor, template: tasks_pb2.TaskTemplate, task_ctx: TaskContext
) -> dict[str, Any]:
    """The outputs of a succeeded execution as plain Python values (``{}`` when none are declared).

    Raises :class:`~executors.data.storage.RefusedDataError` for a file refused as it is (a FIFO, a
    symlink out of the folder, over its cap), ``OutputsError`` / ``CorruptDataError`` /
    ``LiteralConversionError`` / ``InterfaceMismatchError`` when what the task wrote does not match
    its interface, and anything else (the store, the backend) as it comes.
    """
    declared = template.interface.outputs.variables
    if not declared:
        return {}
    literals = await executor.resolve_outputs(task_ctx, *declared)
    return from_literal_map(literals_pb2.LiteralMap(literals=literals), template.interface.outputs)
