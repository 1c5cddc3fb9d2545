"""The executor contract (:mod:`executors.testing`) against the local executor, for real."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from executors import Executor
from executors.testing import ExecutorContract, initialized_executor

LOST_STATE_ROOT_START = (
    "LocalExecutor.start_task answers RETRYABLE_FAILURE 'LaunchFailed' ('cannot claim the launch in "
    "...') when its state_root cannot be written (Launcher.launch turns the OSError of "
    "Admission.admit into a retryable failure), instead of UNKNOWN: the engine fails the try "
    "instead of asking again"
)


class TestLocalExecutorContract(ExecutorContract):
    expected_failures = {
        "test_start_while_the_backend_is_unreachable_is_not_accepted": LOST_STATE_ROOT_START,
    }

    @pytest.fixture
    def executor_id(self) -> str:
        return "local"

    @pytest.fixture
    def executor_options(self, tmp_path: Path) -> dict[str, Any]:
        return {"state_root": str(tmp_path / "state"), "kill_grace_period": 2}

    @pytest.fixture
    def data_dir(self, tmp_path: Path) -> str:
        return str(tmp_path / "executions")

    @pytest.fixture
    async def unreachable_executor(self, executor_id: str, tmp_path: Path) -> AsyncIterator[Executor]:
        """The local executor's backend is its state root: one that was fine at ``initialize`` and
        is gone since (its mount vanished), a regular file now standing where the folder was."""
        root = tmp_path / "lost-state"
        async with initialized_executor(executor_id, {"state_root": str(root), "kill_grace_period": 2}) as ex:
            shutil.rmtree(root)
            root.write_text("not a folder: the state root's filesystem is gone\n")
            yield ex
