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
from executors.data.storage import DataStore
from executors.engine.driver import ExecutionDriver
from executors.engine.policy import PollPolicy
from executors.engine.registry import create_executor, known_executor_ids
from executors.runtime import task_io

__all__ = [
    "Cache",
    "CatalogClient",
    "DataStore",
    "ErrorOrigin",
    "EventRecorder",
    "ExecutionDriver",
    "Executor",
    "ExecutorInitializationParameters",
    "ExecutorProperties",
    "ExecutorsError",
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
