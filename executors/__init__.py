"""Flyte-style task executors, engine-agnostic (this package never imports Airflow).

The curated surface is here; everything else lives in one room each:

* :mod:`executors.core`     the seed's types: phases, statuses, ``Executor``, ``TaskContext``
* :mod:`executors.data`     literals <-> Python values, task templates, fsspec storage
* :mod:`executors.engine`   submit an execution, drive it to a final phase, kill it; the registry
* :mod:`executors.runtime`  what runs inside the task (``task_io``, the function runner)
* :mod:`executors.backends` the local and Ray executors, and what container executors share
* :mod:`executors.catalog`  the result cache (Flyte's catalog)
* :mod:`executors.testing`  the contract every executor must pass
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from executors.core.cache import Cache
    from executors.core.context import OwnerReference, TaskContext, TaskExecutionID, TaskOverrides
    from executors.core.errors import ExecutorsError
    from executors.core.interface import (
        CatalogClient,
        EventRecorder,
        Executor,
        ExecutorInitializationParameters,
        ExecutorProperties,
        MetricsScope,
    )
    from executors.core.phase import TaskPhase
    from executors.core.status import ErrorOrigin, TaskError, TaskStatus, permanent_failure, retryable_failure
    from executors.data.files import Directory, File
    from executors.data.storage import DataStore
    from executors.engine.driver import ExecutionDriver
    from executors.engine.policy import PollPolicy
    from executors.engine.registry import create_executor, known_executor_ids
    from executors.runtime import task_io

# Lazy: the task-side runtime (``python -m executors.runtime.runner``) and Airflow's provider
# discovery import this package; neither must pay for the engine, fsspec or the registry.
_WHERE = {
    "Cache": "executors.core.cache",
    "CatalogClient": "executors.core.interface",
    "DataStore": "executors.data.storage",
    "Directory": "executors.data.files",
    "ErrorOrigin": "executors.core.status",
    "EventRecorder": "executors.core.interface",
    "ExecutionDriver": "executors.engine.driver",
    "Executor": "executors.core.interface",
    "ExecutorInitializationParameters": "executors.core.interface",
    "ExecutorProperties": "executors.core.interface",
    "ExecutorsError": "executors.core.errors",
    "File": "executors.data.files",
    "MetricsScope": "executors.core.interface",
    "OwnerReference": "executors.core.context",
    "PollPolicy": "executors.engine.policy",
    "TaskContext": "executors.core.context",
    "TaskError": "executors.core.status",
    "TaskExecutionID": "executors.core.context",
    "TaskOverrides": "executors.core.context",
    "TaskPhase": "executors.core.phase",
    "TaskStatus": "executors.core.status",
    "create_executor": "executors.engine.registry",
    "known_executor_ids": "executors.engine.registry",
    "permanent_failure": "executors.core.status",
    "retryable_failure": "executors.core.status",
    "task_io": "executors.runtime.task_io",
}

__all__ = [
    "Cache",
    "CatalogClient",
    "DataStore",
    "Directory",
    "ErrorOrigin",
    "EventRecorder",
    "ExecutionDriver",
    "Executor",
    "ExecutorInitializationParameters",
    "ExecutorProperties",
    "ExecutorsError",
    "File",
    "MetricsScope",
    "OwnerReference",
    "PollPolicy",
    "TaskContext",
    "TaskError",
    "TaskExecutionID",
    "TaskOverrides",
    "TaskPhase",
    "TaskStatus",
    "create_executor",
    "known_executor_ids",
    "permanent_failure",
    "retryable_failure",
    "task_io",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'executors' has no attribute {name!r}")
    value = (
        importlib.import_module(module)
        if name == "task_io"
        else getattr(importlib.import_module(module), name)
    )
    globals()[name] = value
    return value
