"""A real, private Ray head for the session (no mock of the Jobs API), and a TCP proxy to cut it off.

The head runs ``ray start --head --block`` in its own process group, with its own temp dir and
free ports (GCS, dashboard, client server, dashboard agent), so it collides neither with another
Ray on this machine nor with a second test session. It is stopped by signalling the processes it
started (by pid), never with ``ray stop``, which would stop every Ray of this user on the machine.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from executors import DataStore, ExecutorInitializationParameters, TaskContext
from executors.backends.ray import RayExecutor
from harness.tcp_proxy import TcpProxy


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass
class RayHead:
    address: str
    """The dashboard URL (Jobs API)."""
    dashboard_port: int
    temp_dir: Path
    log_file: Path
    process: subprocess.Popen[bytes]
    startup_seconds: float = 0.0
    gcs_port: int = 0
    """The GCS port (``ray start --address 127.0.0.1:<gcs_port>`` adds a node)."""

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _ray_cli() -> str:
    candidate = Path(sys.executable).with_name("ray")
    return str(candidate) if candidate.exists() else "ray"


def start_ray_head(extra_env: dict[str, str] | None = None, timeout: float = 120) -> RayHead:
    """``ray start --head --block`` on free ports with its own temp dir; returns once the
    dashboard's Jobs API answers (any HTTP answer: with token auth it is a 401)."""
    # A short path: Ray puts unix sockets under it (limit ~107 characters).
    base = "/tmp" if os.path.isdir("/tmp") else None
    temp_dir = Path(tempfile.mkdtemp(prefix="rayt-", dir=base))
    dashboard_port = free_port()
    ports = {
        "--port": free_port(),
        "--dashboard-port": dashboard_port,
        "--ray-client-server-port": free_port(),
        "--dashboard-agent-listen-port": free_port(),
        "--dashboard-agent-grpc-port": free_port(),
        "--runtime-env-agent-port": free_port(),
        "--metrics-export-port": free_port(),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(
        {
            "RAY_TMPDIR": str(temp_dir),
            "RAY_USAGE_STATS_ENABLED": "0",
            # Jobs run `python ...` from the head's environment: this venv's interpreter.
            "PATH": os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", os.defpath)]),
            **(extra_env or {}),
        }
    )
    command = [
        _ray_cli(), "start", "--head", "--block",
        "--node-ip-address", "127.0.0.1",
        "--dashboard-host", "127.0.0.1",
        "--include-dashboard", "true",
        "--disable-usage-stats",
        "--num-cpus", "2",
        "--num-gpus", "0",
        "--temp-dir", str(temp_dir),
    ]  # fmt: skip
    for flag, port in ports.items():
        command += [flag, str(port)]
    log_file = temp_dir / "ray-start.log"
    t0 = time.monotonic()
    with open(log_file, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=temp_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    head = RayHead(
        f"http://127.0.0.1:{dashboard_port}",
        dashboard_port,
        temp_dir,
        log_file,
        process,
        gcs_port=ports["--port"],
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"ray start exited with {process.returncode}:\n{head.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{head.address}/api/jobs/", timeout=2).status_code in (200, 401):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Ray Jobs API did not answer within {timeout:g}s:\n{head.log_tail()}")
            time.sleep(0.25)
    except BaseException:
        stop_ray_head(head)
        raise
    head.startup_seconds = time.monotonic() - t0
    return head


def alive_nodes(head: RayHead) -> list[dict[str, Any]]:
    """The cluster's live nodes, from the dashboard's state API."""
    response = httpx.get(f"{head.address}/api/v0/nodes", params={"limit": 100}, timeout=10)
    response.raise_for_status()
    nodes = response.json()["data"]["result"]["result"]
    return [node for node in nodes if node.get("state") == "ALIVE"]


def bare_python(root: Path, without: tuple[str, ...]) -> Path:
    """A virtualenv at ``root`` that has everything this one has (symlinks to its site-packages
    entries, so it takes no download and a second) except this package and the distributions in
    ``without``: the Python of a Ray node where this package was never installed. Returns its
    ``python``."""
    site = Path(sysconfig.get_paths()["purelib"])
    hidden = {"__editable__", "airflow_provider_executors"}
    for name in without:
        files = importlib.metadata.distribution(name).files or []
        hidden.update(Path(str(f)).parts[0] for f in files)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    target = Path(sysconfig.get_paths(vars={"base": str(root), "platbase": str(root)})["purelib"])
    for entry in site.iterdir():
        top = entry.name.split("-", 1)[0] if entry.name.endswith(".dist-info") else entry.name
        if entry.name in hidden or top in hidden or any(entry.name.startswith(h) for h in hidden):
            continue
        if not (target / entry.name).exists():
            (target / entry.name).symlink_to(entry)
    return root / "bin" / "python"


def start_ray_worker(
    head: RayHead,
    resource: str,
    extra_env: dict[str, str] | None = None,
    timeout: float = 120,
    python: Path | None = None,
) -> RayHead:
    """A second node of ``head``'s cluster (``ray start --address``, its own temp dir and ports,
    one CPU and the custom resource ``resource``); returns once the head lists it alive. The result
    is a :class:`RayHead` for its process and folder (its ``address`` is the head's dashboard):
    :func:`stop_ray_head` stops it, SIGKILL of its process group kills it. With ``python`` (e.g.
    from :func:`bare_python`) the node and its jobs run that interpreter (it comes first on PATH)."""
    temp_dir = Path(tempfile.mkdtemp(prefix="rayw-", dir="/tmp" if os.path.isdir("/tmp") else None))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_") and k != "PYTHONPATH"}
    env.update({"RAY_TMPDIR": str(temp_dir), "RAY_USAGE_STATS_ENABLED": "0", **(extra_env or {})})
    interpreter = str(python) if python is not None else sys.executable
    env["PATH"] = os.pathsep.join([os.path.dirname(interpreter), env.get("PATH", os.defpath)])
    ray = [_ray_cli()] if python is None else [interpreter, "-m", "ray.scripts.scripts"]
    command = [
        *ray, "start", "--address", f"127.0.0.1:{head.gcs_port}", "--block",
        "--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--num-gpus", "0",
        "--resources", json.dumps({resource: 1}), "--temp-dir", str(temp_dir),
        "--node-manager-port", str(free_port()), "--object-manager-port", str(free_port()),
        "--dashboard-agent-listen-port", str(free_port()), "--dashboard-agent-grpc-port", str(free_port()),
        "--runtime-env-agent-port", str(free_port()), "--metrics-export-port", str(free_port()),
    ]  # fmt: skip
    log_file = temp_dir / "ray-start.log"
    t0 = time.monotonic()
    with open(log_file, "wb") as log:
        process = subprocess.Popen(
            command, cwd=temp_dir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    node = RayHead(head.address, head.dashboard_port, temp_dir, log_file, process)
    try:
        deadline = time.monotonic() + timeout
        while not any(resource in (n.get("resources_total") or {}) for n in alive_nodes(head)):
            if process.poll() is not None:
                raise RuntimeError(f"ray start (worker) exited with {process.returncode}:\n{node.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the Ray worker node did not join within {timeout:g}s:\n{node.log_tail()}"
                )
            time.sleep(0.5)
    except BaseException:
        stop_ray_head(node)
        raise
    node.startup_seconds = time.monotonic() - t0
    return node


def stop_ray_head(head: RayHead) -> None:
    """SIGTERM the blocking ``ray start`` (it shuts its node down), then SIGKILL what is left of
    the processes it started (found by pid: its descendants and its process group)."""
    try:
        root = psutil.Process(head.process.pid)
        ours = [root, *root.children(recursive=True)]
    except psutil.Error:
        ours = []
    with contextlib.suppress(ProcessLookupError):
        head.process.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        head.process.wait(timeout=30)
    _, alive = psutil.wait_procs(ours, timeout=5)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(head.process.pid, signal.SIGKILL)  # its own group (start_new_session)
    if head.process.poll() is None:
        head.process.kill()
        head.process.wait(timeout=10)
    shutil.rmtree(head.temp_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def ray_head() -> Iterator[RayHead]:
    head = start_ray_head()
    print(f"\n[ray] head up in {head.startup_seconds:.1f}s, dashboard {head.address}, temp {head.temp_dir}")
    try:
        yield head
    finally:
        t0 = time.monotonic()
        stop_ray_head(head)
        print(f"\n[ray] head stopped in {time.monotonic() - t0:.1f}s")


@pytest.fixture
def make_ctx(make_ctx: Callable[..., TaskContext]) -> Callable[..., TaskContext]:
    """The suite's ``make_ctx``, with a run name unique to each call: every test shares one Ray
    head, whose submission ids (the generated names) must not collide across tests."""

    def make(**kwargs: object) -> TaskContext:
        kwargs.setdefault("run", f"run-{uuid.uuid4().hex[:10]}")
        return make_ctx(**kwargs)

    return make


@pytest.fixture
async def ray_executor(ray_head: RayHead, store: DataStore) -> AsyncIterator[RayExecutor]:
    executor = RayExecutor(address=ray_head.address, request_timeout=10)
    await executor.initialize(ExecutorInitializationParameters(data_store=store))
    yield executor
    await executor.close()


@pytest.fixture
async def proxy(ray_head: RayHead) -> AsyncIterator[TcpProxy]:
    tcp = TcpProxy(ray_head.dashboard_port)
    await tcp.open()
    yield tcp
    await tcp.close()
