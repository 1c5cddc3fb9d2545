"""Launching an execution: its environment, its claim (see :mod:`executors.backends.local.admission`), then
the supervisor (``supervisor.py``, run as a script), which gets the launch on its stdin and replies
with the command's pids or the reason it could not start it.

A launch that fails after its claim is recorded in the claim (so any check answers the failure at
once and a re-start never waits for it), frees its slot and leaves no temporary file.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from typing import Any

from flyteidl.core import tasks_pb2

from executors.backends.container import make_local_output_folders, store_credentials, task_environment
from executors.backends.local.admission import Admission
from executors.backends.local.layout import Layout
from executors.backends.local.processes import create_time, kill_with_descendants, process
from executors.backends.local.records import (
    keep_supervisor_output,
    mark_claim_failed,
    read_json,
    remove_temporary_files,
    write_json,
)
from executors.core.context import TaskContext
from executors.core.phase import TaskPhase
from executors.core.status import ErrorOrigin, TaskError, TaskStatus, permanent_failure, retryable_failure

SUPERVISOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "supervisor.py")

SpawnSupervisor = Callable[[str, Mapping[str, str]], subprocess.Popen[bytes]]
"""Starts the supervisor for a state folder, with an environment (:func:`spawn_supervisor`)."""


def environment(
    inherit_env: tuple[str, ...], task_ctx: TaskContext, task: tasks_pb2.TaskTemplate
) -> dict[str, str]:
    """The command's environment: the inherited variables (and the cloud credential variables
    when its data is on an object store), this Python's ``bin`` first on PATH, then the task's own."""
    names = (*inherit_env, *store_credentials(task_ctx))
    env = {k: os.environ[k] for k in names if k in os.environ}
    bin_dir = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join(p for p in (bin_dir, env.get("PATH", os.defpath)) if p)
    env.update(task_environment(task_ctx, task))
    return env


def spawn_supervisor(env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start the supervisor script. It gets its launch on stdin, so neither its argv, its
    environment nor its working directory (all readable in /proc by the task) tell where the
    state folder is: only the locale is passed, and it works where we do (relative paths)."""
    return subprocess.Popen(
        [sys.executable, "-I", "-S", SUPERVISOR],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        close_fds=True,
        env={k: env[k] for k in ("LANG", "LC_ALL", "LC_CTYPE") if k in env},
    )


def _last_json_line(out: bytes) -> dict[str, Any]:
    for line in reversed(out.decode("utf-8", errors="replace").splitlines()):
        with contextlib.suppress(ValueError):
            data = json.loads(line)
            if isinstance(data, dict):
                return data
    return {}


def _last_line(err: bytes, limit: int = 500) -> str:
    lines = [line.strip() for line in err.decode("utf-8", errors="replace").splitlines() if line.strip()]
    return lines[-1][:limit] if lines else ""


class Launcher:
    """Claims and launches executions (blocking: it runs in a thread)."""

    def __init__(
        self,
        layout: Layout,
        admission: Admission,
        *,
        launch_timeout: float,
        kill_grace_period: float,
        max_log_bytes: int,
        spawn_supervisor: SpawnSupervisor,
    ) -> None:
        self._layout = layout
        self._admission = admission
        self.launch_timeout = launch_timeout
        self.kill_grace_period = kill_grace_period
        self.max_log_bytes = max_log_bytes
        self._spawn_supervisor = spawn_supervisor

    def launch(
        self, task_ctx: TaskContext, command: list[str], env: dict[str, str], secrets: dict[str, str]
    ) -> TaskStatus | None:
        """Claim, then launch; ``None`` when the execution was claimed before."""
        state_dir = self._layout.state_dir(task_ctx)
        try:
            admitted = self._admission.admit(task_ctx, state_dir)
        except OSError as exc:  # nothing claimed: a full disk, an unwritable state root
            return retryable_failure(
                TaskError(
                    "LaunchFailed", f"cannot claim the launch in {state_dir}: {exc}", ErrorOrigin.SYSTEM
                )
            )
        if admitted == "exists":
            return None
        if isinstance(admitted, TaskStatus):
            return admitted
        try:
            return self._spawn(task_ctx, state_dir, command, env, secrets)
        except Exception as exc:  # after the claim: record the failure, never leave the name waiting
            error = TaskError("LaunchFailed", f"the launch failed: {exc}", ErrorOrigin.SYSTEM)
            self._fail_claim(state_dir, error)
            return retryable_failure(error)

    def _spawn(
        self,
        task_ctx: TaskContext,
        state_dir: str,
        command: list[str],
        env: dict[str, str],
        secrets: dict[str, str],
    ) -> TaskStatus:
        stdout_path, stderr_path = self._layout.log_paths(task_ctx)
        os.makedirs(os.path.dirname(stdout_path), exist_ok=True)
        execution_dir = self._layout.execution_dir(task_ctx)
        cwd = os.path.join(execution_dir, "work")
        os.makedirs(cwd, exist_ok=True)
        make_local_output_folders(task_ctx)
        spec = {
            "command": command,
            "cwd": cwd,
            "env": env,
            "stdout": stdout_path,
            "stderr": stderr_path,
            "state_dir": state_dir,
            "generated_name": task_ctx.generated_name,
            "execution_dir": execution_dir,
            "kill_grace_period": self.kill_grace_period,
            "max_log_bytes": self.max_log_bytes,
        }
        write_json(os.path.join(state_dir, "spec.json"), spec)  # the record of what was run
        proc = self._spawn_supervisor(state_dir, env)
        message = json.dumps({"spec": spec, "secrets": secrets}).encode() + b"\n"
        try:
            out, err = proc.communicate(message, timeout=self.launch_timeout)
        except subprocess.TimeoutExpired:
            return self._supervisor_timed_out(proc, state_dir)
        keep_supervisor_output(state_dir, err)
        reply = _last_json_line(out)
        if isinstance(reply.get("pid"), int):
            return self._started(state_dir, reply)
        if "spawn_error" in reply:
            code = "CommandNotFound" if reply.get("exit_code") == 127 else "SpawnError"
            error = TaskError(code, str(reply["spawn_error"]), ErrorOrigin.USER)
            self._fail_claim(state_dir, error, permanent=True)
            return permanent_failure(error)
        cause = str(reply.get("supervisor_error") or _last_line(err) or "it printed nothing")
        exit_status = f" (exit status {proc.returncode})" if proc.returncode else ""
        error = TaskError(
            "LaunchFailed",
            f"the local supervisor could not start the command: {cause}{exit_status} "
            f"(details in {os.path.join(state_dir, 'supervisor.log')})",
            ErrorOrigin.SYSTEM,
        )
        self._fail_claim(state_dir, error)
        return retryable_failure(error)

    def _started(self, state_dir: str, reply: dict[str, Any]) -> TaskStatus:
        pids = {
            **reply,
            "create_time": create_time(reply["pid"]),
            "supervisor_create_time": create_time(reply.get("supervisor_pid")),
        }
        # Best effort: the supervisor's own pid.json (without create times) stands if these fail.
        with contextlib.suppress(OSError):
            write_json(os.path.join(state_dir, "pid.json"), pids)
        with contextlib.suppress(OSError):
            self._admission.set_pids(state_dir, pids)
        return TaskStatus(TaskPhase.RUNNING, state={"pid": reply["pid"]})

    def _supervisor_timed_out(self, proc: subprocess.Popen[bytes], state_dir: str) -> TaskStatus:
        proc.kill()  # the first child, if it is still there
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        error = TaskError(
            "LaunchFailed",
            f"the local supervisor did not report within launch_timeout={self.launch_timeout:g}s "
            f"(see {os.path.join(state_dir, 'supervisor.log')})",
            ErrorOrigin.SYSTEM,
        )
        self._fail_claim(state_dir, error)
        pid = read_json(os.path.join(state_dir, "pid.json"))  # it may have started the command
        supervisor = process(pid.get("supervisor_pid"), None) if pid else None
        if supervisor is not None:  # nobody will watch it: it must not run
            kill_with_descendants(supervisor)
        return retryable_failure(error)

    def _fail_claim(self, state_dir: str, error: TaskError, permanent: bool = False) -> None:
        """Record a failed launch in its claim, so that any check answers the failure at once (and
        a re-start of the name never waits for a launch that is over); free its slot; leave no
        temporary file."""
        mark_claim_failed(state_dir, error, permanent)
        self._admission.release(state_dir)
        remove_temporary_files(state_dir)
