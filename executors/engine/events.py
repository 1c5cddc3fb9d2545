"""TaskExecutionEvent: one flyteidl event per phase (or phase version) change, and where it goes."""

from __future__ import annotations

import datetime as dt

from flyteidl.core import execution_pb2
from flyteidl.event import event_pb2

from executors.core.context import TaskContext
from executors.core.phase import TaskPhase
from executors.core.status import ErrorOrigin, TaskStatus
from executors.data.storage import DataStore, join

_EVENT_PHASE = {
    # flyteplugins go/tasks/v1/events/event_utils.go, with the IDL's newer RETRYABLE_FAILED and
    # WAITING_FOR_RESOURCES used where they say more than the v1 mapping did.
    TaskPhase.QUEUED: execution_pb2.TaskExecution.QUEUED,
    TaskPhase.RUNNING: execution_pb2.TaskExecution.RUNNING,
    TaskPhase.SUCCEEDED: execution_pb2.TaskExecution.SUCCEEDED,
    TaskPhase.PERMANENT_FAILURE: execution_pb2.TaskExecution.FAILED,
    TaskPhase.RETRYABLE_FAILURE: execution_pb2.TaskExecution.RETRYABLE_FAILED,
    TaskPhase.NOT_READY: execution_pb2.TaskExecution.WAITING_FOR_RESOURCES,
    TaskPhase.UNDEFINED: execution_pb2.TaskExecution.UNDEFINED,
    TaskPhase.UNKNOWN: execution_pb2.TaskExecution.UNDEFINED,
}

_ERROR_KIND = {
    ErrorOrigin.USER: execution_pb2.ExecutionError.USER,
    ErrorOrigin.SYSTEM: execution_pb2.ExecutionError.SYSTEM,
    ErrorOrigin.UNKNOWN: execution_pb2.ExecutionError.UNKNOWN,
}


def event_phase(phase: TaskPhase) -> int:
    """The ``flyteidl.core.TaskExecution.Phase`` reported for a :class:`TaskPhase`."""
    return int(_EVENT_PHASE[phase])


def build_task_event(
    task_ctx: TaskContext,
    status: TaskStatus,
    *,
    producer_id: str,
    task_type: str = "",
    occurred_at: dt.datetime | None = None,
) -> event_pb2.TaskExecutionEvent:
    """The event announcing ``status`` for the execution in ``task_ctx``."""
    ident = task_ctx.task_execution_id.id
    event = event_pb2.TaskExecutionEvent(
        task_id=ident.task_id,
        parent_node_execution_id=ident.node_execution_id,
        retry_attempt=ident.retry_attempt,
        phase=event_phase(status.phase),
        phase_version=status.phase_version,
        producer_id=producer_id,
        input_uri=task_ctx.inputs_file,
        task_type=task_type,
        reason=str(status.err.message) if status.err else "",
    )
    when = occurred_at or status.occurred_at or dt.datetime.now(dt.UTC)
    event.occurred_at.FromDatetime(when.astimezone(dt.UTC).replace(tzinfo=None))
    event.reported_at.GetCurrentTime()
    if status.phase is TaskPhase.SUCCEEDED:
        event.output_uri = task_ctx.outputs_file
    elif status.err is not None and status.phase in (
        TaskPhase.PERMANENT_FAILURE,
        TaskPhase.RETRYABLE_FAILURE,
        TaskPhase.UNDEFINED,
    ):
        event.error.CopyFrom(
            execution_pb2.ExecutionError(
                code=status.err.code,
                message=status.err.message,
                error_uri=task_ctx.error_file,
                kind=_ERROR_KIND[status.err.origin],
            )
        )
    return event


class DataStoreEventRecorder:
    """Keeps every event of an execution in its folder: ``events/<seq>-<phase>-v<version>.pb``.

    The folder is found from the event's ``input_uri`` (the execution's ``inputs.pb``). The
    sequence number is the event's ``occurred_at`` in microseconds, so names sort in time order
    and re-recording the same event (after a restart) overwrites rather than duplicates.
    """

    def __init__(self, store: DataStore) -> None:
        self._store = store

    async def record_task_event(self, event: event_pb2.TaskExecutionEvent) -> None:
        folder = event.input_uri.rsplit("/", 1)[0]
        stamp = event.occurred_at.seconds * 1_000_000 + event.occurred_at.nanos // 1000
        phase = execution_pb2.TaskExecution.Phase.Name(event.phase).lower()
        name = f"{stamp:020d}-{phase}-v{event.phase_version}.pb"
        await self._store.write_protobuf(join(folder, "events", name), event)
