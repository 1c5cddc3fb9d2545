"""The container executor on a real engine (Podman's Docker API): what the contract kit does not cover.

The image is used (a file only the image has), the template's resources and secrets reach the
container the way the issue asks, failures name their cause (an image that cannot be pulled, a
command the image lacks, out of memory, a container removed behind our back), a kill leaves
nothing, ``on_finish`` is honoured, and an engine that is away for 10 s mid-run is waited out.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flyteidl.core import literals_pb2, security_pb2, tasks_pb2

from executors import DataStore, ExecutorInitializationParameters, TaskContext, TaskPhase
from executors.backends.docker import DockerExecutor
from executors.backends.local import LocalExecutor
from executors.core.resources import resources_from_mapping
from harness import podman
from tests.conftest import DOUBLER, INT, python_template
from tests.executors.backends.local.helpers import start, wait_final

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

READ_MARKER = f"print(open({podman.IMAGE_MARKER!r}).read().strip())"


def image_template(script: str, *args: str, image: str = "", **kwargs: Any) -> tasks_pb2.TaskTemplate:
    template = python_template(script, *args, **kwargs)
    template.container.image = image  # "": the executor's default_image (the test image)
    return template


def inspect(service: podman.PodmanService, name: str) -> dict[str, Any] | None:
    with service.client() as client:
        response = client.get(f"/containers/{name}/json")
    return None if response.status_code == 404 else response.json()  # type: ignore[no-any-return]


async def test_the_image_is_what_runs(
    docker_executor: DockerExecutor,
    store: DataStore,
    make_ctx: Callable[..., TaskContext],
    tmp_path: Any,
) -> None:
    """A command that reads a file only the image has succeeds in the container and fails on the
    local executor: the image is used, not the host."""
    template = image_template(READ_MARKER)
    ctx = make_ctx()
    assert (await start(docker_executor, store, ctx, template)).phase is TaskPhase.RUNNING
    assert (await wait_final(docker_executor, ctx, template)).phase is TaskPhase.SUCCEEDED
    logs = await docker_executor.read_logs(ctx)
    assert logs is not None and "made by harness/podman.py" in logs

    local = LocalExecutor(state_root=str(tmp_path / "local-state"))
    await local.initialize(ExecutorInitializationParameters(data_store=store))
    local_ctx = make_ctx()
    await start(local, store, local_ctx, template)
    status = await wait_final(local, local_ctx, template)
    assert status.phase is TaskPhase.RETRYABLE_FAILURE and "No such file" in status.err.message  # type: ignore[union-attr]


async def test_inputs_outputs_env_labels_and_resources(
    docker_executor: DockerExecutor,
    store: DataStore,
    make_ctx: Callable[..., TaskContext],
    podman_service: podman.PodmanService,
) -> None:
    """The data dir is mounted at its own path (inputs.pb in, outputs.pb out), Flyte's variables
    and the template's env are set, the owner is in the labels, resources are limits."""
    template = image_template(
        DOUBLER + "\nimport os; print('attempt', os.environ['FLYTE_ATTEMPT_NUMBER'], os.environ['GREETING'])",
        "{{.input}}",
        "{{.outputPrefix}}",
        inputs={"x": INT},
        outputs={"y": INT},
        env={"GREETING": "hello"},
    )
    template.container.resources.CopyFrom(
        resources_from_mapping({"requests": {"cpu": "250m"}, "limits": {"cpu": "1", "memory": "256Mi"}})
    )
    ctx = make_ctx()
    inputs = literals_pb2.LiteralMap()
    inputs.literals["x"].scalar.primitive.integer = 21
    options = {**docker_executor_options(docker_executor), "on_finish": "keep"}
    keeper = DockerExecutor(**options)
    await keeper.initialize(ExecutorInitializationParameters(data_store=store))
    try:
        await start(keeper, store, ctx, template, inputs)
        info = inspect(podman_service, ctx.generated_name)
        assert info is not None
        labels = info["Config"]["Labels"]
        assert labels["io.airflow-provider-executors.execution"] == ctx.generated_name
        assert (
            labels["io.airflow-provider-executors.run"]
            == ctx.task_execution_id.id.node_execution_id.execution_id.name
        )
        assert labels["io.airflow-provider-executors.attempt"] == "0"
        assert info["HostConfig"]["NanoCpus"] == 1_000_000_000
        assert info["HostConfig"]["Memory"] == 256 * 2**20
        assert (await wait_final(keeper, ctx, template)).phase is TaskPhase.SUCCEEDED
        outputs = await keeper.resolve_outputs(ctx, "y")
        assert outputs["y"].scalar.primitive.integer == 42
        logs = await keeper.read_logs(ctx)
        assert logs is not None and "attempt 0 hello" in logs
        assert inspect(podman_service, ctx.generated_name) is not None, "on_finish=keep removed it"
    finally:
        await keeper.kill_task(ctx, "test over")
        await keeper.close()
    assert inspect(podman_service, ctx.generated_name) is None


def docker_executor_options(executor: DockerExecutor) -> dict[str, Any]:
    return {
        "address": executor.address,
        "default_image": executor.default_image,
        "on_finish": executor.on_finish,
    }


async def test_an_image_that_cannot_be_pulled_fails_at_start_naming_it(
    docker_executor: DockerExecutor, store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    image = f"localhost/not-an-image-{uuid.uuid4().hex[:8]}:1"
    status = await start(docker_executor, store, make_ctx(), image_template("print(1)", image=image))
    assert status.phase is TaskPhase.PERMANENT_FAILURE, status
    assert status.err is not None and status.err.code == "ImagePullFailed" and image in status.err.message

    never = DockerExecutor(**{**docker_executor_options(docker_executor), "pull": "Never"})
    await never.initialize(ExecutorInitializationParameters(data_store=store))
    try:
        status = await start(never, store, make_ctx(), image_template("print(1)", image=image))
    finally:
        await never.close()
    assert status.phase is TaskPhase.PERMANENT_FAILURE and status.err is not None
    assert status.err.code == "ImageNotFound" and image in status.err.message


async def test_a_command_the_image_lacks_fails_at_start_without_retry(
    docker_executor: DockerExecutor,
    store: DataStore,
    make_ctx: Callable[..., TaskContext],
    podman_service: podman.PodmanService,
) -> None:
    template = image_template("")
    del template.container.command[:]
    template.container.command.extend(["no-such-program-here", "--flag"])
    ctx = make_ctx()
    status = await start(docker_executor, store, ctx, template)
    if not status.phase.is_final_for_execution():  # the init starts, then fails to run it
        status = await wait_final(docker_executor, ctx, template)
    assert status.phase is TaskPhase.PERMANENT_FAILURE, status
    assert status.err is not None and status.err.code == "CommandNotFound", status.err
    assert "no-such-program-here" in status.err.message, status.err.message
    assert inspect(podman_service, ctx.generated_name) is None, "on_finish=delete kept it"


async def test_out_of_memory_is_a_retryable_failure_that_says_so(
    docker_executor: DockerExecutor, store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    template = image_template("x = bytearray(512 * 1024 * 1024); print(len(x))")
    template.container.resources.CopyFrom(resources_from_mapping({"limits": {"memory": "64Mi"}}))
    ctx = make_ctx()
    await start(docker_executor, store, ctx, template)
    status = await wait_final(docker_executor, ctx, template)
    assert status.phase is TaskPhase.RETRYABLE_FAILURE, status
    assert status.err is not None and status.err.code == "OutOfMemory", status.err
    assert "out of memory" in status.err.message and "64 MiB" in status.err.message


async def test_a_kill_stops_and_removes_the_container(
    docker_executor: DockerExecutor,
    store: DataStore,
    make_ctx: Callable[..., TaskContext],
    podman_service: podman.PodmanService,
) -> None:
    template = image_template("import time; print('up', flush=True); time.sleep(300)")
    ctx = make_ctx()
    await start(docker_executor, store, ctx, template)
    assert inspect(podman_service, ctx.generated_name) is not None
    t0 = time.monotonic()
    await docker_executor.kill_task(ctx, "test")
    assert inspect(podman_service, ctx.generated_name) is None
    # The command gets the SIGTERM (an init is PID 1), so the kill does not wait for the SIGKILL.
    assert time.monotonic() - t0 < docker_executor.stop_grace / 2, time.monotonic() - t0
    await docker_executor.kill_task(ctx, "again")  # idempotent


async def test_a_container_removed_behind_our_back_is_a_retryable_failure(
    docker_executor: DockerExecutor,
    store: DataStore,
    make_ctx: Callable[..., TaskContext],
) -> None:
    template = image_template("import time; time.sleep(300)")
    ctx = make_ctx()
    await start(docker_executor, store, ctx, template)
    podman.remove_containers([ctx.generated_name])
    status = await docker_executor.check_task_status(ctx, template)
    assert status.phase is TaskPhase.RETRYABLE_FAILURE and status.err is not None
    assert status.err.code == "ContainerGone" and ctx.generated_name in status.err.message


async def test_on_finish_delete_succeeded_keeps_a_failed_container(
    store: DataStore,
    make_ctx: Callable[..., TaskContext],
    docker_executor: DockerExecutor,
    podman_service: podman.PodmanService,
) -> None:
    executor = DockerExecutor(**{**docker_executor_options(docker_executor), "on_finish": "delete_succeeded"})
    await executor.initialize(ExecutorInitializationParameters(data_store=store))
    good, bad = make_ctx(), make_ctx()
    try:
        ok_template, failing = image_template("print('fine')"), image_template("raise SystemExit(3)")
        await start(executor, store, good, ok_template)
        await start(executor, store, bad, failing)
        assert (await wait_final(executor, good, ok_template, timeout=60)).phase is TaskPhase.SUCCEEDED
        failed = await wait_final(executor, bad, failing)
        assert failed.phase is TaskPhase.RETRYABLE_FAILURE and failed.err is not None
        assert failed.err.code == "ExitCode3"
        assert inspect(podman_service, good.generated_name) is None
        assert inspect(podman_service, bad.generated_name) is not None
        # The removed one still answers its end, and its output, from the saved record.
        assert (await executor.check_task_status(good, ok_template)).phase is TaskPhase.SUCCEEDED
        chunk = await executor.read_output(good, None, final=True)
        assert [text for _, text in chunk.lines()] == ["fine"]
    finally:
        await executor.kill_task(bad, "test over")
        await executor.close()


async def test_secrets_are_files_never_in_the_environment_or_labels(
    docker_executor: DockerExecutor,
    store: DataStore,
    make_ctx: Callable[..., TaskContext],
    podman_service: podman.PodmanService,
) -> None:
    """flytekit's file form: ``/etc/secrets/<group>/<key>``; ``docker inspect`` shows no value."""
    value = f"s3cr3t-{uuid.uuid4().hex}"
    template = image_template(
        "import os, time\n"
        "print('file', open('/etc/secrets/db/password').read())\n"
        "print('env', sorted(k for k in os.environ if k.startswith('_FSEC_')))\n"
        "time.sleep(2)"
    )
    template.security_context.secrets.append(security_pb2.Secret(group="db", key="password"))
    ctx = make_ctx()
    start_ctx = TaskContext(
        task_execution_id=ctx.task_execution_id,
        data_dir=ctx.data_dir,
        secret_environment={"_FSEC_DB_PASSWORD": value},
    )
    await start(docker_executor, store, start_ctx, template)
    info = inspect(podman_service, ctx.generated_name)
    assert info is not None and value not in json.dumps(info)
    assert (await wait_final(docker_executor, ctx, template)).phase is TaskPhase.SUCCEEDED
    chunk = await docker_executor.read_output(ctx, None, final=True)
    lines = [text for _, text in chunk.lines()]
    assert f"file {value}" in lines and "env []" in lines, lines
    assert not list(podman_service.socket.parent.glob("**/executors-secrets-*"))
    assert not [
        p
        for p in __import__("pathlib")
        .Path(docker_executor.secrets_dir)
        .glob(f"executors-secrets-{ctx.generated_name}")
    ]


async def test_the_engine_away_for_ten_seconds_mid_run_is_waited_out(
    store: DataStore,
    make_ctx: Callable[..., TaskContext],
    test_image: str,
    tmp_path: Any,
) -> None:
    """A private engine service is stopped for 10 s while its container runs: UNKNOWN meanwhile,
    then the same container's success (a container outlives the API service: conmon keeps it)."""
    service = podman.start_service(tmp_path / "engine")
    executor = DockerExecutor(
        address=service.address, default_image=test_image, on_finish="delete", request_timeout=3
    )
    await executor.initialize(ExecutorInitializationParameters(data_store=store))
    template = image_template("import time\nfor i in range(15):\n    print(i, flush=True)\n    time.sleep(1)")
    ctx = make_ctx()
    try:
        await start(executor, store, ctx, template)
        service.stop()
        t0 = time.monotonic()
        phases = []
        while time.monotonic() - t0 < 10:
            phases.append((await executor.check_task_status(ctx, template)).phase)
            await asyncio.sleep(0.5)
        assert set(phases) == {TaskPhase.UNKNOWN}, phases
        service = podman.start_service(tmp_path / "engine")
        status = await wait_final(executor, ctx, template)
        assert status.phase is TaskPhase.SUCCEEDED, status
        chunk = await executor.read_output(ctx, None, final=True)
        assert [text for _, text in chunk.lines()] == [str(i) for i in range(15)]
    finally:
        await executor.close()
        service.stop()


async def test_a_data_dir_with_colons_is_mounted(
    docker_executor: DockerExecutor, store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Any
) -> None:
    """Airflow's run ids (``manual__2026-12-06T22:51:55.386416+00:00``) put ``:`` in the execution's
    folder, which the ``host:container`` form of a bind cannot hold (found by the conformance run)."""
    ctx = make_ctx()
    folder = tmp_path / "manual__2026-12-06T22:51:55.386416+00:00" / ctx.generated_name
    ctx = TaskContext(task_execution_id=ctx.task_execution_id, data_dir=str(folder))
    template = image_template(
        DOUBLER, "{{.input}}", "{{.outputPrefix}}", inputs={"x": INT}, outputs={"y": INT}
    )
    inputs = literals_pb2.LiteralMap()
    inputs.literals["x"].scalar.primitive.integer = 4
    assert (await start(docker_executor, store, ctx, template, inputs)).phase is TaskPhase.RUNNING
    assert (await wait_final(docker_executor, ctx, template)).phase is TaskPhase.SUCCEEDED
    assert (await docker_executor.resolve_outputs(ctx, "y"))["y"].scalar.primitive.integer == 8


S3_TASK = """
import os, sys
from executors import task_io
x = task_io.read_inputs(sys.argv[1], sys.argv[3])["x"]
task_io.write_outputs(sys.argv[2], {"y": 2 * x}, sys.argv[3])
print("on", os.environ["AWS_ENDPOINT_URL"])
"""


async def test_a_data_dir_on_s3_is_reached_with_the_starters_credentials(
    docker_options: dict[str, Any],
    store: DataStore,
    make_ctx: Callable[..., TaskContext],
    podman_service: podman.PodmanService,
    s3_bucket: str,
    s3_server: Any,
) -> None:
    """An object-store data dir is not mounted: the container gets the usual AWS_* variables (the
    default ``pass_env`` for such a data dir) and reads its inputs and writes its outputs on the
    real S3 server itself, through s3fs in the image."""
    executor = DockerExecutor(**{**docker_options, "network": "host"})  # the server is on loopback
    await executor.initialize(ExecutorInitializationParameters(data_store=store))
    try:
        ctx = make_ctx()
        ctx = TaskContext(
            task_execution_id=ctx.task_execution_id, data_dir=f"{s3_bucket}/{ctx.generated_name}"
        )
        template = image_template(
            S3_TASK,
            "{{.input}}",
            "{{.outputPrefix}}",
            "{{.taskTemplatePath}}",
            inputs={"x": INT},
            outputs={"y": INT},
        )
        await store.write_protobuf(ctx.task_template_file, template)
        inputs = literals_pb2.LiteralMap()
        inputs.literals["x"].scalar.primitive.integer = 21
        assert (await start(executor, store, ctx, template, inputs)).phase is TaskPhase.RUNNING
        info = inspect(podman_service, ctx.generated_name)
        assert info is not None
        assert not [
            m for m in info.get("Mounts") or [] if s3_bucket.removeprefix("s3://") in m.get("Source", "")
        ]
        env = dict(item.split("=", 1) for item in info["Config"]["Env"])
        assert env["AWS_ENDPOINT_URL"] == s3_server.endpoint and env["AWS_ACCESS_KEY_ID"] == "testing"
        status = await wait_final(executor, ctx, template, timeout=60)
        assert status.phase is TaskPhase.SUCCEEDED, status
        assert (await executor.resolve_outputs(ctx, "y"))["y"].scalar.primitive.integer == 42
        assert await store.exists(f"{ctx.output_prefix}/outputs.pb")  # written by the container
    finally:
        await executor.close()
