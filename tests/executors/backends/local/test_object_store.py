"""The local executor with its data on an object store only: a real S3 server (moto's, on
loopback; ``s3_bucket`` in tests/conftest.py), reached through s3fs with the usual ``AWS_*``
variables, and no shared local path. Run as a user runs it, through ``run-typed-task``."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from flyteidl.core import literals_pb2

from executors import (
    DataStore,
    ExecutionDriver,
    ExecutorInitializationParameters,
    PollPolicy,
    TaskContext,
    TaskExecutionID,
    TaskPhase,
    TaskStatus,
)
from executors.backends.local import LocalExecutor
from executors.data.storage import join
from harness.s3_server import S3Server
from harness.tcp_proxy import TcpProxy
from tests.conftest import INT, make_identifier, python_template

# Reads its input and writes its output through task_io (so through s3fs in the task's process),
# and prints whether it was handed the starter's S3 credentials.
TASK = """
import os, sys
from executors import task_io
x = task_io.read_inputs(sys.argv[1], sys.argv[3])["x"]
print("credentials:", os.environ.get("AWS_ACCESS_KEY_ID"), flush=True)
task_io.write_outputs(sys.argv[2], {"y": x * 2}, sys.argv[3])
"""


def run_task(data_dir: str, tmp_path: Path) -> tuple[int, str, str]:
    cli = Path(sys.executable).with_name("run-typed-task")
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    done = subprocess.run(
        [str(cli), "--data-dir", data_dir, "--input-type", "x=int", "--output-type", "y=int", "--input", "x=21",
         "--command", "python", "-c", TASK, "{{.input}}", "{{.outputPrefix}}", "{{.taskTemplatePath}}"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout, done.stderr


def test_a_task_reads_and_writes_its_data_on_s3_only(s3_bucket: str, tmp_path: Path) -> None:
    data_dir = join(s3_bucket, "executions")
    code, out, err = run_task(data_dir, tmp_path)
    assert code == 0, err
    assert json.loads(out) == {"y": 42}
    # On the store: the template, the inputs and the outputs the task wrote through s3fs.
    names = {ref.rsplit("/", 1)[1] for ref in asyncio.run(DataStore().find(data_dir))}
    assert {"inputs.pb", "outputs.pb"} <= names, names
    # The task got the credentials it needs for that store (and only because its data is there).
    assert "[stdout] credentials: testing" in err, err
    assert not (tmp_path / "data").exists()


def test_a_task_with_local_data_is_not_handed_the_cloud_credentials(s3_bucket: str, tmp_path: Path) -> None:
    assert os.environ.get("AWS_ACCESS_KEY_ID") == "testing"  # set by the s3_server fixture
    code, out, err = run_task(str(tmp_path / "data"), tmp_path)
    assert code == 0, err
    assert json.loads(out) == {"y": 42}
    assert "[stdout] credentials: None" in err, err


# Reads its input, then waits for the test at two gates (local files): before writing its outputs
# to the store, and before exiting, so that the test cuts the store off at known moments.
GATED_TASK = """
import os, sys, time
from executors import task_io
gates = sys.argv[4]
def wait(name):
    deadline = time.monotonic() + 120
    while not os.path.exists(os.path.join(gates, name)) and time.monotonic() < deadline:
        time.sleep(0.05)
x = task_io.read_inputs(sys.argv[1], sys.argv[3])["x"]
open(os.path.join(gates, "started"), "a").write("started\\n")
wait("write")
task_io.write_outputs(sys.argv[2], {"y": 2 * x}, sys.argv[3])
open(os.path.join(gates, "written"), "w").close()
wait("exit")
"""


async def wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never came"
        await asyncio.sleep(0.05)


async def test_the_store_cut_off_for_ten_seconds_while_polling_and_at_the_end_is_waited_out(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Everything (this driver and the task's own process) reaches S3 through a proxy that the
    test closes for 10 s twice: while the task runs, and after it wrote its outputs and exited,
    when the end is read from the store. Each outage is UNKNOWN (never a failure); then the same
    execution succeeds with its outputs, started once."""
    proxy = TcpProxy(s3_server.port)
    await proxy.open()
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.address)
    store = DataStore()
    executor = LocalExecutor(state_root=str(tmp_path / "state"))
    await executor.initialize(ExecutorInitializationParameters(data_store=store))
    gates = tmp_path / "gates"
    gates.mkdir()
    ident = make_identifier(run=f"run-{uuid.uuid4().hex[:8]}")
    ctx = TaskContext(
        task_execution_id=TaskExecutionID.create(ident), data_dir=f"{s3_bucket}/outage/{uuid.uuid4().hex[:8]}"
    )
    template = python_template(
        GATED_TASK, "{{.input}}", "{{.outputPrefix}}", "{{.taskTemplatePath}}", str(gates),
        inputs={"x": INT}, outputs={"y": INT},
    )  # fmt: skip
    inputs = literals_pb2.LiteralMap()
    inputs.literals["x"].scalar.primitive.integer = 21
    await store.write_protobuf(ctx.task_template_file, template)
    await store.write_protobuf(ctx.inputs_file, inputs)
    seen: list[tuple[float, TaskStatus]] = []

    async def load() -> literals_pb2.LiteralMap:
        return inputs

    driver = ExecutionDriver(
        executor, template, ctx, inputs_loader=load,
        policy=PollPolicy(interval=0.5, watched_interval=1.0, output_interval=0, call_timeout=30),
        on_change=lambda _ctx, status: seen.append((time.monotonic(), status)),
    )  # fmt: skip
    running = asyncio.create_task(driver.run())
    try:
        await wait_for(gates / "started")
        await proxy.close()  # 1: while it runs
        await asyncio.sleep(10)
        await proxy.open()
        (gates / "write").touch()
        await wait_for(gates / "written")
        await proxy.close()  # 2: it exits, and its end (outputs.pb, error.pb) is on the cut-off store
        cut_at = time.monotonic()
        (gates / "exit").touch()
        # However slow the machine: once the driver looked at the end and could not read it (UNKNOWN),
        # the store stays cut off 10 s more.
        deadline = time.monotonic() + 60
        while not any(s.phase is TaskPhase.UNKNOWN for at, s in seen if at >= cut_at):
            assert not running.done(), f"the driver ended while the store was cut off: {running.result()}"
            assert time.monotonic() < deadline, f"the end was never looked at in 60 s: {seen[-3:]}"
            await asyncio.sleep(0.1)
        await asyncio.sleep(10)
        during = [status for at, status in seen if at >= cut_at]
        assert not running.done() and all(not s.phase.is_final_for_execution() for s in during), during
        await proxy.open()
        back_at = time.monotonic()
        final = await asyncio.wait_for(running, 90)
        print(
            f"[s3 outage] statuses while the store was cut off at the end: {[s.phase.name for s in during]}; "
            f"success {time.monotonic() - back_at:.2f}s after it came back"
        )
        outputs = await executor.resolve_outputs(ctx, "y")
    finally:
        running.cancel()
        await proxy.close()
        await executor.close()
    assert final.phase is TaskPhase.SUCCEEDED, final
    unknown = next(s for s in during if s.phase is TaskPhase.UNKNOWN)
    assert "outputs.pb" in str(unknown.err) or "error.pb" in str(unknown.err), unknown
    assert outputs["y"].scalar.primitive.integer == 42
    assert (gates / "started").read_text() == "started\n"  # one start
