"""Ray across nodes: a worker node joins the session's head (``ray start --address``, its own temp
dir, one CPU and a custom resource), tasks are placed on it by that resource, and their data is on
a real S3 server only (moto's, on loopback): no folder is shared between the nodes and Airflow.
Then the worker node is SIGKILLed mid-task: a retryable failure, and the retry, a new execution on
a new node, succeeds."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from flyteidl.core import literals_pb2

from executors import DataStore, ExecutorInitializationParameters, TaskContext, TaskPhase
from executors.backends.ray import RayExecutor
from harness.s3_server import S3Server
from tests.conftest import INT, python_template
from tests.executors.backends.local.helpers import start, wait_final
from tests.executors.backends.ray.conftest import RayHead, alive_nodes, start_ray_worker, stop_ray_head
from tests.executors.backends.ray.test_ray_dag import REPO, RUN_DAG, airflow_env

pytestmark = [pytest.mark.e2e]

# Reads its input and writes its output on S3 through task_io, says on which node it ran; on
# Flyte's first attempt it then waits (for the test to kill its node).
TASK = """
import os, sys, time
from executors import task_io
x = task_io.read_inputs(sys.argv[1], sys.argv[3])["x"]
print("node", os.environ.get("EXECUTORS_TEST_NODE"), "attempt", os.environ["FLYTE_ATTEMPT_NUMBER"], flush=True)
if sys.argv[4] == "wait-on-first" and os.environ["FLYTE_ATTEMPT_NUMBER"] == "0":
    time.sleep(600)
task_io.write_outputs(sys.argv[2], {"y": 2 * x}, sys.argv[3])
"""


@contextlib.contextmanager
def worker_node(head: RayHead, resource: str, name: str) -> Iterator[RayHead]:
    node = start_ray_worker(head, resource, extra_env={"EXECUTORS_TEST_NODE": name})
    print(f"\n[ray] worker node {name} joined in {node.startup_seconds:.1f}s")
    try:
        yield node
    finally:
        stop_ray_head(node)


def driver_log(node: RayHead, submission_id: str) -> str:
    """The job's driver log in the node's own log folder (empty when it did not run there)."""
    path = node.temp_dir / "session_latest" / "logs" / f"job-driver-{submission_id}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def sigkill_node(node: RayHead) -> None:
    """The node dies at once: its ``ray start`` and everything it started (raylet, agents, the
    job's processes), with no shutdown."""
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(node.process.pid)
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGKILL)
    node.process.wait(timeout=30)


def s3_ctx(make_ctx: Callable[..., TaskContext], bucket: str, **kwargs: object) -> TaskContext:
    ctx = make_ctx(**kwargs)
    return TaskContext(task_execution_id=ctx.task_execution_id, data_dir=f"{bucket}/{ctx.generated_name}")


async def run_on(executor: RayExecutor, store: DataStore, ctx: TaskContext, mode: str) -> TaskPhase:
    template = python_template(
        TASK,
        "{{.input}}",
        "{{.outputPrefix}}",
        "{{.taskTemplatePath}}",
        mode,
        inputs={"x": INT},
        outputs={"y": INT},
    )
    await store.write_protobuf(ctx.task_template_file, template)
    inputs = literals_pb2.LiteralMap()
    inputs.literals["x"].scalar.primitive.integer = 21
    return (await start(executor, store, ctx, template, inputs)).phase


async def test_a_task_placed_on_the_worker_node_with_its_data_on_s3_only(
    ray_head: RayHead,
    s3_server: S3Server,
    s3_bucket: str,
    store: DataStore,
    make_ctx: Callable[..., TaskContext],
) -> None:
    with worker_node(ray_head, "placed_node", "worker-a") as node:
        assert len(alive_nodes(ray_head)) >= 2
        executor = RayExecutor(address=ray_head.address, entrypoint_resources={"placed_node": 1})
        await executor.initialize(ExecutorInitializationParameters(data_store=store))
        try:
            ctx = s3_ctx(make_ctx, s3_bucket)
            assert await run_on(executor, store, ctx, "plain") in (TaskPhase.QUEUED, TaskPhase.RUNNING)
            template = python_template(TASK, inputs={"x": INT}, outputs={"y": INT})
            status = await wait_final(executor, ctx, template, timeout=120)
            assert status.phase is TaskPhase.SUCCEEDED, status
            assert (await executor.resolve_outputs(ctx, "y"))["y"].scalar.primitive.integer == 42
            # It ran on the worker node: its driver log is there. (The Jobs API's logs of a job
            # whose driver ran on another node hold only the head's first line here: see
            # docs/executors.md.)
            assert "node worker-a attempt 0" in driver_log(node, ctx.generated_name)
        finally:
            await executor.close()


async def test_the_worker_node_killed_mid_task_is_retryable_and_the_retry_succeeds_on_a_new_node(
    ray_head: RayHead,
    s3_server: S3Server,
    s3_bucket: str,
    store: DataStore,
    make_ctx: Callable[..., TaskContext],
) -> None:
    executor = RayExecutor(address=ray_head.address, entrypoint_resources={"doomed_node": 1})
    await executor.initialize(ExecutorInitializationParameters(data_store=store))
    template = python_template(TASK, inputs={"x": INT}, outputs={"y": INT})
    try:
        run = f"kill-{time.monotonic_ns()}"
        with worker_node(ray_head, "doomed_node", "worker-b") as node:
            first = s3_ctx(make_ctx, s3_bucket, run=run, attempt=0)
            await run_on(executor, store, first, "wait-on-first")
            deadline = time.monotonic() + 90
            while (await executor.check_task_status(first, template)).phase is not TaskPhase.RUNNING:
                assert time.monotonic() < deadline, "the first attempt never ran"
                await asyncio.sleep(0.5)
            await asyncio.sleep(2)  # it prints, then waits
            t_kill = time.monotonic()
            sigkill_node(node)
            status = await wait_final(executor, first, template, timeout=180)
            noticed = time.monotonic() - t_kill
        print(f"\n[ray] node SIGKILLed mid-task: {status.phase.name} after {noticed:.1f}s: {status.err}")
        assert status.phase is TaskPhase.RETRYABLE_FAILURE, status
        with worker_node(ray_head, "doomed_node", "worker-c") as new_node:
            retry = s3_ctx(make_ctx, s3_bucket, run=run, attempt=1)
            assert retry.generated_name != first.generated_name  # a new execution
            await run_on(executor, store, retry, "wait-on-first")
            final = await wait_final(executor, retry, template, timeout=120)
            assert final.phase is TaskPhase.SUCCEEDED, final
            assert (await executor.resolve_outputs(retry, "y"))["y"].scalar.primitive.integer == 42
            assert "node worker-c attempt 1" in driver_log(new_node, retry.generated_name)
    finally:
        await executor.close()


def test_the_across_machines_example_dag_with_no_shared_folder(
    ray_head: RayHead, s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    """``dags/executors_across_machines.py`` through ``dag.test()``: the Ray task on the worker
    node, the local one here, data and catalog on S3 only; the second run is a cache hit."""
    home = tmp_path / "airflow-home"
    home.mkdir()
    env = airflow_env(home, ray_head.address)
    env.update(
        {
            "AIRFLOW__PROVIDER_EXECUTORS__DATA_DIR": f"{s3_bucket}/executions",
            "RAY_WORKER_RESOURCE": "batch_node",
        }
    )
    migrate = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=env, cwd=REPO, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    results = []
    with worker_node(ray_head, "batch_node", "worker-d") as node:
        for _ in range(2):
            run = subprocess.run(
                [sys.executable, "-c", RUN_DAG, str(REPO / "dags" / "executors_across_machines.py")],
                env=env, cwd=REPO, capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            output = f"stdout:\n{run.stdout[-6000:]}\nstderr:\n{run.stderr[-6000:]}"
            assert run.returncode == 0, output
            results.append(json.loads(run.stdout.strip().splitlines()[-1]))
            assert results[-1]["state"] == "success", output
        ran_on_worker = list((node.temp_dir / "session_latest" / "logs").glob("job-driver-*.log"))
    first, second = (r["xcoms"] for r in results)
    assert first["partial_sums.total"] == 31 and first["report.return_value"] == {"line": "8 sums, total 31"}
    assert first["partial_sums.cache_status"] == "CACHE_POPULATED"
    assert second["partial_sums.cache_status"] == "CACHE_HIT" and second["report.line"] == "8 sums, total 31"
    assert len(ran_on_worker) == 1, ran_on_worker  # one Ray job, on the worker node; none for the hit
    stored = asyncio.run(DataStore().find(s3_bucket))
    assert any("/catalog/" in ref for ref in stored) and any(ref.endswith("/outputs.pb") for ref in stored)
