"""The local process executor: the embedded default, needs nothing else running."""

from __future__ import annotations

from executors.backends.local.executor import LocalExecutor

__all__ = ["LocalExecutor"]
