"""Shared pieces of the reliability units: a minimal Airflow context, a healthy companion task, a
loop-gap monitor, trigger preparation, and a fault-injecting executor wrapped around the REAL
local executor (registered under its own id, so operators and triggers find it by id)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from flyteidl.core import literals_pb2, tasks_pb2

from airflow_provider import executor_pool
from airflow_provider.execution import ExecutionHandle, open_driver
from airflow_provider.operators import ExecutorOperator
from airflow_provider.triggers import ExecutorTrigger
from executors import (
    DataStore,
    ExecutionDriver,
    Executor,
    ExecutorInitializationParameters,
    ExecutorProperties,
    OwnerReference,
    PollPolicy,
    TaskContext,
    TaskExecutionID,
    TaskPhase,
    TaskStatus,
)
from executors.backends.local import LocalExecutor
from executors.data.literals import from_literal_map
from executors.engine import submission
from executors.engine.driver import DriverSnapshot
from executors.engine.registry import default_registry
from harness.fake_ti import FakeTI
from harness.local_state import state_dir_of
from tests.conftest import DOUBLER, INT, make_identifier, python_template

REPO = str(Path(__file__).resolve().parents[2])

FAST = PollPolicy(interval=0.05, max_backoff=0.2, jitter=0.0, unknown_limit=3, call_timeout=10.0)

DOUBLE = python_template(DOUBLER, "{{.input}}", "{{.outputPrefix}}", inputs={"x": INT}, outputs={"y": INT})


def int_inputs(**values: int) -> literals_pb2.LiteralMap:
    lm = literals_pb2.LiteralMap()
    for key, value in values.items():
        lm.literals[key].scalar.primitive.integer = value
    return lm


# -- a minimal Airflow context -------------------------------------------------------------------


class MemoryTaskStateStore:
    """Airflow's task state store, reduced to what the operator calls (get/set/delete)."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return json.loads(json.dumps(self.data[key])) if key in self.data else default

    def set(self, key: str, value: Any) -> None:
        self.data[key] = json.loads(json.dumps(value))  # what a DB round trip keeps

    def delete(self, key: str) -> None:
        self.data.pop(key, None)


def context_for(
    op: ExecutorOperator, state_store: MemoryTaskStateStore | None = None, **ti_fields: Any
) -> dict[str, Any]:
    ti_fields.setdefault("task_id", op.task_id)
    context: dict[str, Any] = {"ti": FakeTI(**ti_fields), "task": op}
    if state_store is not None:
        context["task_state_store"] = state_store
    return context


# -- a healthy companion task --------------------------------------------------------------------


async def healthy_run(base: Path, x: int, *, name: str = "healthy") -> int:
    """One real local execution (reads x, writes y = 2x) driven to SUCCEEDED; returns y."""
    store = DataStore()
    executor = LocalExecutor(state_root=str(base / f"{name}-state"))
    await executor.initialize(ExecutorInitializationParameters(data_store=store))
    ctx = TaskContext(
        task_execution_id=TaskExecutionID.create(make_identifier(node=f"{name}-{x}")),
        data_dir=str(base / name / str(x)),
    )
    inputs = int_inputs(x=x)
    await store.write_protobuf(ctx.task_template_file, DOUBLE)
    await store.write_protobuf(ctx.inputs_file, inputs)

    async def load() -> literals_pb2.LiteralMap:
        return inputs

    driver = ExecutionDriver(executor, DOUBLE, ctx, inputs_loader=load, policy=FAST)
    status = await asyncio.wait_for(driver.run(), 60)
    assert status.phase is TaskPhase.SUCCEEDED, f"healthy task: {status}"
    literals = await executor.resolve_outputs(driver.ctx, "y")
    values = from_literal_map(literals_pb2.LiteralMap(literals=literals), DOUBLE.interface.outputs)
    assert values == {"y": 2 * x}, values
    return int(values["y"])


# -- triggers ------------------------------------------------------------------------------------


@dataclasses.dataclass
class PreparedTrigger:
    handle: ExecutionHandle
    ctx: TaskContext

    def trigger(self) -> ExecutorTrigger:
        return ExecutorTrigger(handle=self.handle.to_dict())


async def prepare_trigger(
    base: Path,
    template: tasks_pb2.TaskTemplate,
    *,
    name: str,
    config: dict[str, Any],
    executor_id: str = "local",
    inputs: literals_pb2.LiteralMap | None = None,
    data_dir: str | None = None,
    policy: PollPolicy = FAST,
    start: bool = False,
    accepted: bool = False,
    write: bool = True,
    deadline: dt.datetime | None = None,
) -> PreparedTrigger:
    """What ExecutorOperator hands ``defer()``: task.pb and inputs.pb written, optionally started."""
    store = DataStore()
    ctx = TaskContext(
        task_execution_id=TaskExecutionID.create(make_identifier(node=name)),
        data_dir=data_dir or str(base / "executions" / name),
        owner_id=f"dag/run/{name}",
        owner_reference=OwnerReference(kind="TaskInstance", name=f"dag.{name}"),
    )
    if write:
        await submission.submit(store, template, inputs or literals_pb2.LiteralMap(), ctx)
    handle = ExecutionHandle(
        executor_id=executor_id,
        executor_config=config,
        driver=DriverSnapshot(ctx, accepted=accepted),
        policy=policy,
        deadline=deadline.isoformat() if deadline else None,
    )
    if start:
        executor = await executor_pool.get_executor(executor_id, config, store)
        driver = open_driver(handle, executor, template, store, None)
        await driver.step()
        handle = handle.with_driver(driver)
    return PreparedTrigger(handle, ctx)


async def run_trigger(trigger: ExecutorTrigger, timeout: float = 60) -> TaskStatus:
    async def collect() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    payloads = await asyncio.wait_for(collect(), timeout)
    assert len(payloads) == 1, payloads
    json.dumps(payloads[0])
    return TaskStatus.from_dict(payloads[0]["status"])


async def wait_for(predicate: Callable[[], bool], timeout: float = 15, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


# -- a fault-injecting executor around the real local executor ------------------------------------

FAULTY_ID = "reliability-faulty"

_ERRORS: dict[str, type[Exception]] = {
    "ConnectionError": ConnectionError,
    "RuntimeError": RuntimeError,
    "TimeoutError": TimeoutError,
}


class FaultyExecutor(Executor):
    """Delegates to a real :class:`LocalExecutor`, except that ``fail`` (a method name) raises
    ``error`` (or hangs for an hour with ``how="hang"``; ``how="hang_after"`` delegates first, then
    hangs) for its first ``times`` calls (``-1``: always). Counts are per instance, i.e. per event
    loop for pooled executors: each worker ``execute()`` and each triggerer loop starts afresh."""

    id = FAULTY_ID

    def __init__(
        self,
        *,
        fail: str = "",
        times: int | str = -1,
        how: str = "raise",
        error: str = "ConnectionError",
        **local: Any,
    ) -> None:
        self.inner = LocalExecutor(**local)
        self.fail = fail
        self.times = int(times)
        self.how = how
        self.error = _ERRORS[error]
        self.calls: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()

    def _failing(self, method: str) -> bool:
        n = self.calls[method]
        self.calls[method] += 1
        if method != self.fail or (0 <= self.times <= n):
            return False
        self.failures[method] += 1
        return True

    async def _around(self, method: str, call: Callable[[], Awaitable[Any]]) -> Any:
        if not self._failing(method):
            return await call()
        if self.how == "hang":
            await asyncio.sleep(3600)
        if self.how == "hang_after":
            await call()
            await asyncio.sleep(3600)
        raise self.error(f"{FAULTY_ID}: {method} failed: backend unreachable (call {self.calls[method]})")

    def get_properties(self) -> ExecutorProperties:
        return self.inner.get_properties()

    def get_run_url(self, task_ctx: TaskContext) -> str | None:
        return self.inner.get_run_url(task_ctx)

    async def initialize(self, params: ExecutorInitializationParameters) -> None:
        await self._around("initialize", lambda: self.inner.initialize(params))

    async def start_task(
        self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate, inputs: literals_pb2.LiteralMap
    ) -> TaskStatus:
        result: TaskStatus = await self._around(
            "start_task", lambda: self.inner.start_task(task_ctx, task, inputs)
        )
        return result

    async def check_task_status(self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate) -> TaskStatus:
        result: TaskStatus = await self._around(
            "check_task_status", lambda: self.inner.check_task_status(task_ctx, task)
        )
        return result

    async def kill_task(self, task_ctx: TaskContext, reason: str) -> None:
        await self._around("kill_task", lambda: self.inner.kill_task(task_ctx, reason))

    async def resolve_outputs(
        self, task_ctx: TaskContext, *output_variables: str
    ) -> dict[str, literals_pb2.Literal]:
        result: dict[str, literals_pb2.Literal] = await self._around(
            "resolve_outputs", lambda: self.inner.resolve_outputs(task_ctx, *output_variables)
        )
        return result

    async def read_logs(self, task_ctx: TaskContext, max_bytes: int = 64_000) -> str | None:
        result: str | None = await self._around(
            "read_logs", lambda: self.inner.read_logs(task_ctx, max_bytes)
        )
        return result

    async def close(self) -> None:
        await self.inner.close()


if FAULTY_ID not in default_registry.known_ids():
    default_registry.register(FaultyExecutor, source="tests/reliability_units/support.py")


def process_gone(pid: int) -> bool:
    import psutil

    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def local_pid(execution_dir: str | os.PathLike[str], state_root: str | os.PathLike[str]) -> int:
    """The task process of the local execution in ``execution_dir`` (its records are under the
    executor's ``state_root``)."""
    return int(json.loads((state_dir_of(execution_dir, state_root) / "pid.json").read_text())["pid"])
