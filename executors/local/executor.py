"""LocalExecutor: runs a container task's command as a detached local process.

The container image is ignored: the command runs on this machine, in the Python environment of
the process that starts it (that environment's ``bin`` folder is put first on ``PATH``, so
``python`` means the same interpreter). POSIX only (Linux, macOS).

Everything it knows lives on disk, never only in memory, so any process (another triggerer, a
restarted worker) can check or kill an execution started by another:

``<execution folder>/local/``
    ``claim`` (created exclusively: one launch per generated name), ``spec.json`` (what was run),
    ``pid.json`` (process ids), ``exit.json`` (exit status, written by the supervisor),
    ``killed.json`` (why it was killed), ``supervisor.log``
``<execution folder>/logs/stdout.log``, ``stderr.log``
    the task's output

The execution folder is the task's data dir when that is a local path; otherwise (an object store)
a folder named after the generated name under ``state_root``. Running executions are also listed
under ``<state_root>/running/`` to enforce ``max_concurrent`` across processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import psutil
from flyteidl.core import literals_pb2, tasks_pb2

from executors.container import (
    container_command,
    status_after_success,
    status_from_error_file,
    task_environment,
)
from executors.context import TaskContext
from executors.interface import Executor, ExecutorInitializationParameters, ExecutorProperties
from executors.outputs import OutputsResolver
from executors.phase import TaskPhase
from executors.status import (
    TASK_STATUS_QUEUED,
    ErrorOrigin,
    TaskError,
    TaskStatus,
    not_ready_failure,
    permanent_failure,
    retryable_failure,
)
from executors.storage import DataStore, is_local, local_path

SUPERVISOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "supervisor.py")

DEFAULT_INHERITED_ENV = (
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
    "PYTHONPATH", "VIRTUAL_ENV",
)  # fmt: skip
"""Variables of the starting process passed on to tasks. Deliberately short: an Airflow process's
environment holds its own secrets (database URLs, Fernet key) that a task must not see."""


def default_state_root() -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "airflow-provider-executors", "local")


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path) as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # a half-written file cannot happen (atomic writes); treat garbage as absent
    return data if isinstance(data, dict) else None


def _write_json(path: str, data: Mapping[str, Any]) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def _tail(path: str, limit: int) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            data = fh.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    if size > limit:
        text = "..." + text.split("\n", 1)[-1]
    return text.strip()


def _group_members(pgid: int, not_before: float) -> list[psutil.Process]:
    """Live processes of our task's group. ``not_before`` (the group's start time) guards
    against a recycled process-group id belonging to someone else."""
    members = []
    for proc in psutil.process_iter(["pid", "create_time", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.info["create_time"] < not_before - 1:
                continue
            if os.getpgid(proc.pid) == pgid:
                members.append(proc)
        except (ProcessLookupError, psutil.Error, OSError):
            continue
    return members


def _alive(pid: int, create_time: float | None) -> bool:
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return create_time is None or abs(proc.create_time() - create_time) < 1.0
    except psutil.Error:
        return False


class LocalExecutor(Executor):
    """Run container tasks as local processes (the embedded default: needs nothing else running).

    Configuration (keyword arguments; strings are accepted so they can come from a config file):

    ``max_concurrent``
        at most this many executions run at once on this machine (counted across processes);
        a start beyond it answers NOT_READY and launches nothing. ``None``/``0``: no limit.
    ``kill_grace_period``
        seconds between SIGTERM and SIGKILL when killing (default 10).
    ``state_root``
        folder for the running list and for executions whose data dir is not local.
    ``inherit_env``
        names of variables passed on from the starting process (default: PATH, HOME, locale, ...).
    ``launch_timeout``
        seconds a claimed launch may take before it counts as failed (default 30).
    """

    id = "local"

    def __init__(
        self,
        *,
        max_concurrent: int | str | None = None,
        kill_grace_period: float | str = 10.0,
        state_root: str | None = None,
        inherit_env: Sequence[str] | None = None,
        launch_timeout: float | str = 30.0,
        log_tail_bytes: int | str = 2000,
    ) -> None:
        self.max_concurrent = int(max_concurrent) if max_concurrent not in (None, "") else 0
        self.kill_grace_period = float(kill_grace_period)
        self.state_root = state_root or default_state_root()
        self.inherit_env = tuple(inherit_env) if inherit_env is not None else DEFAULT_INHERITED_ENV
        self.launch_timeout = float(launch_timeout)
        self.log_tail_bytes = int(log_tail_bytes)
        self._store = DataStore()
        self._outputs: OutputsResolver | None = None

    def get_properties(self) -> ExecutorProperties:
        return ExecutorProperties(requires_finalizer=True)

    async def initialize(self, params: ExecutorInitializationParameters) -> None:
        if params.data_store is not None:
            self._store = params.data_store
        self._outputs = OutputsResolver(self._store)
        await asyncio.to_thread(os.makedirs, os.path.join(self.state_root, "running"), exist_ok=True)

    # -- where things live -------------------------------------------------------------------

    def execution_dir(self, task_ctx: TaskContext) -> str:
        if is_local(task_ctx.data_dir):
            return local_path(task_ctx.data_dir)
        return os.path.join(self.state_root, "executions", task_ctx.generated_name)

    def _state_dir(self, task_ctx: TaskContext) -> str:
        return os.path.join(self.execution_dir(task_ctx), "local")

    def log_paths(self, task_ctx: TaskContext) -> tuple[str, str]:
        """The task's ``stdout.log`` and ``stderr.log``."""
        logs = os.path.join(self.execution_dir(task_ctx), "logs")
        return os.path.join(logs, "stdout.log"), os.path.join(logs, "stderr.log")

    @contextlib.contextmanager
    def _running_lock(self) -> Iterator[str]:
        running = os.path.join(self.state_root, "running")
        os.makedirs(running, exist_ok=True)
        with open(os.path.join(self.state_root, "running.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield running
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # -- start -------------------------------------------------------------------------------

    async def start_task(
        self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate, inputs: literals_pb2.LiteralMap
    ) -> TaskStatus:
        for ref_name in ("inputs_file", "outputs_file", "error_file"):
            ref = getattr(task_ctx, ref_name)
            if ref.startswith("memory://"):
                return permanent_failure(
                    TaskError(
                        "DataDirNotShared",
                        f"{ref_name} {ref} is in this process's memory and a local process cannot "
                        "read it; use a local folder or a shared store for the data dir",
                        ErrorOrigin.USER,
                    )
                )
        command = container_command(self.id, task, task_ctx, inputs)
        if isinstance(command, TaskStatus):
            return command
        # Secrets go to the supervisor through a pipe, never into spec.json on disk.
        env = self._environment(dataclasses.replace(task_ctx, secret_environment={}), task)
        secrets = dict(task_ctx.secret_environment)
        launched = await asyncio.to_thread(self._launch, task_ctx, command, env, secrets)
        if launched is None:  # already claimed by an earlier start: re-attach, never launch twice
            return await self.check_task_status(task_ctx, task)
        return launched

    def _environment(self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate) -> dict[str, str]:
        env = {k: os.environ[k] for k in self.inherit_env if k in os.environ}
        bin_dir = os.path.dirname(sys.executable)
        env["PATH"] = os.pathsep.join(p for p in (bin_dir, env.get("PATH", os.defpath)) if p)
        env.update(task_environment(task_ctx, task))
        return env

    def _launch(
        self, task_ctx: TaskContext, command: list[str], env: dict[str, str], secrets: dict[str, str]
    ) -> TaskStatus | None:
        """Launch under the running-list lock; ``None`` when the name was already claimed."""
        state_dir = self._state_dir(task_ctx)
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        name = task_ctx.generated_name
        with self._running_lock() as running:
            if os.path.exists(os.path.join(state_dir, "claim")):
                return None
            if self.max_concurrent and self._count_running(running) >= self.max_concurrent:
                return not_ready_failure(
                    TaskError(
                        "ConcurrencyLimit",
                        f"{self.max_concurrent} local executions are running (max_concurrent)",
                        ErrorOrigin.SYSTEM,
                    )
                )
            with open(os.path.join(state_dir, "claim"), "x") as fh:
                fh.write(str(time.time()))
            _write_json(os.path.join(running, f"{name}.json"), {"state_dir": state_dir})

        stdout_path, stderr_path = self.log_paths(task_ctx)
        os.makedirs(os.path.dirname(stdout_path), exist_ok=True)
        cwd = os.path.join(self.execution_dir(task_ctx), "work")
        os.makedirs(cwd, exist_ok=True)
        for ref in (
            task_ctx.outputs_file,
            task_ctx.raw_output_prefix + "/x",
            task_ctx.checkpoint_prefix + "/x",
        ):
            if is_local(ref):
                os.makedirs(os.path.dirname(local_path(ref)), exist_ok=True)
        spec_path = os.path.join(state_dir, "spec.json")
        _write_json(
            spec_path,
            {
                "command": command,
                "cwd": cwd,
                "env": env,
                "stdout": stdout_path,
                "stderr": stderr_path,
                "state_dir": state_dir,
                "generated_name": name,
            },
        )
        with open(os.path.join(state_dir, "supervisor.log"), "ab") as sup_log:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", SUPERVISOR, spec_path],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=sup_log,
                close_fds=True,
            )
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps(secrets).encode() + b"\n")
            proc.stdin.close()
            line = proc.stdout.readline()
            proc.stdout.close()
            proc.wait()
        try:
            started = json.loads(line)
        except ValueError:
            return retryable_failure(
                TaskError(
                    "LaunchFailed",
                    f"the local supervisor did not start; see {os.path.join(state_dir, 'supervisor.log')}",
                    ErrorOrigin.SYSTEM,
                )
            )
        if "spawn_error" in started:
            return self._status_from_disk_sync(task_ctx)[0]  # the recorded spawn failure
        started["create_time"] = self._create_time(started["pid"])
        _write_json(os.path.join(state_dir, "pid.json"), started)
        return TaskStatus(TaskPhase.RUNNING, state={"pid": started["pid"]})

    @staticmethod
    def _create_time(pid: int) -> float | None:
        try:
            return float(psutil.Process(pid).create_time())
        except psutil.Error:
            return None

    def _count_running(self, running: str) -> int:
        count = 0
        for entry in os.listdir(running):
            if not entry.endswith(".json"):
                continue
            path = os.path.join(running, entry)
            record = _read_json(path) or {}
            state_dir = record.get("state_dir", "")
            if state_dir and self._is_running(state_dir):
                count += 1
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        return count

    def _is_running(self, state_dir: str) -> bool:
        if os.path.exists(os.path.join(state_dir, "exit.json")):
            return False
        pid = _read_json(os.path.join(state_dir, "pid.json"))
        if pid is None:
            # Claimed but not launched yet: it counts until the launch times out.
            claim = os.path.join(state_dir, "claim")
            return os.path.exists(claim) and time.time() - os.path.getmtime(claim) < self.launch_timeout
        return _alive(pid["pid"], pid.get("create_time")) or _alive(pid["supervisor_pid"], None)

    # -- status ------------------------------------------------------------------------------

    async def check_task_status(self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate) -> TaskStatus:
        status, exit_code = await asyncio.to_thread(self._status_from_disk_sync, task_ctx)
        if exit_code is None:
            return status
        if exit_code == 0:
            return await status_after_success(self._store, task_ctx, task, what="the command exited 0")
        return await self._status_after_failure(task_ctx, exit_code)

    def _status_from_disk_sync(self, task_ctx: TaskContext) -> tuple[TaskStatus, int | None]:
        """The status visible from local files; ``exit_code`` is set when the process ended
        normally and the data store must be consulted (outputs, error.pb)."""
        state_dir = self._state_dir(task_ctx)
        claim = os.path.join(state_dir, "claim")
        if not os.path.exists(claim):
            return (
                TaskStatus(
                    TaskPhase.UNDEFINED,
                    err=TaskError(
                        "NotStarted",
                        f"no local execution named {task_ctx.generated_name} was started "
                        f"(nothing in {state_dir})",
                        ErrorOrigin.SYSTEM,
                    ),
                ),
                None,
            )
        killed = _read_json(os.path.join(state_dir, "killed.json"))
        exited = _read_json(os.path.join(state_dir, "exit.json"))
        if exited is not None:
            self._release_slot(task_ctx)
            if killed is not None:
                return permanent_failure(TaskError("Killed", f"killed: {killed.get('reason', '')}")), None
            if "spawn_error" in exited:
                return permanent_failure(
                    TaskError("CommandNotFound" if exited["exit_code"] == 127 else "SpawnError",
                              exited["spawn_error"], ErrorOrigin.USER)
                ), None  # fmt: skip
            return TASK_STATUS_QUEUED, int(exited["exit_code"])
        pid = _read_json(os.path.join(state_dir, "pid.json"))
        if pid is None:
            if time.time() - os.path.getmtime(claim) < self.launch_timeout:
                return TASK_STATUS_QUEUED, None
            return retryable_failure(
                TaskError("LaunchFailed", f"launch did not complete within {self.launch_timeout:g}s; "
                          f"see {os.path.join(state_dir, 'supervisor.log')}", ErrorOrigin.SYSTEM)
            ), None  # fmt: skip
        if _alive(pid["pid"], pid.get("create_time")) or _alive(pid["supervisor_pid"], None):
            return TaskStatus(TaskPhase.RUNNING, state={"pid": pid["pid"]}), None
        # Re-read: the supervisor may have written exit.json between our two reads.
        if os.path.exists(os.path.join(state_dir, "exit.json")):
            return self._status_from_disk_sync(task_ctx)
        self._release_slot(task_ctx)
        return retryable_failure(
            TaskError(
                "ProcessLost",
                f"process {pid['pid']} ended without an exit status (its supervisor was killed?)",
                ErrorOrigin.SYSTEM,
            )
        ), None

    def _release_slot(self, task_ctx: TaskContext) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.state_root, "running", f"{task_ctx.generated_name}.json"))

    async def _status_after_failure(self, task_ctx: TaskContext, exit_code: int) -> TaskStatus:
        from_file = await status_from_error_file(self._store, task_ctx)
        if from_file is not None:
            return from_file
        stdout_path, stderr_path = self.log_paths(task_ctx)
        tail = await asyncio.to_thread(_tail, stderr_path, self.log_tail_bytes)
        if not tail:
            tail = await asyncio.to_thread(_tail, stdout_path, self.log_tail_bytes)
        if exit_code < 0:
            code, what = f"Signal{-exit_code}", f"killed by signal {signal.Signals(-exit_code).name}"
        else:
            code, what = f"ExitCode{exit_code}", f"exited with code {exit_code}"
        message = f"the command {what}" + (f"; last output:\n{tail}" if tail else " and printed nothing")
        return retryable_failure(TaskError(code, message, ErrorOrigin.USER))

    # -- kill --------------------------------------------------------------------------------

    async def kill_task(self, task_ctx: TaskContext, reason: str) -> None:
        state_dir = self._state_dir(task_ctx)
        deadline = time.monotonic() + self.launch_timeout
        while True:
            pid, exited = await asyncio.to_thread(self._pids_for_kill, state_dir, reason)
            if exited or pid is not None:
                break
            if not await asyncio.to_thread(os.path.exists, os.path.join(state_dir, "claim")):
                return  # never started: nothing to kill
            if time.monotonic() > deadline:
                return
            await asyncio.sleep(0.05)  # a launch is in flight: wait for its pid
        if pid is not None:
            await self._terminate_group(pid)
        self._release_slot(task_ctx)

    def _pids_for_kill(self, state_dir: str, reason: str) -> tuple[dict[str, Any] | None, bool]:
        if not os.path.exists(os.path.join(state_dir, "claim")):
            return None, False
        if not os.path.exists(os.path.join(state_dir, "killed.json")):
            _write_json(os.path.join(state_dir, "killed.json"), {"reason": reason, "at": time.time()})
        pid = _read_json(os.path.join(state_dir, "pid.json"))
        exited = os.path.exists(os.path.join(state_dir, "exit.json"))
        return pid, exited

    async def _terminate_group(self, pid: dict[str, Any]) -> None:
        pgid = int(pid["pgid"])
        not_before = float(pid.get("create_time") or pid.get("started_at") or 0)
        members = await asyncio.to_thread(_group_members, pgid, not_before)
        if not members:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + self.kill_grace_period
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            if not await asyncio.to_thread(_group_members, pgid, not_before):
                return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        # SIGKILL cannot be ignored, but the kernel takes a moment: return only once it is done.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if not await asyncio.to_thread(_group_members, pgid, not_before):
                return
            await asyncio.sleep(0.05)

    # -- extras ------------------------------------------------------------------------------

    def get_run_url(self, task_ctx: TaskContext) -> str | None:
        return "file://" + os.path.join(self.execution_dir(task_ctx), "logs")

    async def read_logs(self, task_ctx: TaskContext, max_bytes: int = 64_000) -> str | None:
        stdout_path, stderr_path = self.log_paths(task_ctx)
        parts = []
        for label, path in (("stdout", stdout_path), ("stderr", stderr_path)):
            text = await asyncio.to_thread(_tail, path, max_bytes // 2)
            if text:
                parts.append(f"----- {label} ({path}) -----\n{text}")
        return "\n".join(parts) or None

    # -- outputs -----------------------------------------------------------------------------

    async def resolve_outputs(
        self, task_ctx: TaskContext, *output_variables: str
    ) -> dict[str, literals_pb2.Literal]:
        resolver = self._outputs or OutputsResolver(self._store)
        return await resolver.resolve_outputs(task_ctx, *output_variables)
