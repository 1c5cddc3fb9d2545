"""What used to crash the supervisor and read as "did not start; see supervisor.log", with the next
try adopting the dead claim and waiting ``launch_timeout``:

* an environment variable name with ``=``, an empty one or one with a NUL byte, a NUL byte in a
  secret's value, a NUL byte in a rendered command argument: refused BEFORE anything is launched, as
  a permanent (user) failure naming the variable or the argument's index;
* the supervisor failing (a write refused by RLIMIT_FSIZE; a real full disk, a tiny tmpfs in a
  private mount namespace when this machine allows one): a retryable failure whose message holds the
  real cause; the claim is marked failed on disk, so a check answers the failure at once and a
  re-start of the same name does not wait; no temporary file and no process is left behind.

Each runs beside a healthy task that must still succeed."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flyteidl.core import literals_pb2, types_pb2

from executors import (
    DataStore,
    ErrorOrigin,
    ExecutorInitializationParameters,
    TaskContext,
    TaskOverrides,
    TaskPhase,
)
from executors.backends.local import LocalExecutor
from executors.backends.local.executor import SUPERVISOR
from tests.conftest import make_template, python_template
from tests.executors.backends.local.helpers import (
    healthy_task_beside,
    kill_marked,
    new_marker,
    processes_with,
    start,
    wait_final,
)

STRING = types_pb2.LiteralType(simple=types_pb2.STRING)
REPO = str(Path(__file__).resolve().parents[4])


@pytest.fixture
def marker() -> Iterator[str]:
    value = new_marker()
    yield value
    kill_marked(value)


async def local_executor(base: Path, store: DataStore, **options: Any) -> LocalExecutor:
    ex = LocalExecutor(state_root=str(base / "state"), kill_grace_period=1, **options)
    await ex.initialize(ExecutorInitializationParameters(data_store=store))
    return ex


def bad_ctx(make_ctx: Callable[..., TaskContext], base: Path, **kwargs: Any) -> TaskContext:
    ctx = make_ctx(**kwargs)
    return dataclasses.replace(ctx, data_dir=str(base / "data" / ctx.generated_name))


def nothing_launched(base: Path, marker: str) -> None:
    assert list(base.rglob("claim")) == [], "a launch was claimed"
    assert list(base.rglob("*.tmp-*")) == []
    assert processes_with(marker) == []


@pytest.mark.parametrize(
    ("where", "name", "problem"),
    [
        ("template", "BAD=NAME", "contains '='"),
        ("template", "", "is empty"),
        ("template", "BAD\x00NAME", "contains a NUL byte"),
        ("overrides", "ALSO=BAD", "contains '='"),
        ("secrets", "SECRET=X", "contains '='"),
    ],
)
async def test_an_invalid_environment_variable_name_is_a_permanent_failure_naming_it(
    where: str,
    name: str,
    problem: str,
    marker: str,
    store: DataStore,
    make_ctx: Callable[..., TaskContext],
    tmp_path: Path,
) -> None:
    base = tmp_path / "bad"
    executor = await local_executor(base, store)
    ctx = bad_ctx(make_ctx, base)
    env = {"GOOD": "1"}
    if where == "template":
        env[name] = "x"
    elif where == "overrides":
        ctx = dataclasses.replace(ctx, overrides=TaskOverrides(environment={name: "x"}))
    else:
        ctx = dataclasses.replace(ctx, secret_environment={name: "s3cr3t-value"})
    template = python_template("import time; time.sleep(30)", marker, env=env)
    async with healthy_task_beside(tmp_path / "healthy"):
        t0 = time.monotonic()
        status = await start(executor, store, ctx, template)
        assert time.monotonic() - t0 < 5  # no launch_timeout wait
        assert status.phase is TaskPhase.PERMANENT_FAILURE, status
        assert status.err is not None
        assert (status.err.code, status.err.origin) == ("InvalidEnvironment", ErrorOrigin.USER)
        assert f"environment variable name {name!r}" in status.err.message
        assert problem in status.err.message
        assert "s3cr3t-value" not in status.err.message
        nothing_launched(base, marker)


async def test_a_nul_byte_in_a_secret_value_names_the_variable_not_the_value(
    marker: str, store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path
) -> None:
    base = tmp_path / "bad"
    executor = await local_executor(base, store)
    ctx = dataclasses.replace(bad_ctx(make_ctx, base), secret_environment={"API_TOKEN": "s3cr3t\x00value"})
    template = python_template("import time; time.sleep(30)", marker)
    async with healthy_task_beside(tmp_path / "healthy"):
        status = await start(executor, store, ctx, template)
        assert status.phase is TaskPhase.PERMANENT_FAILURE, status
        assert status.err is not None and status.err.code == "InvalidEnvironment"
        assert "'API_TOKEN'" in status.err.message and "NUL byte" in status.err.message
        assert "s3cr3t" not in status.err.message
        nothing_launched(base, marker)


async def test_a_nul_byte_in_a_rendered_argument_is_a_permanent_failure_naming_its_index(
    marker: str, store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path
) -> None:
    base = tmp_path / "bad"
    executor = await local_executor(base, store)
    ctx = bad_ctx(make_ctx, base)
    template = make_template(["echo", marker, "--name={{.inputs.s}}"], inputs={"s": STRING})
    inputs = literals_pb2.LiteralMap()
    inputs.literals["s"].scalar.primitive.string_value = "evil\x00name"
    async with healthy_task_beside(tmp_path / "healthy"):
        status = await start(executor, store, ctx, template, inputs)
        assert status.phase is TaskPhase.PERMANENT_FAILURE, status
        assert status.err is not None
        assert (status.err.code, status.err.origin) == ("InvalidCommand", ErrorOrigin.USER)
        assert "command argument 2" in status.err.message and "NUL byte" in status.err.message
        nothing_launched(base, marker)


def _no_file_may_grow() -> None:  # runs in the supervisor's process, before exec
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a refused write fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


@pytest.fixture
def supervisors_cannot_write(monkeypatch: pytest.MonkeyPatch) -> Callable[[LocalExecutor], None]:
    """``arm(executor)``: the supervisors that executor launches cannot write a byte to any file
    (RLIMIT_FSIZE 0), so their first write (pid.json) fails with a real OSError."""
    armed = threading.local()
    real = subprocess.Popen

    def popen(args: Any, *rest: Any, **kwargs: Any) -> Any:
        if getattr(armed, "on", False) and SUPERVISOR in [str(a) for a in args]:
            kwargs["preexec_fn"] = _no_file_may_grow
        return real(args, *rest, **kwargs)

    def arm(executor: LocalExecutor) -> None:
        spawn = executor._spawn_supervisor

        def spawn_armed(*args: Any) -> Any:
            armed.on = True  # the launch runs in one thread: only its own Popen is affected
            try:
                return spawn(*args)
            finally:
                armed.on = False

        monkeypatch.setattr(executor, "_spawn_supervisor", spawn_armed)

    monkeypatch.setattr(subprocess, "Popen", popen)
    return arm


async def test_a_supervisor_that_fails_reports_the_real_cause_and_leaves_a_failed_claim(
    supervisors_cannot_write: Callable[[LocalExecutor], None],
    marker: str,
    store: DataStore,
    make_ctx: Callable[..., TaskContext],
    tmp_path: Path,
) -> None:
    base = tmp_path / "bad"
    executor = await local_executor(base, store, max_concurrent=1, launch_timeout=30)
    supervisors_cannot_write(executor)
    ctx = bad_ctx(make_ctx, base)
    template = python_template("import time; time.sleep(60)", marker)
    async with healthy_task_beside(tmp_path / "healthy"):
        status = await start(executor, store, ctx, template)
        assert status.phase is TaskPhase.RETRYABLE_FAILURE, status
        assert status.err is not None
        assert (status.err.code, status.err.origin) == ("LaunchFailed", ErrorOrigin.SYSTEM)
        assert "File too large" in status.err.message  # the real cause, not only a file to look at
        assert "pid.json" in status.err.message
        # Marked failed on disk: a check (from any process) answers at once, not QUEUED for 30 s...
        t0 = time.monotonic()
        checked = await executor.check_task_status(ctx, template)
        assert checked.phase is TaskPhase.RETRYABLE_FAILURE, checked
        assert checked.err is not None and "File too large" in checked.err.message
        # ... and so does a re-start of the same name, which never launches a second time.
        again = await executor.start_task(ctx, template, literals_pb2.LiteralMap())
        assert again.phase is TaskPhase.RETRYABLE_FAILURE, again
        assert time.monotonic() - t0 < 2
        other = LocalExecutor(state_root=executor.state_root)  # what another process sees
        await other.initialize(ExecutorInitializationParameters(data_store=store))
        assert (await other.check_task_status(ctx, template)).phase is TaskPhase.RETRYABLE_FAILURE
        # Nothing left: no temporary file, no process, and the slot is free for the next task.
        assert list(base.rglob("*.tmp-*")) == []
        assert processes_with(marker) == []
        next_ctx = make_ctx(node="next")
        fresh = LocalExecutor(state_root=executor.state_root, max_concurrent=1)  # not armed
        await fresh.initialize(ExecutorInitializationParameters(data_store=store))
        nxt = await start(fresh, store, next_ctx, python_template("pass"))
        assert nxt.phase is TaskPhase.RUNNING, nxt  # max_concurrent=1: the failed launch holds no slot
        assert (await wait_final(fresh, next_ctx, python_template("pass"))).phase is TaskPhase.SUCCEEDED


# -- a real full disk ----------------------------------------------------------------------------

FULL_DISK_PROBE = textwrap.dedent(
    """
    import asyncio, dataclasses, json, os, subprocess, sys, time
    sys.path.insert(0, sys.argv[1])
    mnt, marker = sys.argv[2], sys.argv[3]
    out = {}
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt]).returncode:
        print(json.dumps({"skip": "cannot mount a tmpfs"}))
        sys.exit(0)
    from flyteidl.core import literals_pb2
    from executors import DataStore, ExecutorInitializationParameters, TaskContext, TaskExecutionID
    from executors.backends.local import LocalExecutor
    from executors.backends.local.executor import SUPERVISOR
    from tests.conftest import make_identifier, python_template

    def fill():
        fd = os.open(os.path.join(mnt, "filler"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            while True:
                os.write(fd, b"\\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)

    armed = []
    real = subprocess.Popen
    def popen(args, *rest, **kwargs):
        if armed and SUPERVISOR in list(args):
            armed.clear()
            fill()  # everything the launcher writes is on disk: now the disk is full
        return real(args, *rest, **kwargs)
    subprocess.Popen = popen

    def describe(status):
        err = status.err
        return [status.phase.name, err.code if err else "", err.message if err else ""]

    async def main():
        store = DataStore()
        executor = LocalExecutor(state_root=os.path.join(mnt, "state"), launch_timeout=30)
        await executor.initialize(ExecutorInitializationParameters(data_store=store))
        template = python_template("import time; time.sleep(60)", marker)
        for case in ("launcher", "supervisor"):
            ctx = TaskContext(
                task_execution_id=TaskExecutionID.create(make_identifier(node=case)),
                data_dir=os.path.join(mnt, "data", case),
            )
            os.makedirs(ctx.data_dir)
            if case == "launcher":
                fill()  # full before anything is written
            else:
                armed.append(True)  # full once the launcher has done its part
            status = await executor.start_task(ctx, template, literals_pb2.LiteralMap())
            t0 = time.monotonic()
            checked = await executor.check_task_status(ctx, template)
            again = await executor.start_task(ctx, template, literals_pb2.LiteralMap())
            out[case] = {
                "start": describe(status), "check": describe(checked), "again": describe(again),
                "seconds": time.monotonic() - t0,
                "tmp": [os.path.join(d, f) for d, _, fs in os.walk(mnt) for f in fs if ".tmp-" in f],
            }
            os.unlink(os.path.join(mnt, "filler"))
        print(json.dumps(out))

    asyncio.run(main())
    """
)


def _namespace_prefix() -> list[str] | None:
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return None
    prefix = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-r", "-m"]
    if subprocess.run([*prefix, "true"], capture_output=True).returncode != 0:
        return None
    return prefix


async def test_a_real_full_disk_is_reported_as_such_with_nothing_left_behind(
    marker: str, tmp_path: Path
) -> None:
    prefix = _namespace_prefix()
    if prefix is None:
        pytest.skip("no private mount namespace here (unshare -m): cannot mount a tiny tmpfs")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    async with healthy_task_beside(tmp_path / "healthy"):
        proc = await asyncio.create_subprocess_exec(
            *prefix, sys.executable, "-c", FULL_DISK_PROBE, REPO, str(mnt), marker,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    result = json.loads(out.decode().strip().splitlines()[-1])
    if "skip" in result:
        pytest.skip(result["skip"])
    for case in ("launcher", "supervisor"):
        got = result[case]
        phase, code, message = got["start"]
        assert (phase, code) == ("RETRYABLE_FAILURE", "LaunchFailed"), (case, got)
        assert "No space left on device" in message, (case, message)
        assert got["check"][0] in ("RETRYABLE_FAILURE", "UNDEFINED"), (case, got)  # never QUEUED
        assert got["again"][0] == "RETRYABLE_FAILURE", (case, got)
        assert got["seconds"] < 2, (case, got)
        assert got["tmp"] == [], (case, got)
    assert result["supervisor"]["check"][:2] == ["RETRYABLE_FAILURE", "LaunchFailed"]
    assert "No space left on device" in result["supervisor"]["check"][2]
    assert processes_with(marker) == []


async def test_a_claim_whose_launcher_died_fails_at_once_instead_of_waiting_launch_timeout(
    marker: str, store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path
) -> None:
    """The process that claimed the launch died before the supervisor reported (a worker SIGKILLed
    mid-launch): the next try's check and a re-start answer at once, not after launch_timeout."""
    base = tmp_path / "bad"
    executor = await local_executor(base, store, launch_timeout=30)
    ctx = bad_ctx(make_ctx, base)
    template = python_template("import time; time.sleep(30)", marker)
    dead = subprocess.Popen(["true"])
    dead.wait()
    state = Path(executor.state_dir(ctx))
    state.mkdir(parents=True)
    record = {"claimed_at": time.time() - 5, "launcher_pid": dead.pid, "launcher_create_time": 1.0}
    (state / "claim").write_text(json.dumps(record))
    async with healthy_task_beside(tmp_path / "healthy"):
        t0 = time.monotonic()
        checked = await executor.check_task_status(ctx, template)
        again = await executor.start_task(ctx, template, literals_pb2.LiteralMap())
        assert time.monotonic() - t0 < 2
        for status in (checked, again):
            assert status.phase is TaskPhase.RETRYABLE_FAILURE, status
            assert status.err is not None and status.err.code == "LaunchFailed"
            assert f"the process that was launching it (pid {dead.pid}) is gone" in status.err.message
        assert processes_with(marker) == []  # the re-start launched nothing
