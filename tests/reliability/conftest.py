"""One real Airflow stack on a private PostgreSQL cluster (and one private Ray head) per session.

``rel_stack``: ``airflow db migrate`` on PostgreSQL (Debian's server package, started here as a
throw-away cluster: see postgres.py), then api-server, scheduler (LocalExecutor, parallelism 8),
dag-processor and triggerer over ``tests/reliability/dags``, poll interval 1 s. Every component
gets a tiny ``*.dist-info`` on its ``PYTHONPATH`` whose entry points register the test-only
executors ``crashy-local`` and ``crashy-docker`` (crashy_executor.py) in the worker *and* in the
triggerer, exactly as an installed third-party executor would be.

``rel_ray``: a private Ray head (started like tests/executors/backends/ray does: its own ports and temp dir,
stopped by pid), started only when a Ray test runs.

Missing PostgreSQL or drivers FAIL the suite (they never skip it) with the exact install command.
The stack's AIRFLOW_HOME is kept when a test failed, or with ``E2E_KEEP_HOME=1``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.airflow_stack import REPO, AirflowStack, StackError, attach_stack_logs, wait_until
from tests.reliability.dags.reliability_dags import DOCKER_CONN_ID
from tests.reliability.helpers import POLL_INTERVAL, create_connection, report
from tests.reliability.postgres import PostgresCluster, PostgresUnavailable

HERE = Path(__file__).resolve().parent
RELIABILITY_DAGS = HERE / "dags"
CRASHY_ENTRY_POINTS = (
    "crashy-local = tests.reliability.crashy_executor:CrashyLocalExecutor",
    "crashy-docker = tests.reliability.crashy_executor:CrashyDockerExecutor",
)
_SESSION = {"failed": False}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "dag_id(name): the DAG whose task logs a failure report shows")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/reliability is an e2e test, even one that forgets ``pytestmark``."""
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def rel_postgres() -> Iterator[PostgresCluster]:
    try:
        cluster = PostgresCluster.create()
    except PostgresUnavailable as exc:
        problem = str(exc)
    else:
        problem = ""
    if problem:  # a failure, never a skip: CI must install it (the message says how)
        pytest.fail(problem, pytrace=False)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    report(f"PostgreSQL ({cluster.bin_dir.parent.name}) up in {cluster.startup_seconds:.1f}s: {cluster.url}")
    try:
        yield cluster
    finally:
        cluster.stop()
        left = cluster.server_processes()
        if left:
            report(f"PostgreSQL processes still alive after stop: {[p.pid for p in left]}")


def _install_entry_point(site: Path) -> None:
    """What ``pip install`` of a distribution declaring the ``crashy-*`` executors leaves."""
    info = site / "reliability_crashy_executor-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: reliability-crashy-executor\nVersion: 1.0\n")
    lines = "".join(f"{entry}\n" for entry in CRASHY_ENTRY_POINTS)
    (info / "entry_points.txt").write_text(f"[airflow_provider_executors.executors]\n{lines}")


@pytest.fixture(scope="session")
def rel_stack(rel_postgres: PostgresCluster) -> Iterator[AirflowStack]:
    home = Path(tempfile.mkdtemp(prefix="airflow-rel-"))
    site = home / "site"
    _install_entry_point(site)
    pythonpath = [str(site), str(REPO), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    state_root = str(home / "local-state")
    stack = AirflowStack(
        home,
        RELIABILITY_DAGS,
        poll_interval=POLL_INTERVAL,
        database_url=rel_postgres.url,
        extra_env={
            "PYTHONPATH": os.pathsep.join(pythonpath),
            "AIRFLOW__PROVIDER_EXECUTORS__EXECUTOR_CONFIG": json.dumps(
                {"local": {"state_root": state_root}, "crashy-local": {"state_root": state_root}}
            ),
        },
    )
    report(f"AIRFLOW_HOME={home}")
    try:
        try:
            stack.start(timeout=240)
        except BaseException:
            _SESSION["failed"] = True
            raise
        tables = rel_postgres.airflow_tables()
        assert {"dag_run", "task_instance", "trigger"} <= tables, f"not Airflow's database: {sorted(tables)}"
        report(
            f"Airflow stack on PostgreSQL healthy in {stack.startup_seconds:.1f}s at {stack.base_url} "
            f"({len(tables)} tables in {rel_postgres.database!r})"
        )
        yield stack
    finally:
        stack.stop()
        leftovers = stack.leftover_processes()
        if leftovers:  # stop() kills them; this only reports what needed the last resort
            report(f"processes still alive after the stack stopped: {[p.pid for p in leftovers]}")
        if os.environ.get("E2E_KEEP_HOME") or _SESSION["failed"]:
            report(f"kept {home} for inspection")
        else:
            shutil.rmtree(home, ignore_errors=True)


class RelRay:
    """The private Ray head, and how long Ray alone takes to stop a running job."""

    def __init__(self, head: Any) -> None:
        self.head = head
        self.address: str = head.address
        self.stop_seconds: float | None = None

    def calibrate_stop(self) -> float:
        """Submit a sleeping job, ask Ray to stop it once it runs: seconds until STOPPED."""
        submission_id = f"calibrate-{os.getpid()}-{int(time.time())}"
        body = {"entrypoint": "python -c 'import time; time.sleep(600)'", "submission_id": submission_id}
        httpx.post(f"{self.address}/api/jobs/", json=body, timeout=30).raise_for_status()

        def status() -> str:
            return str(httpx.get(f"{self.address}/api/jobs/{submission_id}", timeout=10).json()["status"])

        wait_until(lambda: status() == "RUNNING", 60, "the calibration job to run", interval=0.1)
        time.sleep(1.0)  # its entrypoint is up, as a task's would be
        t0 = time.monotonic()
        httpx.post(f"{self.address}/api/jobs/{submission_id}/stop", timeout=30).raise_for_status()
        wait_until(lambda: status() == "STOPPED", 30, "the calibration job to stop", interval=0.05)
        self.stop_seconds = time.monotonic() - t0
        return self.stop_seconds


@pytest.fixture(scope="session")
def rel_ray() -> Iterator[RelRay]:
    from tests.executors.backends.ray.conftest import start_ray_head, stop_ray_head

    head = start_ray_head()
    report(f"Ray head up in {head.startup_seconds:.1f}s, dashboard {head.address}")
    try:
        ray = RelRay(head)
        try:
            report(f"Ray alone stops a running job in {ray.calibrate_stop():.2f}s (stop request -> STOPPED)")
        except StackError as exc:
            report(f"could not time Ray's own stop: {exc}")
        yield ray
    finally:
        t0 = time.monotonic()
        stop_ray_head(head)
        report(f"Ray head stopped in {time.monotonic() - t0:.1f}s")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """On a failed reliability test, attach the tails of the component and task logs to the report."""
    outcome = yield
    report_ = outcome.get_result()
    if report_.when not in ("setup", "call") or not report_.failed or hasattr(report_, "wasxfail"):
        return
    if attach_stack_logs(item, report_, "rel_stack"):
        _SESSION["failed"] = True


@pytest.fixture(scope="session")
def rel_engine() -> Iterator[Any]:
    """A Podman service (the Docker API) and the test image, for the container scenarios only."""
    from harness import podman

    image = podman.ensure_test_image()
    service = podman.start_service()
    report(f"Podman engine at {service.address}, image {image}")
    try:
        yield service, image
    finally:
        left = podman.leftover_containers()
        podman.remove_containers(left)
        service.stop()
        assert not left, f"the container scenarios left containers behind: {left}"


@pytest.fixture(scope="session")
def docker_connection(rel_stack: AirflowStack, rel_engine: Any) -> None:
    """The ``reliability_docker`` connection: the Podman service, the test image, ``on_finish: delete``
    and a mount of the evidence folders (where the tasks write ``starts.txt``)."""
    service, image = rel_engine
    evidence_root = rel_stack.home / "evidence"
    evidence_root.mkdir(exist_ok=True)
    create_connection(
        rel_stack,
        DOCKER_CONN_ID,
        "executor",
        service.address,
        extra={"default_image": image, "on_finish": "delete", "mounts": [str(evidence_root)]},
    )
