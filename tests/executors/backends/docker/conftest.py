"""A real container engine for the container executor's tests: Podman's Docker-compatible service.

One ``podman system service`` per session on a private socket, and the test image
(``harness/podman.py``: Debian 12, Python 3.11, flytekit and this project in ``/opt/venv``, and a
marker file that exists only in the image), built once and cached in ``.cache/podman``. At the end
of the session no container the executor made may be left (found by label): the teardown removes
any and fails the suite, naming them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from executors import DataStore, ExecutorInitializationParameters, TaskContext
from executors.backends.docker import DockerExecutor
from harness import podman


@pytest.fixture(scope="session")
def test_image() -> str:
    return podman.ensure_test_image()


@pytest.fixture(scope="session")
def podman_service(test_image: str) -> Iterator[podman.PodmanService]:
    service = podman.start_service()
    try:
        yield service
    finally:
        left = podman.leftover_containers()
        podman.remove_containers(left)
        service.stop()
        if left:
            pytest.fail(f"the container suite left {len(left)} container(s) behind: {', '.join(left)}")


@pytest.fixture
def docker_options(podman_service: podman.PodmanService, test_image: str) -> dict[str, Any]:
    """Options of an executor on the session's engine; tasks without an image run the test image."""
    return {"address": podman_service.address, "default_image": test_image, "on_finish": "delete"}


@pytest.fixture
def make_ctx(make_ctx: Callable[..., TaskContext]) -> Callable[..., TaskContext]:
    """The suite's ``make_ctx``, with a run name unique to each call: container names (the
    generated names) must not collide across tests on the one engine."""

    def make(**kwargs: object) -> TaskContext:
        kwargs.setdefault("run", f"run-{uuid.uuid4().hex[:10]}")
        return make_ctx(**kwargs)

    return make


@pytest.fixture
async def docker_executor(docker_options: dict[str, Any], store: DataStore) -> AsyncIterator[DockerExecutor]:
    executor = DockerExecutor(**docker_options)
    await executor.initialize(ExecutorInitializationParameters(data_store=store))
    yield executor
    await executor.close()
