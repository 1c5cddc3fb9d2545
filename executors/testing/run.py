"""What the contract's checks work with: an initialized executor, a :class:`ContractRun` that starts
and drives executions the way the engine does, and a re-attaching process."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest
from flyteidl.core import identifier_pb2, literals_pb2, tasks_pb2

from executors import ExecutionDriver, PollPolicy
from executors.core.context import TaskContext, TaskExecutionID
from executors.core.interface import Executor, ExecutorInitializationParameters
from executors.core.phase import TaskPhase
from executors.core.status import TaskStatus
from executors.data.storage import DataStore, join
from executors.engine import submission
from executors.engine.registry import create_executor
from executors.testing.reattach import RESULT_MARK
from executors.testing.tasks import ContractTasks

__all__ = ["ContractRun", "in_another_process", "initialized_executor", "resolve_executor"]

STARTED = (TaskPhase.QUEUED, TaskPhase.RUNNING)
"""What a start that was accepted may answer (before the task can have finished)."""


@contextlib.asynccontextmanager
async def initialized_executor(
    executor_id: str, options: Mapping[str, Any], data_store: DataStore | None = None
) -> AsyncIterator[Executor]:
    """``create_executor(executor_id, **options)``, initialized with ``data_store``; closed on exit.

    What a backend's ``executor`` fixture usually is::

        @pytest.fixture
        async def executor(self, executor_id, executor_options):
            async with initialized_executor(executor_id, executor_options) as executor:
                yield executor
    """
    executor = create_executor(executor_id, **dict(options))
    await executor.initialize(ExecutorInitializationParameters(data_store=data_store or DataStore()))
    try:
        yield executor
    finally:
        await executor.close()


@dataclasses.dataclass
class ContractRun:
    """What one contract check works with: the executor, the data dir, and helpers that start and
    drive executions the way the engine does (writing ``task.pb`` and ``inputs.pb`` first).

    Every execution started through it is killed at the end of the check unless it was seen final.
    """

    executor: Executor
    executor_id: str
    executor_options: Mapping[str, Any]
    store: DataStore
    data_dir: str
    policy: PollPolicy
    tasks: ContractTasks
    timeout: float
    last_status: TaskStatus | None = None
    _started: dict[str, tuple[Executor, TaskContext]] = dataclasses.field(default_factory=dict)
    _final: set[str] = dataclasses.field(default_factory=set)

    # -- contexts and files ------------------------------------------------------------------

    def context(self, node: str) -> TaskContext:
        """A new execution's context: a unique run (so generated names never collide, even on a
        backend shared by many test sessions), its data dir a fresh folder under ``data_dir``."""
        ident = identifier_pb2.TaskExecutionIdentifier(retry_attempt=0)
        ident.task_id.resource_type = identifier_pb2.TASK
        ident.task_id.project = "contract"
        ident.task_id.domain = "development"
        ident.task_id.name = f"executors.contract.{node}"
        ident.task_id.version = "1"
        ident.node_execution_id.node_id = node
        ident.node_execution_id.execution_id.project = "contract"
        ident.node_execution_id.execution_id.domain = "development"
        ident.node_execution_id.execution_id.name = f"contract-{uuid.uuid4().hex[:12]}"
        exec_id = TaskExecutionID.create(ident)
        return TaskContext(task_execution_id=exec_id, data_dir=join(self.data_dir, exec_id.generated_name))

    async def prepare(
        self, ctx: TaskContext, template: tasks_pb2.TaskTemplate, inputs: literals_pb2.LiteralMap | None
    ) -> literals_pb2.LiteralMap:
        """What the engine does before a start: write ``task.pb`` and ``inputs.pb``."""
        inputs = inputs if inputs is not None else literals_pb2.LiteralMap()
        await submission.submit(self.store, template, inputs, ctx)
        return inputs

    async def count_files(self, prefix: str) -> int:
        """How many files there are under ``prefix`` (0 when it does not exist)."""
        fs, path = self.store.filesystem(prefix)

        def find() -> list[str]:
            try:
                return list(fs.find(path))
            except FileNotFoundError:
                return []

        return len(await asyncio.to_thread(find))

    # -- starting and driving ----------------------------------------------------------------

    def _remember(self, executor: Executor, ctx: TaskContext) -> None:
        self._started.setdefault(ctx.generated_name, (executor, ctx))

    def _observer(self, executor: Executor) -> Callable[[TaskContext, TaskStatus], None]:
        def observe(ctx: TaskContext, status: TaskStatus) -> None:
            self.last_status = status
            # Only the instance that started it may call it over (an unreachable one cannot tell).
            owner = self._started.get(ctx.generated_name)
            if status.phase.is_final_for_execution() and owner is not None and owner[0] is executor:
                self._final.add(ctx.generated_name)

        return observe

    async def start(
        self,
        ctx: TaskContext,
        template: tasks_pb2.TaskTemplate,
        inputs: literals_pb2.LiteralMap | None = None,
        *,
        executor: Executor | None = None,
    ) -> TaskStatus:
        """One ``start_task`` call (after :meth:`prepare`), as it is: no retry, no exception caught."""
        executor = executor or self.executor
        inputs = await self.prepare(ctx, template, inputs)
        self._remember(executor, ctx)
        status = await executor.start_task(ctx, template, inputs)
        self._observer(executor)(ctx, status)
        return status

    def driver(
        self,
        ctx: TaskContext,
        template: tasks_pb2.TaskTemplate,
        inputs: literals_pb2.LiteralMap | None = None,
        *,
        started: TaskStatus | None = None,
        executor: Executor | None = None,
        policy: PollPolicy | None = None,
    ) -> ExecutionDriver:
        """An :class:`ExecutionDriver` for ``ctx``; ``started``: the start was accepted with that status
        (the driver only checks), else the driver starts it."""
        executor = executor or self.executor
        literal_map = inputs if inputs is not None else literals_pb2.LiteralMap()

        async def load_inputs() -> literals_pb2.LiteralMap:
            return literal_map

        if started is not None:
            ctx = ctx.with_status(started.phase, started.phase_version, started.state)
        self._remember(executor, ctx)
        return ExecutionDriver(
            executor,
            template,
            ctx,
            inputs_loader=load_inputs,
            policy=policy or self.policy,
            accepted=started is not None,
            on_change=self._observer(executor),
        )

    async def run(
        self,
        ctx: TaskContext,
        template: tasks_pb2.TaskTemplate,
        inputs: literals_pb2.LiteralMap | None = None,
        *,
        executor: Executor | None = None,
    ) -> tuple[TaskStatus, TaskContext]:
        """Start and drive to a final phase, as the engine does; the final status and context."""
        inputs = await self.prepare(ctx, template, inputs)
        driver = self.driver(ctx, template, inputs, executor=executor)
        status = await driver.run()
        return status, driver.ctx

    async def finish(
        self,
        ctx: TaskContext,
        template: tasks_pb2.TaskTemplate,
        started: TaskStatus,
        *,
        executor: Executor | None = None,
    ) -> tuple[TaskStatus, TaskContext]:
        """Drive an accepted execution to a final phase; the final status and context."""
        driver = self.driver(ctx, template, started=started, executor=executor)
        status = await driver.run()
        return status, driver.ctx

    async def wait_until(
        self,
        ctx: TaskContext,
        template: tasks_pb2.TaskTemplate,
        started: TaskStatus,
        done: Callable[[TaskStatus], bool],
    ) -> tuple[TaskStatus, TaskContext]:
        """Check (at the policy's pace) until ``done(status)`` or a final phase."""
        driver = self.driver(ctx, template, started=started)
        while True:
            status = await driver.step()
            if done(status) or status.phase.is_final_for_execution():
                return status, driver.ctx
            await asyncio.sleep(driver.next_delay(status))

    # -- the end of a check ------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def deadline(self, what: str) -> AsyncIterator[None]:
        """Fail (not hang) when the check takes longer than the contract's timeout."""
        timeout = asyncio.timeout(self.timeout)
        try:
            async with timeout:
                yield
        except TimeoutError:
            if not timeout.expired():
                raise
            pytest.fail(f"{what}: not done within {self.timeout:g}s; last status seen: {self.last_status}")

    async def cleanup(self) -> None:
        """Kill what was started and not seen final (best effort: a check may have failed midway)."""
        for name, (executor, ctx) in self._started.items():
            if name in self._final:
                continue
            with contextlib.suppress(Exception):
                await asyncio.wait_for(executor.kill_task(ctx, "executor contract: cleanup"), 60)


async def resolve_executor(value: Any) -> tuple[Executor, bool]:
    """An executor fixture's value: an executor, or a factory (sync or async) of one. The bool says
    whether the kit made it (and closes it)."""
    if isinstance(value, Executor):
        return value, False
    if callable(value):
        made = value()
        if inspect.isawaitable(made):
            made = await made
        if isinstance(made, Executor):
            return made, True
    raise TypeError(
        f"the executor fixture must be an initialized Executor or a factory of one, got {value!r:.200}"
    )


def _child_environment() -> dict[str, str]:
    """This process's environment, with its ``sys.path`` first on ``PYTHONPATH`` (the child imports
    the same code, including what pytest put on the path)."""
    env = dict(os.environ)
    paths = [p for p in sys.path if p and os.path.isdir(p)]
    env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


async def in_another_process(request: Mapping[str, Any], limit: float) -> dict[str, Any]:
    """Run :mod:`executors.testing.reattach` in a new interpreter (the same one, same ``sys.path``)."""
    env = await asyncio.to_thread(_child_environment)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "executors.testing.reattach",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=env,
    )  # fmt: skip
    try:
        try:
            out, err = await asyncio.wait_for(proc.communicate(json.dumps(request).encode()), limit)
        except TimeoutError:
            pytest.fail(f"the re-attaching process did not finish within {limit:g}s")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    stderr = err.decode(errors="replace")[-4000:]
    if proc.returncode != 0:
        pytest.fail(f"the re-attaching process exited with {proc.returncode}:\n{stderr}")
    for line in reversed(out.decode(errors="replace").splitlines()):
        if line.startswith(RESULT_MARK):
            return dict(json.loads(line[len(RESULT_MARK) :]))
    pytest.fail(f"the re-attaching process printed no result; its stderr:\n{stderr}")
