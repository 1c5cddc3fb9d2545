"""The executor contract (:mod:`executors.testing`) against a real engine: Podman's Docker API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from executors import Executor
from executors.testing import ExecutorContract, initialized_executor

pytestmark = pytest.mark.e2e


class TestDockerExecutorContract(ExecutorContract):
    @pytest.fixture
    def executor_id(self) -> str:
        return "docker"

    @pytest.fixture
    def executor_options(self, docker_options: dict[str, Any]) -> dict[str, Any]:
        return docker_options

    @pytest.fixture
    def data_dir(self, tmp_path: Path) -> str:
        # Bind-mounted into each container at the same path (the engine runs on this machine).
        return str(tmp_path / "executions")

    @pytest.fixture
    async def unreachable_executor(
        self, executor_id: str, docker_options: dict[str, Any], tmp_path: Path
    ) -> AsyncIterator[Executor]:
        """A socket path where no engine listens."""
        options = {**docker_options, "address": f"unix://{tmp_path}/no-engine.sock", "request_timeout": 2}
        async with initialized_executor(executor_id, options) as executor:
            yield executor
