"""A scripted executor for operator tests: answers phases from a per-attempt script.

Its position in the script is counted in a file in the execution's folder, not in memory: the
operator (worker) and the trigger each build their own executor instance (one per event loop), and
both must walk one script. Configure it through ``executor_options``::

    executor_options={"script": {"0": ["RUNNING", "UNKNOWN"], "1": ["RUNNING", "SUCCEEDED"]}}

keys are Flyte retry attempts (``"*"``: any other); the last entry repeats forever.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from flyteidl.core import literals_pb2, tasks_pb2

from executors import (
    ErrorOrigin,
    Executor,
    ExecutorInitializationParameters,
    TaskContext,
    TaskError,
    TaskPhase,
    TaskStatus,
)
from executors.data.storage import local_path

SCRIPTED_ID = "scripted-test"

_ERRORS = {
    TaskPhase.RETRYABLE_FAILURE: TaskError("ScriptedFlake", "the scripted backend flaked", ErrorOrigin.USER),
    TaskPhase.PERMANENT_FAILURE: TaskError("ScriptedBroken", "the scripted task is broken", ErrorOrigin.USER),
    TaskPhase.UNKNOWN: TaskError("ApiDown", "the scripted backend answered 503", ErrorOrigin.SYSTEM),
    TaskPhase.UNDEFINED: TaskError("Garbled", "the scripted backend said 'banana'", ErrorOrigin.SYSTEM),
}


def calls_file(task_ctx: TaskContext) -> str:
    return os.path.join(local_path(task_ctx.data_dir), "scripted-calls.txt")


def recorded_calls_in(execution_folder: str) -> list[str]:
    """The calls (start, check, kill) made so far on the execution in this (local) folder."""
    try:
        with open(os.path.join(local_path(execution_folder), "scripted-calls.txt")) as fh:
            return fh.read().split()
    except FileNotFoundError:
        return []


def recorded_calls(task_ctx: TaskContext) -> list[str]:
    return recorded_calls_in(task_ctx.data_dir)


class ScriptedExecutor(Executor):
    id = SCRIPTED_ID

    def __init__(self, *, script: Mapping[str, Sequence[str]]) -> None:
        self.script = {k: list(v) for k, v in script.items()}

    async def initialize(self, params: ExecutorInitializationParameters) -> None:
        return None

    def _record(self, task_ctx: TaskContext, kind: str) -> int:
        """Append one call; return how many start/check calls came before it."""
        before = [c for c in recorded_calls(task_ctx) if c in ("start", "check")]
        os.makedirs(os.path.dirname(calls_file(task_ctx)), exist_ok=True)
        with open(calls_file(task_ctx), "a") as fh:
            fh.write(kind + "\n")
        return len(before)

    def _answer(self, task_ctx: TaskContext, kind: str) -> TaskStatus:
        position = self._record(task_ctx, kind)
        attempt = str(task_ctx.task_execution_id.id.retry_attempt)
        steps = self.script.get(attempt) or self.script["*"]
        phase = TaskPhase[steps[min(position, len(steps) - 1)]]
        return TaskStatus(phase, err=_ERRORS.get(phase))

    async def start_task(
        self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate, inputs: literals_pb2.LiteralMap
    ) -> TaskStatus:
        return self._answer(task_ctx, "start")

    async def check_task_status(self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate) -> TaskStatus:
        return self._answer(task_ctx, "check")

    async def kill_task(self, task_ctx: TaskContext, reason: str) -> None:
        self._record(task_ctx, "kill")

    async def resolve_outputs(
        self, task_ctx: TaskContext, *output_variables: str
    ) -> dict[str, literals_pb2.Literal]:
        return {}
