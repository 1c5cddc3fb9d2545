"""What the local executor cannot launch, found before anything is launched: a data dir in this
process's memory, and what the OS would refuse to run (an environment variable or a command argument
it cannot hold). Each is a user error naming the culprit (never a secret's value)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from flyteidl.core import tasks_pb2

from executors.backends.local.processes import LINUX
from executors.core.context import TaskContext
from executors.core.status import ErrorOrigin, TaskError

MAX_ARG_BYTES = 131072
"""Linux's MAX_ARG_STRLEN: the longest argument or ``NAME=value`` string, with its final NUL."""


def unshared_file(task_ctx: TaskContext) -> TaskError | None:
    """A task file in this process's memory, which the local process could not read."""
    for ref_name in ("inputs_file", "outputs_file", "error_file"):
        ref = getattr(task_ctx, ref_name)
        if ref.startswith("memory://"):
            return TaskError(
                "DataDirNotShared",
                f"{ref_name} {ref} is in this process's memory and a local process cannot "
                "read it; use a local folder or a shared store for the data dir",
                ErrorOrigin.USER,
            )
    return None


def _os_bytes(text: str) -> bytes | None:
    try:
        return os.fsencode(text)
    except UnicodeEncodeError:
        return None


def env_name_problem(name: str) -> str | None:
    if not name:
        return "is empty"
    if "=" in name:
        return "contains '='"
    if "\x00" in name:
        return "contains a NUL byte"
    if _os_bytes(name) is None:
        return "is not valid text (it holds a lone surrogate)"
    return None


def _env_value_problem(name: str, value: str) -> str | None:
    if "\x00" in value:
        return "contains a NUL byte"
    encoded = _os_bytes(value)
    if encoded is None:
        return "is not valid text (it holds a lone surrogate)"
    size = len(os.fsencode(name)) + 1 + len(encoded)
    if LINUX and size >= MAX_ARG_BYTES:
        return f"is too long: {size} bytes with its name, the OS takes at most {MAX_ARG_BYTES - 1}"
    return None


def _argument_problem(arg: str) -> str | None:
    if "\x00" in arg:
        return "contains a NUL byte, which a process argument cannot hold"
    encoded = _os_bytes(arg)
    if encoded is None:
        return "is not valid text (it holds a lone surrogate)"
    if LINUX and len(encoded) >= MAX_ARG_BYTES:
        return f"is {len(encoded)} bytes long; the OS takes at most {MAX_ARG_BYTES - 1} per argument"
    return None


def _preview(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def invalid_launch(
    task: tasks_pb2.TaskTemplate,
    task_ctx: TaskContext,
    command: Sequence[str],
    env: Mapping[str, str],
    secrets: Mapping[str, str],
) -> TaskError | None:
    """What the supervisor could not start (the OS refuses it), found before anything is
    launched: a user error naming the variable (never a secret's value) or the argument."""
    sources = (
        ("the task template's env", [kv.key for kv in task.container.env]),
        ("the environment overrides", list(task_ctx.overrides.environment)),
        ("the secrets", list(secrets)),
        ("the environment", list(env)),
    )
    for source, names in sources:
        for name in names:
            problem = env_name_problem(name)
            if problem is not None:
                return TaskError(
                    "InvalidEnvironment",
                    f"environment variable name {name!r} (from {source}) {problem}; names must be "
                    "non-empty and contain neither '=' nor a NUL byte",
                    ErrorOrigin.USER,
                )
    for kind, values in (("environment variable", env), ("secret environment variable", secrets)):
        for name, value in values.items():
            problem = _env_value_problem(name, value)
            if problem is not None:
                return TaskError(
                    "InvalidEnvironment", f"the value of {kind} {name!r} {problem}", ErrorOrigin.USER
                )
    for index, arg in enumerate(command):
        problem = _argument_problem(arg)
        if problem is not None:
            return TaskError(
                "InvalidCommand", f"command argument {index} ({_preview(arg)}) {problem}", ErrorOrigin.USER
            )
    return None
