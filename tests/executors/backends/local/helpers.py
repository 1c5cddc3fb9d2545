"""Shared by the local executor's hardening tests: starting, waiting, a healthy companion task and
counting the processes a test left behind (by a unique marker in their argv)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
from flyteidl.core import literals_pb2, tasks_pb2

from executors import DataStore, Executor, TaskContext, TaskStatus
from tests.reliability_units.support import healthy_run


async def start(
    executor: Executor,
    store: DataStore,
    ctx: TaskContext,
    template: tasks_pb2.TaskTemplate,
    inputs: literals_pb2.LiteralMap | None = None,
) -> TaskStatus:
    inputs = inputs if inputs is not None else literals_pb2.LiteralMap()
    await store.write_protobuf(ctx.inputs_file, inputs)
    return await executor.start_task(ctx, template, inputs)


async def wait_final(
    executor: Executor, ctx: TaskContext, template: tasks_pb2.TaskTemplate, timeout: float = 30
) -> TaskStatus:
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        status = await executor.check_task_status(ctx, template)
        if status.phase.is_final_for_execution():
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"still {status} after {timeout}s")


def new_marker() -> str:
    return f"escapee-{uuid.uuid4().hex}"


def processes_with(marker: str) -> list[psutil.Process]:
    """Live processes whose argv holds ``marker`` (zombies do not count: they hold nothing)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and marker in " ".join(proc.info["cmdline"] or ()):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def kill_marked(marker: str) -> None:
    """Teardown: SIGKILL what a failed test left behind (only processes carrying its marker)."""
    for proc in processes_with(marker):
        with contextlib.suppress(psutil.Error):
            proc.kill()


@contextlib.asynccontextmanager
async def healthy_task_beside(base: Path, x: int = 21) -> AsyncIterator[None]:
    """Runs a real healthy local execution (own state root) while the body runs; asserts it
    succeeded with the right output when the body is done."""
    task = asyncio.ensure_future(healthy_run(base, x))
    try:
        yield
    finally:
        if not task.done():
            await asyncio.wait([task], timeout=60)
    assert task.result() == 2 * x
