"""The container executor: the task's image runs, through the Docker Engine API (Docker, Podman)."""

from __future__ import annotations

from executors.backends.docker.executor import DockerExecutor

__all__ = ["DockerExecutor"]
