"""An execution's status, from its records on disk (any process can tell it, not only the one that
launched it).

While the supervisor or the command is alive the execution is running, whatever any file says;
then ``exit.json`` (or the claim's failure record) decides. A command that exited is finished by the
caller from the data store: ``outputs.pb``, or ``error.pb`` and else the logs' tail.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Mapping
from typing import Any

from executors.backends.container import status_from_error_file
from executors.backends.local.admission import Admission
from executors.backends.local.logs import last_output
from executors.backends.local.processes import alive, pids_alive
from executors.backends.local.records import read_claim, read_json
from executors.core.context import TaskContext
from executors.core.phase import TaskPhase
from executors.core.status import (
    TASK_STATUS_QUEUED,
    ErrorOrigin,
    TaskError,
    TaskStatus,
    permanent_failure,
    retryable_failure,
)
from executors.data.storage import DataStore


def _not_claimed(state_dir: str, generated_name: str) -> TaskStatus | None:
    """The status of an execution that has no claim file: never started (UNDEFINED), or UNKNOWN
    when the state root itself cannot be read (its mount vanished, a file stands in its place);
    ``None`` when the claim is there."""
    try:
        os.stat(os.path.join(state_dir, "claim"))
        return None
    except FileNotFoundError:
        # Only a state root that is still a folder tells "never started" from "unreachable".
        readable = os.path.isdir(os.path.dirname(state_dir))
    except OSError:  # NotADirectoryError, PermissionError, EIO
        readable = False
    if not readable:
        return TaskStatus(
            TaskPhase.UNKNOWN,
            err=TaskError(
                "StateRootUnreadable",
                f"the local executor's state folder {os.path.dirname(state_dir)} cannot be read",
                ErrorOrigin.SYSTEM,
            ),
        )
    return TaskStatus(
        TaskPhase.UNDEFINED,
        err=TaskError(
            "NotStarted",
            f"no local execution named {generated_name} was started (nothing in {state_dir})",
            ErrorOrigin.SYSTEM,
        ),
    )


def status_from_disk(
    state_dir: str, generated_name: str, *, launch_timeout: float, admission: Admission
) -> tuple[TaskStatus, int | None]:
    """The status visible from local files; ``exit_code`` is set when the process ended
    normally and the data store must be consulted (outputs, error.pb). An execution seen over
    has its slot released."""
    unclaimed = _not_claimed(state_dir, generated_name)
    if unclaimed is not None:
        return unclaimed, None
    pid = read_json(os.path.join(state_dir, "pid.json"))
    if pid is not None and pids_alive(pid):
        # Running while the command or its supervisor lives, whatever any file says.
        return TaskStatus(TaskPhase.RUNNING, state={"pid": pid.get("pid")}), None
    # Nothing of it runs any more (read after that check: an exit.json written just before the
    # supervisor ended is seen).
    claim = read_claim(state_dir) or {}
    killed = read_json(os.path.join(state_dir, "killed.json"))
    exited = read_json(os.path.join(state_dir, "exit.json"))
    failed = claim.get("failed")
    if exited is not None or failed is not None or pid is not None:
        admission.release(state_dir)
    if exited is not None:
        if killed is not None:
            return permanent_failure(TaskError("Killed", f"killed: {killed.get('reason', '')}")), None
        if "spawn_error" in exited:
            return permanent_failure(
                TaskError("CommandNotFound" if exited.get("exit_code") == 127 else "SpawnError",
                          str(exited["spawn_error"]), ErrorOrigin.USER)
            ), None  # fmt: skip
        with contextlib.suppress(TypeError, ValueError):
            return TASK_STATUS_QUEUED, int(exited["exit_code"])
    if isinstance(failed, dict):
        try:
            error = TaskError.from_dict(failed)
        except (KeyError, ValueError):
            error = TaskError("LaunchFailed", f"the launch failed: {failed}", ErrorOrigin.SYSTEM)
        return (permanent_failure(error) if failed.get("permanent") else retryable_failure(error)), None
    if killed is not None and (pid is not None or _launch_over(claim, launch_timeout)):
        return permanent_failure(TaskError("Killed", f"killed: {killed.get('reason', '')}")), None
    if pid is not None:
        return retryable_failure(
            TaskError(
                "ProcessLost",
                f"process {pid.get('pid')} ended without an exit status (its supervisor was killed, "
                f"or could not write exit.json; see {os.path.join(state_dir, 'supervisor.log')})",
                ErrorOrigin.SYSTEM,
            )
        ), None
    if not _launch_over(claim, launch_timeout):
        return TASK_STATUS_QUEUED, None
    admission.release(state_dir)
    launcher = claim.get("launcher_pid")
    why = (
        f"the process that was launching it (pid {launcher}) is gone"
        if _launcher_gone(claim)
        else f"it did not complete within launch_timeout={launch_timeout:g}s"
    )
    return retryable_failure(
        TaskError(
            "LaunchFailed",
            f"the launch never completed: {why} (see {os.path.join(state_dir, 'supervisor.log')})",
            ErrorOrigin.SYSTEM,
        )
    ), None


def _launch_over(claim: Mapping[str, Any], launch_timeout: float) -> bool:
    """A claim without pid.json: is its launch over (timed out, or its launcher died)?"""
    age = time.time() - float(claim.get("claimed_at") or 0)
    return age >= launch_timeout or (age > 2.0 and _launcher_gone(claim))


def _launcher_gone(claim: Mapping[str, Any]) -> bool:
    pid = claim.get("launcher_pid")
    return isinstance(pid, int) and not alive(pid, claim.get("launcher_create_time"))


async def status_after_failure(
    store: DataStore,
    task_ctx: TaskContext,
    exit_code: int,
    *,
    log_paths: tuple[str, str],
    within: str,
    tail_bytes: int,
) -> TaskStatus:
    """A command that exited non-zero (or by a signal): its ``error.pb``, else its code and the
    last output it printed."""
    from_file = await status_from_error_file(store, task_ctx)
    if from_file is not None:
        return from_file
    stdout_path, stderr_path = log_paths
    tail = await last_output(stdout_path, stderr_path, within, tail_bytes)
    if exit_code < 0:
        code, what = f"Signal{-exit_code}", f"killed by signal {signal.Signals(-exit_code).name}"
    else:
        code, what = f"ExitCode{exit_code}", f"exited with code {exit_code}"
    message = f"the command {what}" + (f"; last output:\n{tail}" if tail else " and printed nothing")
    return retryable_failure(TaskError(code, message, ErrorOrigin.USER))
