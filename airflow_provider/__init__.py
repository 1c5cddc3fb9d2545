"""Apache Airflow provider for Flyte-style task executors: a thin adapter over ``executors``.

Import the operator from ``airflow_provider.operators``; everything here is lazy so that importing
the package (which Airflow's provider discovery does) costs nothing.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["Cache", "ExecutorOperator", "ExecutorTrigger", "executor_task"]


def __getattr__(name: str) -> Any:
    # Lazy: Airflow imports this package during provider discovery, which must stay cheap.
    if name == "Cache":
        from executors import Cache

        return Cache
    if name == "ExecutorOperator":
        from airflow_provider.operators import ExecutorOperator

        return ExecutorOperator
    if name == "ExecutorTrigger":
        from airflow_provider.triggers import ExecutorTrigger

        return ExecutorTrigger
    if name == "executor_task":
        from airflow_provider.decorators import executor_task

        return executor_task
    raise AttributeError(f"module 'airflow_provider' has no attribute {name!r}")
