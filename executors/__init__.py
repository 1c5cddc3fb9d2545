"""Flyte-style task executors, engine-agnostic (this package never imports Airflow).

The public surface is re-exported here; modules are one concept each.
"""

from __future__ import annotations

from executors.context import OwnerReference, TaskContext, TaskExecutionID, TaskOverrides, generated_name_for
from executors.driver import ExecutionDriver, PollPolicy, Waker
from executors.errors import (
    CorruptDataError,
    DataNotFoundError,
    DataStoreError,
    DuplicateExecutorError,
    ExecutorsError,
    InterfaceMismatchError,
    LiteralConversionError,
    OutputsError,
    TemplateRenderError,
    UnknownExecutorError,
)
from executors.events import DataStoreEventRecorder, build_task_event
from executors.interface import (
    CatalogClient,
    EnqueueOwner,
    EventRecorder,
    Executor,
    ExecutorInitializationParameters,
    ExecutorProperties,
    MetricsScope,
    NullMetrics,
)
from executors.outputs import OutputsResolver, read_error_document, status_from_error_document
from executors.phase import TaskPhase
from executors.registry import (
    ENTRY_POINT_GROUP,
    ExecutorRegistry,
    create_executor,
    default_registry,
    get_executor_class,
    known_executor_ids,
)
from executors.status import (
    TASK_STATUS_NOT_READY,
    TASK_STATUS_QUEUED,
    TASK_STATUS_RUNNING,
    TASK_STATUS_SUCCEEDED,
    TASK_STATUS_UNDEFINED,
    TASK_STATUS_UNKNOWN,
    CustomState,
    ErrorOrigin,
    TaskError,
    TaskStatus,
    not_ready_failure,
    permanent_failure,
    retryable_failure,
    unknown_status,
)
from executors.storage import DataStore

__all__ = [
    "ENTRY_POINT_GROUP",
    "TASK_STATUS_NOT_READY",
    "TASK_STATUS_QUEUED",
    "TASK_STATUS_RUNNING",
    "TASK_STATUS_SUCCEEDED",
    "TASK_STATUS_UNDEFINED",
    "TASK_STATUS_UNKNOWN",
    "CatalogClient",
    "CorruptDataError",
    "CustomState",
    "DataNotFoundError",
    "DataStore",
    "DataStoreError",
    "DataStoreEventRecorder",
    "DuplicateExecutorError",
    "EnqueueOwner",
    "ErrorOrigin",
    "EventRecorder",
    "ExecutionDriver",
    "Executor",
    "ExecutorInitializationParameters",
    "ExecutorProperties",
    "ExecutorRegistry",
    "ExecutorsError",
    "InterfaceMismatchError",
    "LiteralConversionError",
    "MetricsScope",
    "NullMetrics",
    "OutputsError",
    "OutputsResolver",
    "OwnerReference",
    "PollPolicy",
    "TaskContext",
    "TaskError",
    "TaskExecutionID",
    "TaskOverrides",
    "TaskPhase",
    "TaskStatus",
    "TemplateRenderError",
    "UnknownExecutorError",
    "Waker",
    "build_task_event",
    "create_executor",
    "default_registry",
    "generated_name_for",
    "get_executor_class",
    "known_executor_ids",
    "not_ready_failure",
    "permanent_failure",
    "read_error_document",
    "retryable_failure",
    "status_from_error_document",
    "unknown_status",
]
