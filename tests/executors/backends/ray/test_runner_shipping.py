"""The runner travels with the job: a ``@task.executor`` function runs on a Ray node whose Python has
never seen this package. The node is a real worker of the session's head, started from a virtualenv
that has everything this one has except this package and flyteidl (:func:`bare_python`); tasks
are placed on it by a custom resource. Without help the runner cannot start there, and each missing
piece is a permanent failure naming it; with ``ship_runner`` (the default) the package arrives through
the Jobs API's package upload, and with ``runner_dependencies='pip'`` Ray installs flyteidl from
the package index for the job."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from executors import DataStore, ExecutorInitializationParameters, TaskContext, TaskPhase
from executors.backends.ray import RayExecutor
from executors.backends.ray.packages import package_name
from executors.backends.runner_package import package_archive
from executors.core.status import TaskStatus
from executors.data.function_task import function_template
from executors.data.literals import to_literal_map
from tests.executors.backends.local.helpers import start, wait_final
from tests.executors.backends.ray.conftest import RayHead, bare_python, start_ray_worker, stop_ray_head

pytestmark = [pytest.mark.e2e]

RESOURCE = "bare_node"


def double(x: int) -> int:
    import os

    print("ran on", os.environ.get("EXECUTORS_TEST_NODE"), flush=True)
    return 2 * x


@pytest.fixture(scope="module")
def bare_node(ray_head: RayHead, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayHead]:
    python = bare_python(tmp_path_factory.mktemp("bare") / "venv", without=("flyteidl",))
    node = start_ray_worker(ray_head, RESOURCE, extra_env={"EXECUTORS_TEST_NODE": "bare"}, python=python)
    print(f"\n[ray] bare worker node ({python}) joined in {node.startup_seconds:.1f}s")
    try:
        yield node
    finally:
        stop_ray_head(node)


def test_the_bare_python_lacks_this_package_and_flyteidl(bare_node: RayHead, tmp_path: Path) -> None:
    """The premise: the node's interpreter cannot import either (so a success below is shipping)."""
    import subprocess

    python = Path(bare_node.process.args[0])  # type: ignore[index]
    probe = (
        "import importlib.util as u; print([bool(u.find_spec(m)) for m in ('ray', 'executors', 'flyteidl')])"
    )
    out = subprocess.run([python, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[True, False, False]", out


async def run_double(
    ray_head: RayHead,
    store: DataStore,
    make_ctx: Callable[..., TaskContext],
    timeout: float,
    **options: object,
) -> tuple[TaskStatus, TaskContext, RayExecutor]:
    executor = RayExecutor(address=ray_head.address, entrypoint_resources={RESOURCE: 1}, **options)  # type: ignore[arg-type]
    await executor.initialize(ExecutorInitializationParameters(data_store=store))
    template = function_template(double, name="double")
    ctx = make_ctx()
    await store.write_protobuf(ctx.task_template_file, template)
    inputs = to_literal_map({"x": 21}, template.interface.inputs)
    try:
        first = await start(executor, store, ctx, template, inputs)
        assert first.phase in (TaskPhase.QUEUED, TaskPhase.RUNNING), first
        return await wait_final(executor, ctx, template, timeout=timeout), ctx, executor
    finally:
        await executor.close()


async def test_without_the_package_shipped_the_failure_names_it(
    bare_node: RayHead, ray_head: RayHead, store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    status, _, _ = await run_double(ray_head, store, make_ctx, timeout=120, ship_runner=False)
    assert status.phase is TaskPhase.PERMANENT_FAILURE, status
    assert status.err is not None and status.err.code == "ModuleNotFound"
    assert "no module 'executors'" in status.err.message and "ship_runner" in status.err.message


async def test_the_package_is_shipped_and_a_missing_library_is_named_with_the_fix(
    bare_node: RayHead, ray_head: RayHead, store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    status, _, _ = await run_double(ray_head, store, make_ctx, timeout=120)
    # The package arrived (the import got past ``executors``) and stopped at flyteidl.
    assert status.phase is TaskPhase.PERMANENT_FAILURE, status
    assert status.err is not None and status.err.code == "ModuleNotFound"
    assert "no module 'flyteidl'" in status.err.message, status.err.message
    assert "runner_dependencies='pip'" in status.err.message
    # The cluster keeps one copy, named by its content: the next job finds it there.
    name = package_name(package_archive().digest)
    async with httpx.AsyncClient(base_url=ray_head.address) as client:
        assert (await client.get(f"/api/packages/gcs/{name}")).status_code == 200


async def test_with_the_package_shipped_and_pip_dependencies_the_function_runs_there(
    bare_node: RayHead, ray_head: RayHead, store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    # Ray clones the node's virtualenv and pip-installs flyteidl into it from the package index.
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    status, ctx, executor = await run_double(
        ray_head, store, make_ctx, timeout=600, runner_dependencies="pip"
    )
    print(f"\n[ray] function task on the bare node, Ray installing flyteidl: {loop.time() - t0:.1f}s")
    assert status.phase is TaskPhase.SUCCEEDED, status
    await executor.initialize(ExecutorInitializationParameters(data_store=store))
    try:
        assert (await executor.resolve_outputs(ctx, "o0"))["o0"].scalar.primitive.integer == 42
    finally:
        await executor.close()
    log = bare_node.temp_dir / "session_latest" / "logs" / f"job-driver-{ctx.generated_name}.log"
    assert "ran on bare" in log.read_text(errors="replace")
