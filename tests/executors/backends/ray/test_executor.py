"""The Ray executor against a real Ray head (its dashboard's Jobs API; nothing mocked).

What every executor must do (idempotent start and kill, re-attach from another process, what
``outputs.pb``/``error.pb`` mean, logs, UNKNOWN while unreachable) is checked by the contract kit
in ``test_contract.py``; here is what is Ray's own."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
from collections.abc import Callable

import httpx
import psutil
import pytest
from flyteidl.core import literals_pb2, tasks_pb2
from flyteidl.event import event_pb2

from executors import (
    DataStore,
    ErrorOrigin,
    ExecutionDriver,
    ExecutorInitializationParameters,
    PollPolicy,
    TaskContext,
    TaskOverrides,
    TaskPhase,
    TaskStatus,
)
from executors.backends.ray import RayExecutor
from executors.backends.ray.executor import is_loopback_host, ray_entrypoint_resources
from executors.core.resources import parse_quantity, resources_from_mapping
from executors.data.task_template import build_task_template
from harness.tcp_proxy import TcpProxy
from tests.conftest import make_template
from tests.executors.backends.ray.conftest import RayHead, free_port, start_ray_head, stop_ray_head

pytestmark = pytest.mark.e2e

TYPED = """
import os, sys
from executors import task_io
inputs = task_io.read_inputs(sys.argv[1], sys.argv[3])
print("task", os.environ["FLYTE_INTERNAL_TASK_NAME"], "got", inputs["x"], "env", os.environ.get("GREETING"))
task_io.write_outputs(sys.argv[2], {"y": 2 * inputs["x"], "label": f"x={inputs['x']}"}, sys.argv[3])
"""
TYPED_COMMAND = ["python", "-c", TYPED, "{{.input}}", "{{.outputPrefix}}", "{{.taskTemplatePath}}"]


def typed_template(command: list[str] | None = None, **kwargs: object) -> tasks_pb2.TaskTemplate:
    return build_task_template(
        command or TYPED_COMMAND,
        name="tests.ray.double",
        inputs={"x": int},
        outputs={"y": int, "label": str},
        **kwargs,  # type: ignore[arg-type]
    )


def int_inputs(**values: int) -> literals_pb2.LiteralMap:
    lm = literals_pb2.LiteralMap()
    for k, v in values.items():
        lm.literals[k].scalar.primitive.integer = v
    return lm


async def start(
    executor: RayExecutor, store: DataStore, ctx: TaskContext, template: tasks_pb2.TaskTemplate,
    inputs: literals_pb2.LiteralMap | None = None,
) -> TaskStatus:  # fmt: skip
    """What the operator does: write task.pb and inputs.pb, then start."""
    inputs = inputs if inputs is not None else literals_pb2.LiteralMap()
    await store.write_protobuf(ctx.task_template_file, template)
    await store.write_protobuf(ctx.inputs_file, inputs)
    return await executor.start_task(ctx, template, inputs)


async def wait_for(
    executor: RayExecutor,
    ctx: TaskContext,
    template: tasks_pb2.TaskTemplate,
    done: Callable[[TaskStatus], bool] = lambda s: s.phase.is_final_for_execution(),
    timeout: float = 60,
) -> TaskStatus:
    deadline = time.monotonic() + timeout
    while True:
        status = await executor.check_task_status(ctx, template)
        if done(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"still {status} after {timeout}s")
        await asyncio.sleep(0.1)


async def ray_job(head: RayHead, submission_id: str) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=head.address) as client:
        response = await client.get(f"/api/jobs/{submission_id}")
        response.raise_for_status()
        body = response.json()
        assert isinstance(body, dict)
        return body


async def test_success_with_typed_outputs(
    ray_executor: RayExecutor, ray_head: RayHead, store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    ctx = dataclasses.replace(
        make_ctx(),
        owner_id="dag/run/double",
        labels={"team": "data"},
        overrides=TaskOverrides(environment={"GREETING": "hi"}),
    )
    template = typed_template()
    t0 = time.monotonic()
    first = await start(ray_executor, store, ctx, template, int_inputs(x=21))
    assert first.phase is TaskPhase.QUEUED
    assert first.state is not None and first.state["submission_id"] == ctx.generated_name
    running = await wait_for(ray_executor, ctx, template, lambda s: s.phase is not TaskPhase.QUEUED)
    latency = time.monotonic() - t0
    print(f"\n[ray] submit-to-{running.phase.name} latency: {latency:.2f}s")
    final = await wait_for(ray_executor, ctx, template)
    print(f"[ray] submit-to-{final.phase.name}: {time.monotonic() - t0:.2f}s")
    assert final.phase is TaskPhase.SUCCEEDED, final
    outputs = await ray_executor.resolve_outputs(ctx, "y", "label")
    assert outputs["y"].scalar.primitive.integer == 42
    assert outputs["label"].scalar.primitive.string_value == "x=21"

    job = await ray_job(ray_head, ctx.generated_name)
    assert job["status"] == "SUCCEEDED"
    assert job["metadata"] == {
        "team": "data",
        "submitted_by": "airflow-provider-executors",
        "owner_id": "dag/run/double",
        "generated_name": ctx.generated_name,
        "task_name": "tests.double",
        "retry_attempt": "0",
    }
    env_vars = job["runtime_env"]["env_vars"]  # type: ignore[index]
    assert env_vars["GREETING"] == "hi" and env_vars["FLYTE_INTERNAL_TASK_NAME"] == "tests.double"

    logs = await ray_executor.read_logs(ctx)
    assert logs is not None and "task tests.double got 21 env hi" in logs
    tail = await ray_executor.read_logs(ctx, max_bytes=40)
    assert tail is not None and len(tail.split("-----\n", 1)[1].encode()) <= 43
    assert ray_executor.get_run_url(ctx) == f"{ray_head.address}/#/jobs/{ctx.generated_name}"
    assert ray_executor.get_properties().requires_finalizer is True


async def test_crash_is_retryable_with_rays_message(
    ray_executor: RayExecutor, store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    ctx = make_ctx()
    script = "import sys\nfor i in range(5000): print('line', i, file=sys.stderr)\nraise SystemExit(3)"
    template = make_template(["python", "-c", script])
    await start(ray_executor, store, ctx, template)
    status = await wait_for(ray_executor, ctx, template)
    assert status.phase is TaskPhase.RETRYABLE_FAILURE
    assert status.err is not None and status.err.code == "ExitCode3"
    assert status.err.origin is ErrorOrigin.USER
    message = status.err.message
    assert "error_type=JOB_ENTRYPOINT_COMMAND_ERROR" in message and "driver_exit_code=3" in message
    assert "failed with exit code 3" in message  # Ray's own message
    assert "line 4999" in message and "line 10\n" not in message
    assert len(message) < 2500  # Ray's 20,000-character log excerpt is tailed


async def test_a_job_log_too_large_to_copy_is_said_once_and_never_fetched_again(
    ray_executor: RayExecutor,
    store: DataStore,
    make_ctx: Callable[..., TaskContext],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The dashboard serves a job's log whole: one over the cap is not read into the triggerer."""
    import executors.backends.ray.executor as ray_module

    ctx = make_ctx()
    template = make_template(["python", "-c", "for i in range(500): print('line', i)"])
    await start(ray_executor, store, ctx, template)
    assert (await wait_for(ray_executor, ctx, template)).phase is TaskPhase.SUCCEEDED
    small = await ray_executor.read_output(ctx, None, final=True)
    assert small.lines()[-1] == ("output", "line 499"), small.lines()[-3:]
    monkeypatch.setattr(ray_module, "MAX_LOG_RESPONSE_BYTES", 1_000)  # the log is ~4.4 KB
    big = await ray_executor.read_output(ctx, None, final=True)
    (_, note), *rest = big.lines()
    assert not rest and "too large to copy" in note, big
    assert str(ray_executor.get_run_url(ctx)) in note
    again = await ray_executor.read_output(ctx, big.cursor, final=True)
    assert again.pieces == () and again.cursor == big.cursor


async def test_kill_while_running(
    ray_executor: RayExecutor, ray_head: RayHead, store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    ctx = make_ctx()
    template = make_template(["python", "-c", "import time; print('ready', flush=True); time.sleep(300)"])
    await start(ray_executor, store, ctx, template)
    await wait_for(ray_executor, ctx, template, lambda s: s.phase is TaskPhase.RUNNING)
    t0 = time.monotonic()
    await ray_executor.kill_task(ctx, "user marked the task failed")
    await ray_executor.kill_task(ctx, "again")  # idempotent while stopping
    final = await wait_for(ray_executor, ctx, template, timeout=60)
    print(f"\n[ray] kill-to-STOPPED: {time.monotonic() - t0:.2f}s")
    assert final.phase is TaskPhase.PERMANENT_FAILURE
    assert final.err is not None and final.err.code == "Stopped" and ctx.generated_name in final.err.message
    assert (await ray_job(ray_head, ctx.generated_name))["status"] == "STOPPED"
    await ray_executor.kill_task(ctx, "once more")  # idempotent once stopped


async def test_kill_and_check_of_a_job_never_submitted(
    ray_executor: RayExecutor, make_ctx: Callable[..., TaskContext]
) -> None:
    ctx = make_ctx(node="never-submitted")
    await ray_executor.kill_task(ctx, "nothing there")
    status = await ray_executor.check_task_status(ctx, typed_template())
    assert status.phase is TaskPhase.UNDEFINED
    assert status.err is not None and ctx.generated_name in status.err.message
    assert await ray_executor.read_logs(ctx) is None


async def test_resources_reach_ray(
    ray_executor: RayExecutor, ray_head: RayHead, store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    # Fits the 2-CPU head: runs.
    small = dataclasses.replace(
        make_ctx(node="small"),
        overrides=TaskOverrides(resources=resources_from_mapping({"cpu": "500m", "memory": "64Mi"})),
    )
    template = make_template(["python", "-c", "print('small')"])
    await start(ray_executor, store, small, template)
    assert (await wait_for(ray_executor, small, template)).phase is TaskPhase.SUCCEEDED
    # Three CPUs from the template, and the override does not touch cpu: never placed, stays queued.
    big_template = make_template(["python", "-c", "print('big')"])
    big_template.container.resources.requests.add(name=tasks_pb2.Resources.CPU, value="3")
    big = dataclasses.replace(
        make_ctx(node="big"),
        overrides=TaskOverrides(resources=resources_from_mapping({"memory": "1Gi"})),
    )
    assert (await start(ray_executor, store, big, big_template)).phase is TaskPhase.QUEUED
    await asyncio.sleep(3)
    status = await ray_executor.check_task_status(big, big_template)
    assert status.phase is TaskPhase.QUEUED
    job = await ray_job(ray_head, big.generated_name)
    assert "waiting for resources" in str(job["message"])
    # Ray (2.60) only acts on the stop once the job gets its resources (never, here): it stays
    # PENDING until the head goes away. See RayExecutor.kill_task.
    await ray_executor.kill_task(big, "cleanup")


async def test_bad_requests_are_permanent(
    ray_executor: RayExecutor, store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    # No container.
    sql = tasks_pb2.TaskTemplate(type="sql")
    sql.id.name = "my.sql.task"
    status = await ray_executor.start_task(make_ctx(), sql, literals_pb2.LiteralMap())
    assert status.phase is TaskPhase.PERMANENT_FAILURE
    assert (
        status.err is not None
        and "my.sql.task" in status.err.message
        and "no container" in status.err.message
    )
    # Unknown placeholder.
    status = await ray_executor.start_task(
        make_ctx(), make_template(["echo", "{{.nope}}"]), literals_pb2.LiteralMap()
    )
    assert status.phase is TaskPhase.PERMANENT_FAILURE
    assert (
        status.err is not None and status.err.code == "InvalidCommand" and "{{.nope}}" in status.err.message
    )
    # A quantity that is not one.
    bad = make_template(["echo"])
    bad.container.resources.requests.add(name=tasks_pb2.Resources.MEMORY, value="lots")
    status = await ray_executor.start_task(make_ctx(), bad, literals_pb2.LiteralMap())
    assert status.phase is TaskPhase.PERMANENT_FAILURE
    assert status.err is not None and status.err.code == "InvalidResources" and "'lots'" in status.err.message


async def test_token_auth_and_ray_refusals(store: DataStore, make_ctx: Callable[..., TaskContext]) -> None:
    """A head with Ray's token authentication: ``token`` is sent as a bearer token, and a refusal
    (HTTP 4xx) is a permanent failure carrying Ray's message."""
    head = start_ray_head({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "tok-" + "x" * 32})
    executors = [
        RayExecutor(address=head.address),
        RayExecutor(address=head.address, token="tok-" + "x" * 32),
        RayExecutor(address=head.address + "/not-the-dashboard", token="tok-" + "x" * 32),
    ]
    try:
        for executor in executors:
            await executor.initialize(ExecutorInitializationParameters(data_store=store))
        anonymous, authorized, misaddressed = executors
        template = typed_template()

        ctx = make_ctx()
        refused = await start(anonymous, store, ctx, template, int_inputs(x=1))
        assert refused.phase is TaskPhase.PERMANENT_FAILURE, refused
        assert refused.err is not None and refused.err.code == "RayRejectedJob"
        assert "HTTP 401" in refused.err.message and "Unauthorized" in refused.err.message

        status = await start(authorized, store, ctx, template, int_inputs(x=3))
        assert status.phase is TaskPhase.QUEUED
        assert (await wait_for(authorized, ctx, template)).phase is TaskPhase.SUCCEEDED
        assert (await authorized.resolve_outputs(ctx, "y"))["y"].scalar.primitive.integer == 6
        # Without the token the job cannot be observed: UNKNOWN (never a failure of the job).
        assert (await anonymous.check_task_status(ctx, template)).phase is TaskPhase.UNKNOWN

        other = make_ctx()
        wrong = await start(misaddressed, store, other, template, int_inputs(x=1))
        assert wrong.phase is TaskPhase.PERMANENT_FAILURE, wrong
        assert wrong.err is not None and "HTTP 404" in wrong.err.message
    finally:
        for executor in executors:
            await executor.close()
        stop_ray_head(head)


async def test_unreachable_dashboard_is_unknown_never_a_failure(
    store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    executor = RayExecutor(address=f"http://127.0.0.1:{free_port()}", request_timeout="2")
    await executor.initialize(ExecutorInitializationParameters(data_store=store))
    try:
        ctx = make_ctx()
        template = typed_template()
        status = await start(executor, store, ctx, template, int_inputs(x=1))
        assert status.phase is TaskPhase.UNKNOWN
        assert status.err is not None and "cannot be reached" in status.err.message
        assert (await executor.check_task_status(ctx, template)).phase is TaskPhase.UNKNOWN
        with pytest.raises(ConnectionError, match="cannot stop Ray job"):
            await executor.kill_task(ctx, "stop")  # raises: the engine retries the kill
        assert await executor.read_logs(ctx) is None
    finally:
        await executor.close()


async def test_dashboard_down_then_back_up(
    ray_head: RayHead, proxy: TcpProxy, store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    executor = RayExecutor(address=proxy.address, request_timeout=5)
    await executor.initialize(ExecutorInitializationParameters(data_store=store))
    try:
        ctx = make_ctx()
        command = ["python", "-c", "import time; time.sleep(4)\n" + TYPED, *TYPED_COMMAND[3:]]
        template = typed_template(command)
        await start(executor, store, ctx, template, int_inputs(x=5))
        await wait_for(executor, ctx, template, lambda s: s.phase is TaskPhase.RUNNING)
        t_down = time.monotonic()
        await proxy.close()
        unknowns = []
        for _ in range(3):
            status = await executor.check_task_status(ctx, template)
            unknowns.append(status)
            await asyncio.sleep(0.5)
        assert all(s.phase is TaskPhase.UNKNOWN for s in unknowns), unknowns
        assert unknowns[0].err is not None and proxy.address in unknowns[0].err.message
        # The job keeps going meanwhile; bring the dashboard back once it is done.
        deadline = time.monotonic() + 60
        while (await ray_job(ray_head, ctx.generated_name))["status"] != "SUCCEEDED":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        await proxy.open()
        t_up = time.monotonic()
        final = await wait_for(executor, ctx, template)
        print(
            f"\n[ray] outage {t_up - t_down:.1f}s; status answered again "
            f"{time.monotonic() - t_up:.2f}s after the dashboard came back"
        )
        assert final.phase is TaskPhase.SUCCEEDED
        assert (await executor.resolve_outputs(ctx, "y"))["y"].scalar.primitive.integer == 10
    finally:
        await executor.close()


class PhaseRecorder:
    def __init__(self) -> None:
        self.phases: list[int] = []

    async def record_task_event(self, event: event_pb2.TaskExecutionEvent) -> None:
        self.phases.append(event.phase)


class CountingRayExecutor(RayExecutor):
    """Records every status the engine is told (the driver only reports changes)."""

    answers: list[TaskPhase]

    async def check_task_status(self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate) -> TaskStatus:
        status = await super().check_task_status(task_ctx, task)
        self.answers.append(status.phase)
        return status


async def test_driver_survives_a_dashboard_outage(
    ray_head: RayHead, proxy: TcpProxy, store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    executor = CountingRayExecutor(address=proxy.address, request_timeout=5)
    executor.answers = []
    await executor.initialize(ExecutorInitializationParameters(data_store=store))
    try:
        ctx = make_ctx()
        command = ["python", "-c", "import time; time.sleep(6)\n" + TYPED, *TYPED_COMMAND[3:]]
        template = typed_template(command)
        inputs = int_inputs(x=7)
        await store.write_protobuf(ctx.task_template_file, template)
        await store.write_protobuf(ctx.inputs_file, inputs)
        seen: list[TaskStatus] = []

        async def load_inputs() -> literals_pb2.LiteralMap:
            return inputs

        driver = ExecutionDriver(
            executor,
            template,
            ctx,
            inputs_loader=load_inputs,
            policy=PollPolicy(interval=0.2, max_backoff=1.0, unknown_limit=12, call_timeout=10),
            event_recorders=(PhaseRecorder(),),
            on_change=lambda _ctx, status: seen.append(status),
        )

        async def outage() -> float:
            while not any(s.phase is TaskPhase.RUNNING for s in seen):
                await asyncio.sleep(0.05)
            await proxy.close()
            t_down = time.monotonic()
            await asyncio.sleep(4)
            await proxy.open()
            return time.monotonic() - t_down

        t0 = time.monotonic()
        final, outage_seconds = await asyncio.wait_for(asyncio.gather(driver.run(), outage()), 120)
        phases = [s.phase for s in seen]
        print(
            f"\n[ray] driver: {outage_seconds:.1f}s outage answered by "
            f"{executor.answers.count(TaskPhase.UNKNOWN)} UNKNOWNs (limit 12) in {len(executor.answers)} "
            f"checks; phase changes {[p.name for p in phases]}; total {time.monotonic() - t0:.1f}s"
        )
        assert final.phase is TaskPhase.SUCCEEDED, final
        assert TaskPhase.UNKNOWN in phases
        assert 2 <= executor.answers.count(TaskPhase.UNKNOWN) < 12
        assert phases[-1] is TaskPhase.SUCCEEDED
        assert (await executor.resolve_outputs(driver.ctx, "y"))["y"].scalar.primitive.integer == 14
    finally:
        await executor.close()


def non_loopback_ipv4() -> str | None:
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return str(address.address)
    return None


async def test_local_data_dir_needs_a_loopback_dashboard(
    store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    executor = RayExecutor(address="http://ray-head.example.com:8265")
    await executor.initialize(ExecutorInitializationParameters(data_store=store))
    try:
        ctx = make_ctx()
        status = await executor.start_task(ctx, typed_template(), int_inputs(x=1))
        assert status.phase is TaskPhase.PERMANENT_FAILURE
        assert status.err is not None and status.err.code == "DataDirNotShared"
        message = status.err.message
        assert ctx.data_dir in message and "http://ray-head.example.com:8265" in message
        assert "not on this machine" in message and "allow_local_data_dir=True" in message
        assert "shared filesystem path mounted identically on every Ray node" in message
        file_ctx = TaskContext(task_execution_id=ctx.task_execution_id, data_dir="file://" + ctx.data_dir)
        assert (await executor.start_task(file_ctx, typed_template(), int_inputs(x=1))).phase is (
            TaskPhase.PERMANENT_FAILURE
        )
    finally:
        await executor.close()


async def test_memory_data_dir_always_fails(
    ray_executor: RayExecutor, make_ctx: Callable[..., TaskContext]
) -> None:
    ctx = TaskContext(task_execution_id=make_ctx().task_execution_id, data_dir="memory://somewhere/x")
    status = await ray_executor.start_task(ctx, typed_template(), int_inputs(x=1))
    assert status.phase is TaskPhase.PERMANENT_FAILURE
    assert status.err is not None and status.err.code == "DataDirNotShared"
    assert "memory://somewhere/x/inputs.pb" in status.err.message


async def test_allow_local_data_dir_with_a_non_loopback_address(
    ray_head: RayHead, store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    """A shared mount (here: the same machine) reached through a non-loopback address."""
    ip = non_loopback_ipv4()
    if ip is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    tcp = TcpProxy(ray_head.dashboard_port, host=ip)
    await tcp.open()
    executor = RayExecutor(address=tcp.address, allow_local_data_dir="true")
    await executor.initialize(ExecutorInitializationParameters(data_store=store))
    try:
        ctx = make_ctx()
        template = typed_template()
        assert (await start(executor, store, ctx, template, int_inputs(x=4))).phase is TaskPhase.QUEUED
        assert (await wait_for(executor, ctx, template)).phase is TaskPhase.SUCCEEDED
        assert (await executor.resolve_outputs(ctx, "y"))["y"].scalar.primitive.integer == 8
    finally:
        await executor.close()
        await tcp.close()


# -- pure functions (no Ray needed) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", 0.5),
        ("2", 2.0),
        ("1.5", 1.5),
        ("1Gi", 2.0**30),
        ("512Mi", 512 * 2.0**20),
        ("1G", 1e9),
        ("100k", 1e5),
        ("1e3", 1000.0),
        ("250u", 0.00025),
        (" 3 ", 3.0),
        (4, 4.0),
        (0.25, 0.25),
    ],
)
def test_parse_quantity(text: str | float, value: float) -> None:
    assert parse_quantity(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "lots", "1GB", "1gi", "-1", "1 Gi Gi", "nan", "m"])
def test_parse_quantity_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="resources memory"):
        parse_quantity(text, what="resources memory")


def test_entrypoint_resources_from_requests_then_limits() -> None:
    resources = resources_from_mapping(
        {"requests": {"cpu": "500m", "memory": "1.5Gi"}, "limits": {"cpu": "4", "gpu": "1"}}
    )
    assert resources is not None
    assert ray_entrypoint_resources(resources) == {
        "entrypoint_num_cpus": 0.5,
        "entrypoint_num_gpus": 1.0,
        "entrypoint_memory": 1610612736,
    }
    assert ray_entrypoint_resources(tasks_pb2.Resources()) == {}


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("10.0.0.1", False),
        ("ray-head", False),
        ("0.0.0.0", False),
        (None, False),
    ],
)
def test_loopback_hosts(host: str | None, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_configuration_from_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "https://ray.example.com:8443/")
    executor = RayExecutor(
        headers='{"X-Team": "data"}',
        token="s3cret",
        request_timeout="7.5",
        runtime_env='{"env_vars": {"A": "1"}, "pip": ["requests"]}',
        allow_local_data_dir="false",
    )
    assert executor.address == "https://ray.example.com:8443"
    assert executor.headers == {"X-Team": "data", "Authorization": "Bearer s3cret"}
    assert executor.request_timeout == 7.5
    assert executor.runtime_env == {"env_vars": {"A": "1"}, "pip": ["requests"]}
    assert executor.allow_local_data_dir is False
    monkeypatch.setenv("RAY_ADDRESS", "ray://10.0.0.1:10001")  # not the dashboard: ignored
    assert RayExecutor().address == "http://127.0.0.1:8265"
    monkeypatch.delenv("RAY_ADDRESS")
    assert RayExecutor(address="http://h:1").address == "http://h:1"
