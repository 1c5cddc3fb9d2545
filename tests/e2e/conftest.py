"""One real Airflow stack for the whole e2e session, and its logs on every failure."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.airflow_stack import AirflowStack, attach_stack_logs

POLL_INTERVAL = 1.0
_SESSION = {"failed": False}  # set by the report hook: keep AIRFLOW_HOME for inspection


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "dag_id(name): the DAG whose task logs a failure report shows")


@pytest.fixture(scope="session")
def airflow_stack() -> Iterator[AirflowStack]:
    """api-server, scheduler (LocalExecutor), dag-processor and triggerer over SQLite.

    The temporary AIRFLOW_HOME is removed afterwards unless the session failed, or
    ``E2E_KEEP_HOME=1`` is set (its path is printed either way).
    """
    home = Path(tempfile.mkdtemp(prefix="airflow-e2e-"))
    stack = AirflowStack(home, poll_interval=POLL_INTERVAL)
    print(f"\n[e2e] AIRFLOW_HOME={home}")
    try:
        try:
            stack.start()
        except BaseException:
            _SESSION["failed"] = True
            raise
        print(f"[e2e] stack healthy in {stack.startup_seconds:.1f}s at {stack.base_url}")
        yield stack
    finally:
        stack.stop()
        leftovers = stack.leftover_processes()
        if leftovers:  # stop() kills them; this only reports what needed the last resort
            print(f"[e2e] processes still alive after stop: {[p.pid for p in leftovers]}")
        if os.environ.get("E2E_KEEP_HOME") or _SESSION["failed"]:
            print(f"[e2e] kept {home} for inspection")
        else:
            shutil.rmtree(home, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """On a failed e2e test, attach the tails of the component and task logs to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]  # read by fixtures (a browser's screenshot)
    if report.when != "call" or not report.failed or hasattr(report, "wasxfail"):
        return
    if attach_stack_logs(item, report, "airflow_stack"):
        _SESSION["failed"] = True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/e2e is an e2e test, even one that forgets ``pytestmark``."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)
