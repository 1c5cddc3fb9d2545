"""Reading what a finished execution left behind: ``outputs.pb`` and ``error.pb``."""

from __future__ import annotations

from flyteidl.core import errors_pb2, execution_pb2, literals_pb2

from executors.context import TaskContext
from executors.errors import DataNotFoundError, OutputsError
from executors.status import ErrorOrigin, TaskError, TaskStatus, permanent_failure, retryable_failure
from executors.storage import DataStore

_ORIGINS = {
    execution_pb2.ExecutionError.USER: ErrorOrigin.USER,
    execution_pb2.ExecutionError.SYSTEM: ErrorOrigin.SYSTEM,
}


class OutputsResolver:
    """Default ``resolve_outputs``: read the ``LiteralMap`` in ``task_ctx.outputs_file``.

    Errors: :class:`OutputsError` naming the file when it is missing, and naming the variable and
    the variables present when a requested one is absent; :class:`executors.errors.CorruptDataError`
    when the file does not parse.
    """

    def __init__(self, data_store: DataStore) -> None:
        self._store = data_store

    async def read_outputs(self, task_ctx: TaskContext) -> literals_pb2.LiteralMap:
        try:
            return await self._store.read_protobuf(task_ctx.outputs_file, literals_pb2.LiteralMap)
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


async def read_error_document(store: DataStore, reference: str) -> errors_pb2.ErrorDocument | None:
    """The ``ErrorDocument`` at ``reference``, or ``None`` when the task wrote none (or an empty one).

    A file that exists but does not parse raises :class:`executors.errors.CorruptDataError`.
    """
    try:
        document = await store.read_protobuf(reference, errors_pb2.ErrorDocument)
    except DataNotFoundError:
        return None
    if not document.error.code and not document.error.message:
        # An empty file (the task died while writing it) says nothing: fall back to the exit code.
        return None
    return document
