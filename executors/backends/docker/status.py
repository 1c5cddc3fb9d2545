"""What ``GET /containers/{id}/json`` says, as a :class:`TaskStatus`.

``created`` -> QUEUED (made, not started yet); ``running``, ``paused``, ``restarting`` -> RUNNING;
``exited`` / ``dead``:

* exit code 0 -> what ``error.pb`` says if the task wrote one, else SUCCEEDED once the declared
  outputs exist (:func:`executors.backends.container.status_after_success`);
* killed for want of memory -> RETRYABLE_FAILURE ``OutOfMemory`` naming the limit. The engine's
  ``State.OOMKilled`` says so where the kernel tells it (Docker, Podman on cgroups v2); Podman 4 on
  cgroups v1 reports exit code 137 (SIGKILL) and ``OOMKilled: false``, so a container with a
  memory limit that died of SIGKILL nobody sent (the executor only stops containers it was told to
  kill, and then stops looking) is reported as out of memory too, and the message says how it was
  inferred;
* exit code 127 / 126, or the init's own "cannot exec" line in the output (no ``error.pb``) ->
  PERMANENT_FAILURE ``CommandNotFound`` / ``CommandNotExecutable``: the container's init (PID 1)
  could not run the command, which is not in the image; retrying would not change that (a
  command that itself exits 127 is read the same);
* any other exit code -> ``error.pb`` if the task wrote one, else RETRYABLE_FAILURE
  ``ExitCode<N>`` with the last lines it printed (the same rule as the local executor).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flyteidl.core import tasks_pb2

from executors.backends.container import status_after_success, status_from_error_file
from executors.core.context import TaskContext
from executors.core.phase import TaskPhase
from executors.core.status import (
    ErrorOrigin,
    TaskError,
    TaskStatus,
    permanent_failure,
    retryable_failure,
    unknown_status,
)
from executors.data.storage import DataStore

_INIT_EXEC_FAILED = re.compile(r"catatonit:\d+\): failed to exec pid1|\[FATAL tini \(\d+\)\] exec .* failed")
"""What the engines' inits print when the command cannot be run (Podman's catatonit, Docker's tini)."""
RUNNING_STATES = frozenset({"running", "paused", "restarting"})
ENDED_STATES = frozenset({"exited", "dead"})
SIGKILL_EXIT = 137


def is_ended(info: Mapping[str, Any]) -> bool:
    return str((info.get("State") or {}).get("Status", "")).lower() in ENDED_STATES


def _mebibytes(value: int) -> str:
    return f"{value / 2**20:,.0f} MiB"


def running_status(info: Mapping[str, Any], name: str) -> TaskStatus | None:
    """QUEUED / RUNNING for a container that has not ended, ``None`` for one that has."""
    state = info.get("State") or {}
    status = str(state.get("Status", "")).lower()
    if status == "created":
        return TaskStatus(TaskPhase.QUEUED)
    if status in RUNNING_STATES:
        return TaskStatus(TaskPhase.RUNNING)
    if status in ENDED_STATES:
        return None
    return unknown_status(
        TaskError("ContainerStatus", f"container {name}: state {status or '<none>'!r} is not one we know")
    )


async def ended_status(
    store: DataStore,
    task_ctx: TaskContext,
    task: tasks_pb2.TaskTemplate,
    info: Mapping[str, Any],
    *,
    last_output: str,
) -> TaskStatus:
    """The final status of a container that has exited (see the module docstring)."""
    name = task_ctx.generated_name
    state = info.get("State") or {}
    exit_code = int(state.get("ExitCode") or 0)
    memory = int(((info.get("HostConfig") or {}).get("Memory")) or 0)
    if exit_code == 0 and not state.get("OOMKilled"):
        return await status_after_success(store, task_ctx, task, what=f"container {name} exited with code 0")
    from_file = await status_from_error_file(store, task_ctx)
    if from_file is not None:
        return from_file
    if state.get("OOMKilled") or (exit_code == SIGKILL_EXIT and memory):
        how = (
            "the engine reports it OOM-killed"
            if state.get("OOMKilled")
            else "it was killed by SIGKILL (exit code 137), which nobody sent it but the kernel's "
            "out-of-memory killer"
        )
        limit = f" of its {_mebibytes(memory)} memory limit" if memory else ""
        return retryable_failure(
            TaskError(
                "OutOfMemory",
                f"container {name} ran out of memory: it needed more{limit} ({how})"
                + (f"; last output:\n{last_output}" if last_output else ""),
                ErrorOrigin.USER,
            )
        )
    if exit_code in (126, 127) or _INIT_EXEC_FAILED.search(last_output):
        # The init could not run the command: it is not in the image (or not executable).
        what = "cannot be executed" if exit_code == 126 else "is not in the image"
        command = ((info.get("Config") or {}).get("Cmd") or ["?"])[0]
        return permanent_failure(
            TaskError(
                "CommandNotExecutable" if exit_code == 126 else "CommandNotFound",
                f"container {name}: its command {command!r} {what} (exit code {exit_code})"
                + (f"; last output:\n{last_output}" if last_output else ""),
                ErrorOrigin.USER,
            )
        )
    detail = str(state.get("Error") or "").strip()
    message = f"container {name} exited with code {exit_code}" + (f" ({detail})" if detail else "")
    message += f"; last output:\n{last_output}" if last_output else " and printed nothing"
    return retryable_failure(TaskError(f"ExitCode{exit_code}", message, ErrorOrigin.USER))
