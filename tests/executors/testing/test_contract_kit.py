"""The contract kit itself, used as a third party would: in a project of its own (pytest-asyncio in
strict mode, none of this repository's conftest), against local executors broken on purpose, each
of which must fail exactly the check that names its bug."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

THIRD_PARTY_TESTS = textwrap.dedent(
    '''
    import os
    import uuid

    import pytest
    import pytest_asyncio

    from executors import ExecutorInitializationParameters
    from executors.backends.local import LocalExecutor
    from executors.testing import ExecutorContract, initialized_executor


    class Forgetful(LocalExecutor):
        """Forgets every earlier start: each start_task launches the task again."""

        async def start_task(self, task_ctx, task, inputs):
            state = self.state_dir(task_ctx)
            if os.path.exists(state):
                os.rename(state, f"{state}.forgotten-{uuid.uuid4().hex}")
            return await super().start_task(task_ctx, task, inputs)


    class RaisingKill(LocalExecutor):
        """Refuses to kill what it never started."""

        async def kill_task(self, task_ctx, reason):
            if not os.path.exists(self.state_dir(task_ctx)):
                raise RuntimeError(f"no execution {task_ctx.generated_name}")
            await super().kill_task(task_ctx, reason)


    class Local(ExecutorContract):
        @pytest.fixture
        def executor_id(self):
            return "local"

        @pytest.fixture
        def executor_options(self, tmp_path):
            return {"state_root": str(tmp_path / "state"), "kill_grace_period": 1}

        @pytest.fixture
        def data_dir(self, tmp_path):
            return str(tmp_path / "executions")


    class Healthy(Local):
        @pytest_asyncio.fixture
        async def executor(self, executor_id, executor_options):
            async with initialized_executor(executor_id, executor_options) as executor:
                yield executor


    class TestHealthy(Healthy):
        expected_failures = {"test_kill_of_a_finished_execution_is_a_no_op": "listed, yet it passes"}
        skipped_checks = {"test_read_logs_returns_what_the_task_printed": "keeps no logs"}


    class TestTypo(Healthy):
        expected_failures = {"test_no_such_check": "a typo"}


    class TestForgetful(Local):
        @pytest.fixture
        def executor(self, executor_options):
            async def make():  # a factory: the kit closes what it makes
                executor = Forgetful(**executor_options)
                await executor.initialize(ExecutorInitializationParameters())
                return executor

            return make


    class TestRaisingKill(Local):
        @pytest_asyncio.fixture
        async def executor(self, executor_options):
            executor = RaisingKill(**executor_options)
            await executor.initialize(ExecutorInitializationParameters())
            yield executor
            await executor.close()
    '''
)

SELECTION = (
    "(TestHealthy and (finished or read_logs or outputs_pb)) or (TestTypo and registered) "
    "or (TestForgetful and start_is_idempotent) or (TestRaisingKill and never_started)"
)


def outcomes(report: Path) -> dict[str, tuple[str, str]]:
    """``Class::test`` -> (outcome, message) from a JUnit XML report."""
    found = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome, message = child.tag, f"{child.get('message', '')} {child.text or ''}"
        found[name] = (outcome, message)
    return found


def test_the_kit_fails_exactly_the_broken_checks(tmp_path: Path) -> None:
    (tmp_path / "test_my_backend.py").write_text(THIRD_PARTY_TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_mode = strict\n")
    report = tmp_path / "report.xml"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-k", SELECTION,
         f"--junitxml={report}", "test_my_backend.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert report.exists(), run.stdout + run.stderr
    got = outcomes(report)
    summary = {name: outcome for name, (outcome, _) in got.items()}
    assert summary == {
        "TestHealthy::test_kill_of_a_finished_execution_is_a_no_op": "failure",  # XPASS(strict)
        "TestHealthy::test_outputs_pb_means_succeeded_and_resolve_outputs_returns_it": "passed",
        "TestHealthy::test_read_logs_returns_what_the_task_printed": "skipped",
        "TestTypo::test_registered_under_its_id": "error",
        "TestForgetful::test_start_is_idempotent": "failure",
        "TestRaisingKill::test_kill_of_an_execution_never_started_is_a_no_op": "failure",
    }, run.stdout[-4000:]
    assert "XPASS(strict)" in got["TestHealthy::test_kill_of_a_finished_execution_is_a_no_op"][1]
    assert "keeps no logs" in got["TestHealthy::test_read_logs_returns_what_the_task_printed"][1]
    assert "test_no_such_check" in got["TestTypo::test_registered_under_its_id"][1]
    # Which assertion catches it depends on how the starts interleave: a failed one, in any case.
    assert "AssertionError" in got["TestForgetful::test_start_is_idempotent"][1]
    assert "no execution" in got["TestRaisingKill::test_kill_of_an_execution_never_started_is_a_no_op"][1]


def test_the_kit_never_imports_airflow() -> None:
    probe = (
        "import sys, executors.testing, executors.testing.reattach\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'airflow'))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
