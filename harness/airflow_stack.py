"""A real Airflow 3.3 stack on this machine, for the end-to-end and reliability tests and the benchmarks.

``AirflowStack`` runs ``airflow db migrate`` (SQLite, or the database at ``database_url``) in a
temporary ``AIRFLOW_HOME``, then the api-server, scheduler (LocalExecutor), dag-processor and
triggerer, each in its own process group with its output in ``<home>/component-logs/<name>.log``.
``AirflowClient`` is a small REST client over the public API (``/api/v2``) with bounded waits.
``AirflowStack.stop()`` ends every process the stack started, including task processes the
provider's local executor detached.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx
import psutil

from airflow_provider.identity import execution_folder
from harness.local_state import state_dir_of, state_dirs_under

REPO = Path(__file__).resolve().parents[1]
E2E_DAGS = REPO / "tests" / "e2e" / "dags"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
USERS = {"admin": "admin", "viewer": "viewer"}
"""The stack's users and their simple-auth-manager roles."""
TERMINAL_TI_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})


class StackError(RuntimeError):
    """The stack did not come up, or a wait timed out; the message carries the diagnostics."""


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object file, or None while it is missing or half there."""
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 60) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64_000))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def process_alive(pid: int, create_time: float | None = None) -> bool:
    """Whether ``pid`` runs (zombies count as gone; ``create_time`` guards against pid reuse)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return create_time is None or abs(proc.create_time() - create_time) < 1.0
    except psutil.Error:
        return False


def group_alive(pgid: int) -> bool:
    """Whether any non-zombie process is left in process group ``pgid``."""
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) == pgid:
                return True
        except (ProcessLookupError, psutil.Error, OSError):
            continue
    return False


class AirflowClient:
    """The public REST API of the stack's api-server, with bounded polling waits."""

    def __init__(
        self, base_url: str, *, timeout: float = 30.0, username: str = "admin", password: str = ""
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)
        self._token: str | None = None
        self.username, self.password = username, password

    def close(self) -> None:
        self._http.close()

    # -- plumbing ------------------------------------------------------------------------------

    def login(self) -> None:
        """``POST /auth/token`` (the simple auth manager) gives this user a bearer token."""
        self._token = self.token()
        self._http.headers["Authorization"] = f"Bearer {self._token}"

    def token(self) -> str:
        """A new JWT of this user (what the UI keeps in its ``_token`` cookie)."""
        resp = self._http.post("/auth/token", json={"username": self.username, "password": self.password})
        resp.raise_for_status()
        return str(resp.json()["access_token"])

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self._token is None:
            self.login()
        resp = self._http.request(method, path, **kwargs)
        if resp.status_code == 401:  # expired token: once more with a fresh one
            self.login()
            resp = self._http.request(method, path, **kwargs)
        return resp

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self.request(method, path, **kwargs)
        if resp.status_code >= 400:
            raise StackError(f"{method} {path} -> HTTP {resp.status_code}: {resp.text[:1000]}")
        return resp.json() if resp.content else None

    @staticmethod
    def _ti_path(dag_id: str, run_id: str, task_id: str, map_index: int | None = None) -> str:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        return path if map_index is None or map_index < 0 else f"{path}/{map_index}"

    # -- health and DAGs ---------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        resp = self._http.get("/api/v2/monitor/health", timeout=5)
        resp.raise_for_status()
        return dict(resp.json())

    def get_dag(self, dag_id: str) -> dict[str, Any] | None:
        resp = self.request("GET", f"/api/v2/dags/{dag_id}")
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return dict(resp.json())

    def wait_for_dag(self, dag_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until the dag-processor has parsed ``dag_id`` and the API knows it."""
        return dict(wait_until(lambda: self.get_dag(dag_id), timeout, f"DAG {dag_id} to be parsed"))

    def unpause(self, dag_id: str) -> None:
        self._json("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})

    # -- runs and task instances ---------------------------------------------------------------

    def trigger(self, dag_id: str, run_id: str, conf: Mapping[str, Any] | None = None) -> dict[str, Any]:
        body = {"logical_date": None, "dag_run_id": run_id, "conf": dict(conf or {})}
        return dict(self._json("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body))

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}"))

    def task_instance(
        self, dag_id: str, run_id: str, task_id: str, map_index: int | None = None
    ) -> dict[str, Any]:
        return dict(self._json("GET", self._ti_path(dag_id, run_id, task_id, map_index)))

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """All task instances of a run, mapped instances included (one row per map index)."""
        data = self._json(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000}
        )
        return list(data["task_instances"])

    def mapped_task_instances(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        data = self._json(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/listMapped",
            params={"limit": 1000},
        )
        return list(data["task_instances"])

    def set_task_state(
        self, dag_id: str, run_id: str, task_id: str, new_state: str, map_index: int | None = None
    ) -> Any:
        """``PATCH`` a task instance's state, as a user does in the UI (``failed``, ``success``)."""
        return self._json(
            "PATCH", self._ti_path(dag_id, run_id, task_id, map_index), json={"new_state": new_state}
        )

    def xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1
    ) -> Any:
        """The deserialized value of one XCom entry."""
        data = self._json(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
            params={"map_index": map_index, "deserialize": True},
        )
        value = data["value"]
        if isinstance(value, str):  # older/other XCom backends answer the serialized form
            with contextlib.suppress(ValueError):
                return json.loads(value)
        return value

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> list[str]:
        """The messages of a try's log as the UI's Logs tab gets them (worker and trigger logs
        together), oldest first."""
        data = self._json(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": True},
            headers={"Accept": "application/json"},
        )
        content = data.get("content") if isinstance(data, dict) else None
        messages = []
        for item in content or []:
            if isinstance(item, dict):
                messages.append(str(item.get("event", "")))
            elif isinstance(item, str):
                messages.append(item)
        return messages

    def alive_jobs(self, job_type: str) -> list[dict[str, Any]]:
        """The running jobs of a type (``TriggererJob``, ``SchedulerJob``) whose heartbeat is recent."""
        data = self._json(
            "GET", "/api/v2/jobs", params={"job_type": job_type, "state": "running", "is_alive": True}
        )
        return list(data.get("jobs", []))

    def pool(self, name: str = "default_pool") -> dict[str, Any]:
        return dict(self._json("GET", f"/api/v2/pools/{name}"))

    # -- waits ---------------------------------------------------------------------------------

    def wait_for_task_state(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        states: str | Iterable[str],
        *,
        timeout: float = 60.0,
        map_index: int | None = None,
        interval: float = 0.25,
    ) -> dict[str, Any]:
        """Poll until the task instance is in one of ``states``; fail early on another terminal one."""
        wanted = {states} if isinstance(states, str) else set(states)
        last: dict[str, Any] = {}

        def check() -> dict[str, Any] | None:
            nonlocal last
            last = self.task_instance(dag_id, run_id, task_id, map_index)
            state = last.get("state")
            if state in wanted:
                return last
            if state in TERMINAL_TI_STATES:
                raise StackError(
                    f"{dag_id}/{run_id}/{task_id}: ended {state!r} (try {last.get('try_number')}) "
                    f"while waiting for {sorted(wanted)}"
                )
            return None

        return dict(
            wait_until(
                check,
                timeout,
                f"{dag_id}/{run_id}/{task_id} to reach {sorted(wanted)}",
                interval=interval,
                last=lambda: last.get("state"),
            )
        )

    def wait_for_run_state(
        self, dag_id: str, run_id: str, states: str | Iterable[str], *, timeout: float = 60.0
    ) -> dict[str, Any]:
        wanted = {states} if isinstance(states, str) else set(states)
        last: dict[str, Any] = {}

        def check() -> dict[str, Any] | None:
            nonlocal last
            last = self.dag_run(dag_id, run_id)
            return last if last.get("state") in wanted else None

        what = f"run {dag_id}/{run_id} to reach {sorted(wanted)}"
        return dict(wait_until(check, timeout, what, last=lambda: last.get("state")))


def wait_until(probe: Any, timeout: float, what: str, *, interval: float = 0.25, last: Any = None) -> Any:
    """Call ``probe`` until it returns something truthy, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            seen = f" (last seen: {last()!r})" if last is not None else ""
            raise StackError(f"timed out after {timeout:g}s waiting for {what}{seen}")
        time.sleep(interval)


class AirflowStack:
    """api-server + scheduler + dag-processor + triggerer over SQLite in ``home``.

    ``database_url``: another metadata database (e.g. ``postgresql+psycopg2://...``) instead of
    ``<home>/airflow.db``. ``extra_env``: more environment variables for every component, applied
    last (so they may override the defaults, e.g. ``PYTHONPATH`` or the executor config).
    """

    def __init__(
        self,
        home: Path,
        dags_folder: Path = E2E_DAGS,
        *,
        poll_interval: float = 1.0,
        database_url: str | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.home = home
        self.dags_folder = dags_folder
        self.poll_interval = poll_interval
        self.database_url = database_url or f"sqlite:///{home / 'airflow.db'}"
        self.extra_env = dict(extra_env or {})
        self.data_dir = home / "executions"
        self.state_root = home / "local-state"
        self.component_logs = home / "component-logs"
        self.airflow = str(Path(sys.executable).with_name("airflow"))
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = self._environment()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.retired: list[subprocess.Popen[bytes]] = []  # killed components, kept to reap them
        self.started_at: dict[str, float] = {}  # epoch seconds of each component's last start
        # Named users of the simple auth manager, with known passwords (written before the
        # api-server starts, which then keeps them): an admin for the REST API, and a viewer, who
        # may read everything and change nothing.
        self.passwords = {name: secrets.token_urlsafe(12) for name in USERS}
        self.client = AirflowClient(self.base_url, username="admin", password=self.passwords["admin"])
        self.startup_seconds: float | None = None

    def client_for(self, username: str) -> AirflowClient:
        """A REST client logged in as one of :data:`USERS` (the caller closes it)."""
        return AirflowClient(self.base_url, username=username, password=self.passwords[username])

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        worker_log_port, trigger_log_port = free_port(), free_port()
        while trigger_log_port in (worker_log_port, self.port):
            trigger_log_port = free_port()
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "8",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in USERS.items()),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.database_url,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(worker_log_port),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(trigger_log_port),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
                # A killed triggerer's triggers go to a new one after this many seconds without a
                # heartbeat (default 30 s with a 5 s heartbeat: far too slow for a test).
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "5",
                # A task's supervisor notices its task process ended only at its next heartbeat
                # when the sockets closed first (default every 5 s). That delay also widens an
                # Airflow race (apache/airflow#72716): the defer-exit "success" of a worker, seen
                # after the resumed try is already running, fails the task or sends it to retry.
                "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                "AIRFLOW__PROVIDER_EXECUTORS__DATA_DIR": str(self.data_dir),
                "AIRFLOW__PROVIDER_EXECUTORS__POLL_INTERVAL": f"{self.poll_interval:g}",
                "AIRFLOW__PROVIDER_EXECUTORS__EXECUTOR_CONFIG": json.dumps(
                    {"local": {"state_root": str(self.state_root)}}
                ),
            }
        )
        env.update(self.extra_env)
        return env

    # -- life cycle ----------------------------------------------------------------------------

    def start(self, timeout: float = 120.0) -> None:
        started = time.monotonic()
        self.home.mkdir(parents=True, exist_ok=True)
        self.component_logs.mkdir(exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        (self.home / "passwords.json").write_text(json.dumps(self.passwords) + "\n")
        with open(self.component_logs / "db-migrate.log", "wb") as log:
            done = subprocess.run(
                [self.airflow, "db", "migrate"],
                env=self.env,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        if done.returncode != 0:
            raise StackError(f"airflow db migrate failed ({done.returncode}):\n{self.log_tail('db-migrate')}")
        for name in COMPONENTS:
            self.start_component(name)
        self.wait_healthy(timeout=max(10.0, timeout - (time.monotonic() - started)))
        self.client.login()
        self.startup_seconds = time.monotonic() - started

    def start_component(self, name: str, command: str | None = None) -> subprocess.Popen[bytes]:
        """Start ``airflow <command>`` (default: ``name``) under ``name``: a second triggerer is
        ``start_component("triggerer-b", "triggerer")``."""
        if name in self.procs and self.procs[name].poll() is None:
            raise StackError(f"{name} is already running (pid {self.procs[name].pid})")
        log_path = self.component_logs / f"{name}.log"
        with open(log_path, "ab") as log:
            log.write(f"\n===== starting {name} at {time.strftime('%H:%M:%S')} =====\n".encode())
            log.flush()
            proc = subprocess.Popen(
                [self.airflow, command or name],
                env=self.env,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[name] = proc
        self.started_at[name] = time.time()
        return proc

    def kill_component(self, name: str, sig: int = signal.SIGKILL, timeout: float = 15.0) -> None:
        """Signal the component's whole process group and wait until nothing of it is left."""
        proc = self.procs.pop(name)
        self.retired.append(proc)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
        deadline = time.monotonic() + timeout
        while group_alive(proc.pid):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                raise StackError(f"process group of {name} ({proc.pid}) still alive {timeout:g}s after {sig}")
            time.sleep(0.1)

    def supervise(self, seconds: float) -> list[str]:
        """For ``seconds``, start again every component that exited, as a platform's restart policy
        would (Kubernetes' ``restartPolicy: Always``, systemd's ``Restart=always``): Airflow's
        scheduler, triggerer and dag-processor exit when the metadata DB goes away. Returns the names
        restarted, in order."""
        restarted: list[str] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for name, proc in list(self.procs.items()):
                if proc.poll() is not None:
                    self.retired.append(self.procs.pop(name))
                    command = "triggerer" if name.startswith("triggerer") else name
                    self.start_component(name, command)
                    restarted.append(name)
            time.sleep(0.5)
        return restarted

    def restart_triggerer(self) -> subprocess.Popen[bytes]:
        """SIGKILL the triggerer's process group (no clean shutdown at all), then start a new one."""
        self.kill_component("triggerer", signal.SIGKILL)
        return self.start_component("triggerer")

    def wait_healthy(self, timeout: float = 90.0, components: Iterable[str] | None = None) -> dict[str, Any]:
        wanted = tuple(components or ("metadatabase", "scheduler", "triggerer", "dag_processor"))
        last: dict[str, Any] = {}

        def probe() -> dict[str, Any] | None:
            nonlocal last
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise StackError(
                        f"{name} exited with {proc.returncode} during start-up:\n{self.log_tail(name)}"
                    )
            try:
                last = self.client.health()
            except (httpx.HTTPError, ValueError):
                return None
            ok = all((last.get(c) or {}).get("status") == "healthy" for c in wanted)
            return last if ok else None

        try:
            return dict(wait_until(probe, timeout, "a healthy stack", interval=0.5, last=lambda: last))
        except StackError as exc:
            raise StackError(f"{exc}\n{self.diagnostics()}") from None

    def wait_triggerer_up(self, timeout: float = 60.0) -> float:
        """Wait for a heartbeat of the triggerer started last; seconds since it was started."""
        proc = self.procs["triggerer"]
        started_at = self.started_at["triggerer"]

        def probe() -> bool:
            if proc.poll() is not None:
                raise StackError(f"triggerer exited with {proc.returncode}:\n{self.log_tail('triggerer')}")
            with contextlib.suppress(httpx.HTTPError, ValueError):
                beat = (self.client.health().get("triggerer") or {}).get("latest_triggerer_heartbeat")
                return isinstance(beat, str) and dt.datetime.fromisoformat(beat).timestamp() > started_at
            return False

        wait_until(probe, timeout, "the new triggerer's first heartbeat", interval=0.25)
        return time.time() - started_at

    def stop(self) -> None:
        """End every process this stack started: components, workers, detached task processes."""
        with contextlib.suppress(Exception):
            self.client.close()
        procs = [*self.procs.values(), *self.retired]
        self.procs.clear()
        for proc in procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for proc in procs:
            while group_alive(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self._kill_detached()

    def _kill_detached(self) -> None:
        """Task processes of the local executor live in their own sessions: find and end them."""
        for pid_file in (records / "pid.json" for records in self.all_local_records()):
            with contextlib.suppress(OSError, ValueError, KeyError):
                record = json.loads(pid_file.read_text())
                if process_alive(int(record["pid"]), record.get("create_time")):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(int(record["pgid"]), signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    if process_alive(int(record["supervisor_pid"]), None):
                        os.kill(int(record["supervisor_pid"]), signal.SIGKILL)
        for proc in self.leftover_processes():
            with contextlib.suppress(psutil.Error):
                proc.kill()

    def leftover_processes(self) -> list[psutil.Process]:
        """Live processes that belong to this stack (by environment, command line or folder)."""
        home = str(self.home)
        found = []
        for proc in psutil.process_iter(["pid", "cmdline", "cwd", "status"]):
            try:
                if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
                    continue
                cmdline = " ".join(proc.info["cmdline"] or ())
                if home in cmdline or (proc.info["cwd"] or "").startswith(home):
                    found.append(proc)
                    continue
                if proc.environ().get("AIRFLOW_HOME") == home:
                    found.append(proc)
            except (psutil.Error, OSError):
                continue
        return found

    # -- the provider's executions -------------------------------------------------------------

    def execution_dir(
        self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1
    ) -> Path:
        return Path(
            execution_folder(
                str(self.data_dir),
                dag_id=dag_id,
                run_id=run_id,
                task_id=task_id,
                map_index=map_index,
                try_number=try_number,
            )
        )

    def local_records(self, execution_folder: Path) -> Path:
        """The local executor's records (``pid.json``, ``exit.json``, ``killed.json``, ``claim``) of
        the execution in ``execution_folder``: under the stack's ``state_root``, not in the folder."""
        return state_dir_of(execution_folder, self.state_root)

    def all_local_records(self) -> list[Path]:
        """The records of every local execution this stack started."""
        return [records for _, records in state_dirs_under(self.data_dir, self.state_root)]

    def trigger_started(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> bool:
        """Whether a triggerer has started running this task's trigger (its trigger log says so).

        A deferred task's trigger runs only once a triggerer picked it up (about a second later);
        Airflow calls ``on_kill`` only for a trigger that runs.
        """
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        for path in folder.glob(f"attempt={try_number}.log.trigger.*.log"):
            with contextlib.suppress(OSError):
                if "starting" in path.read_text(errors="replace"):
                    return True
        return False

    # -- diagnostics ---------------------------------------------------------------------------

    def log_tail(self, name: str, lines: int = 60) -> str:
        return tail(self.component_logs / f"{name}.log", lines)

    def task_log_files(self, dag_id: str | None = None) -> list[Path]:
        root = self.home / "logs"
        if dag_id:
            root = root / f"dag_id={dag_id}"
        files = [p for p in root.rglob("*") if p.is_file() and "dag_processor" not in p.parts]
        return sorted(files, key=lambda p: p.stat().st_mtime)

    def diagnostics(self, dag_id: str | None = None, lines: int = 40) -> str:
        parts = []
        for name in ("scheduler", "triggerer", "dag-processor", "api-server"):
            parts.append(f"----- {name} (last {lines} lines) -----\n{self.log_tail(name, lines)}")
        for path in self.task_log_files(dag_id)[-6:]:
            parts.append(f"----- {path.relative_to(self.home)} -----\n{tail(path, lines)}")
        for path in sorted(self.data_dir.rglob("logs/std*.log"))[-4:]:
            if dag_id is None or dag_id in path.parts:
                parts.append(f"----- {path.relative_to(self.home)} -----\n{tail(path, 20)}")
        return "\n".join(parts)


def start_run(stack: AirflowStack, dag_id: str, label: str, *, timeout: float = 60) -> str:
    """Unpause ``dag_id`` once the stack knows it, trigger a run ``<label>-<random>``; its run id."""
    stack.client.wait_for_dag(dag_id, timeout=timeout)
    stack.client.unpause(dag_id)
    run_id = f"{label}-{uuid.uuid4().hex[:8]}"
    stack.client.trigger(dag_id, run_id)
    return run_id


def attach_stack_logs(item: Any, report: Any, fixture: str) -> bool:
    """For a pytest report of a failed test using the stack fixture ``fixture``: append the tails of
    the component and task logs as a report section. True when it did (the test used a stack)."""
    stack = getattr(item, "funcargs", {}).get(fixture)
    if not isinstance(stack, AirflowStack):
        return False
    marker = item.get_closest_marker("dag_id")
    dag_id = marker.args[0] if marker else None
    try:
        text = stack.diagnostics(dag_id)
    except Exception as exc:  # diagnostics must never hide the real failure
        text = f"<diagnostics failed: {exc!r}>"
    report.sections.append(("airflow stack logs", text))
    return True
