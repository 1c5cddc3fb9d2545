"""The task-log lines of an execution's phases (``phase_logger``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from airflow_provider.execution import phase_logger
from executors import TaskContext, TaskPhase, TaskStatus
from executors.core.status import ErrorOrigin, TaskError


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str, *args: Any) -> None:
        self.lines.append(msg % args)


def test_one_line_per_phase_with_the_cause_of_a_failure(make_ctx: Callable[..., TaskContext]) -> None:
    log = Lines()
    on_change = phase_logger(log, "local")
    ctx = make_ctx()
    on_change(ctx, TaskStatus(TaskPhase.RUNNING))
    on_change(
        ctx, TaskStatus(TaskPhase.RETRYABLE_FAILURE, err=TaskError("ExitCode1", "boom", ErrorOrigin.USER))
    )
    name = ctx.generated_name
    assert log.lines == [
        f"local execution {name} is RUNNING",
        f"local execution {name} is RETRYABLE_FAILURE: [user:ExitCode1] boom",
    ]


def test_a_cache_hit_does_not_read_as_if_something_ran(make_ctx: Callable[..., TaskContext]) -> None:
    log = Lines()
    ctx = make_ctx()
    hit = dataclasses.replace(ctx, custom_state={"catalog": {"status": "CACHE_HIT"}})
    phase_logger(log, "local")(hit, TaskStatus(TaskPhase.SUCCEEDED))
    phase_logger(log, "local")(ctx, TaskStatus(TaskPhase.SUCCEEDED))
    assert log.lines == [
        f"local execution {ctx.generated_name} is SUCCEEDED, answered from the cache: nothing ran",
        f"local execution {ctx.generated_name} is SUCCEEDED",
    ]
