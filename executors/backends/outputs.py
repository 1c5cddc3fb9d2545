"""Reading what a finished execution left behind: ``outputs.pb`` and ``error.pb``.

The task wrote both, so both are read through the guarded reader (:mod:`executors.data.task_files`):
inside the execution folder, regular files only, at most :data:`MAX_OUTPUTS_BYTES` /
:data:`MAX_ERROR_BYTES`.
"""

from __future__ import annotations

import os

from flyteidl.core import errors_pb2, execution_pb2, literals_pb2

from executors.core.context import TaskContext
from executors.core.errors import DataNotFoundError, OutputsError
from executors.core.status import ErrorOrigin, TaskError, TaskStatus, permanent_failure, retryable_failure
from executors.data.storage import DataStore, is_local, local_path
from executors.data.task_files import MAX_ERROR_BYTES, MAX_OUTPUTS_BYTES, RefusedDataError

__all__ = [
    "MAX_ERROR_BYTES",
    "MAX_OUTPUTS_BYTES",
    "REFUSED_ERROR_FILE",
    "OutputsResolver",
    "read_error_document",
    "status_from_error_document",
    "task_error_from_document",
    "task_file_root",
]

REFUSED_ERROR_FILE = "RefusedErrorFile"
"""The error code of a task whose ``error.pb`` is refused (a FIFO, a device, a directory, a symlink
out of its folder, too large): a permanent failure whose message names the file and the problem."""


def task_file_root(task_ctx: TaskContext, reference: str) -> str | None:
    """The folder a task-written local file must stay inside: the execution folder
    (``task_ctx.data_dir``) when the file is in it, else the file's own folder (a context whose
    ``outputs_file`` points elsewhere); ``None`` for a file on an object store."""
    if not is_local(reference):
        return None
    path = os.path.abspath(local_path(reference))
    if is_local(task_ctx.data_dir):
        data_dir = os.path.abspath(local_path(task_ctx.data_dir))
        if path.startswith(data_dir.rstrip(os.sep) + os.sep):
            return data_dir
    return os.path.dirname(path)


_ORIGINS = {
    execution_pb2.ExecutionError.USER: ErrorOrigin.USER,
    execution_pb2.ExecutionError.SYSTEM: ErrorOrigin.SYSTEM,
}


class OutputsResolver:
    """Default ``resolve_outputs``: read the ``LiteralMap`` in ``task_ctx.outputs_file``.

    Errors: :class:`OutputsError` naming the file when it is missing, and naming the variable and
    the variables present when a requested one is absent; :class:`executors.core.errors.CorruptDataError`
    when the file does not parse, and its subclass :class:`executors.data.task_files.RefusedDataError`
    when it is not a regular file, is a symlink out of the execution folder, or is larger than
    ``max_outputs_bytes`` (default :data:`MAX_OUTPUTS_BYTES`, 64 MiB).
    """

    def __init__(self, data_store: DataStore, *, max_outputs_bytes: int | None = None) -> None:
        self._store = data_store
        self.max_outputs_bytes = max_outputs_bytes

    async def read_outputs(self, task_ctx: TaskContext) -> literals_pb2.LiteralMap:
        reference = task_ctx.outputs_file
        try:
            return await self._store.read_protobuf(
                reference,
                literals_pb2.LiteralMap,
                within=task_file_root(task_ctx, reference),
                max_bytes=self.max_outputs_bytes if self.max_outputs_bytes is not None else MAX_OUTPUTS_BYTES,
            )
        except DataNotFoundError as exc:
            raise OutputsError(f"outputs file {task_ctx.outputs_file} not found") from exc

    async def resolve_outputs(
        self, task_ctx: TaskContext, *output_variables: str
    ) -> dict[str, literals_pb2.Literal]:
        """Return the requested variables (all of them when none is named)."""
        outputs = await self.read_outputs(task_ctx)
        if not output_variables:
            return dict(outputs.literals)
        missing = [v for v in output_variables if v not in outputs.literals]
        if missing:
            present = ", ".join(sorted(outputs.literals)) or "none"
            raise OutputsError(
                f"output variable(s) {', '.join(repr(m) for m in missing)} missing from "
                f"{task_ctx.outputs_file} (present: {present})"
            )
        return {v: outputs.literals[v] for v in output_variables}


def task_error_from_document(document: errors_pb2.ErrorDocument) -> TaskError:
    container = document.error
    return TaskError(
        code=container.code or "UserError",
        message=container.message,
        origin=_ORIGINS.get(container.origin, ErrorOrigin.UNKNOWN),
    )


def status_from_error_document(document: errors_pb2.ErrorDocument) -> TaskStatus:
    """A RECOVERABLE error is a retryable failure; NON_RECOVERABLE (the default) is permanent."""
    err = task_error_from_document(document)
    if document.error.kind == errors_pb2.ContainerError.RECOVERABLE:
        return retryable_failure(err)
    return permanent_failure(err)


async def read_error_document(
    store: DataStore, reference: str, *, within: str | None = None, max_bytes: int | None = None
) -> errors_pb2.ErrorDocument | None:
    """The ``ErrorDocument`` at ``reference``, or ``None`` when the task wrote none (or an empty one).

    A file that exists but does not parse raises :class:`executors.core.errors.CorruptDataError`.

    A file we refuse to read (not a regular file, a symlink out of ``within``, larger than
    ``max_bytes``: see :mod:`executors.data.task_files`) gives a NON_RECOVERABLE document with code
    :data:`REFUSED_ERROR_FILE` whose message names the file and the problem: the task made it so
    on purpose or by a bug, a retry would most likely do the same, and the file itself cannot tell
    us more. ``within`` defaults to the folder of a local ``reference``; a caller with the task's
    context passes :func:`task_file_root` (the execution folder); ``max_bytes`` defaults to
    :data:`MAX_ERROR_BYTES` (1 MiB).
    """
    if within is None and is_local(reference):
        within = os.path.dirname(local_path(reference)) or os.curdir
    try:
        document = await store.read_protobuf(
            reference,
            errors_pb2.ErrorDocument,
            within=within,
            max_bytes=max_bytes if max_bytes is not None else MAX_ERROR_BYTES,
        )
    except DataNotFoundError:
        return None
    except RefusedDataError as exc:
        return _refused_error_document(exc)
    if not document.error.code and not document.error.message:
        # An empty file (the task died while writing it) says nothing: fall back to the exit code.
        return None
    return document


def _refused_error_document(exc: RefusedDataError) -> errors_pb2.ErrorDocument:
    document = errors_pb2.ErrorDocument()
    document.error.code = REFUSED_ERROR_FILE
    document.error.message = f"the task's error file was refused: {exc}"
    document.error.kind = errors_pb2.ContainerError.NON_RECOVERABLE
    document.error.origin = execution_pb2.ExecutionError.USER
    return document
