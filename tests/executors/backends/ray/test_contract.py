"""The executor contract (:mod:`executors.testing`) against a real, private Ray head (conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from executors import Executor
from executors.testing import ExecutorContract, initialized_executor
from tests.executors.backends.ray.conftest import RayHead, free_port

pytestmark = pytest.mark.e2e


class TestRayExecutorContract(ExecutorContract):
    @pytest.fixture
    def executor_id(self) -> str:
        return "ray"

    @pytest.fixture
    def executor_options(self, ray_head: RayHead) -> dict[str, Any]:
        return {"address": ray_head.address, "request_timeout": 10}

    @pytest.fixture
    def data_dir(self, tmp_path: Path) -> str:
        # A local folder is shared with the workers: the head runs on this machine (loopback address).
        return str(tmp_path / "executions")

    @pytest.fixture
    async def unreachable_executor(self, executor_id: str) -> AsyncIterator[Executor]:
        """A dashboard address where nothing listens (a port just freed)."""
        options = {"address": f"http://127.0.0.1:{free_port()}", "request_timeout": 2}
        async with initialized_executor(executor_id, options) as executor:
            yield executor
