"""The Ray executor: runs container tasks as Ray jobs through the dashboard's Jobs REST API."""

from __future__ import annotations

from executors.backends.ray.executor import RayExecutor

__all__ = ["RayExecutor"]
