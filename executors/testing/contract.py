"""The executor contract: one pytest class of checks that every executor must pass.

A backend's test module subclasses :class:`ExecutorContract` and provides fixtures; every check then
runs against the real backend (real processes, a real cluster: nothing is mocked by the kit). The
checks are the rules of :class:`executors.core.interface.Executor` and of
:mod:`executors.backends.container` (what ``outputs.pb`` and ``error.pb`` mean), driven the way the
engine drives them (:class:`executors.engine.driver.ExecutionDriver`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

import pytest
import pytest_asyncio
from flyteidl.core import literals_pb2

from executors import PollPolicy
from executors.core.interface import Executor
from executors.core.phase import TaskPhase
from executors.core.status import ErrorOrigin, TaskStatus
from executors.data.storage import DataStore, join
from executors.engine.registry import create_executor
from executors.testing.reattach import reattach
from executors.testing.run import (
    STARTED,
    ContractRun,
    in_another_process,
    initialized_executor,
    resolve_executor,
)
from executors.testing.tasks import ContractTasks, int_inputs

__all__ = ["ExecutorContract"]


def _literal_text(literal: literals_pb2.Literal) -> str:
    return str(literal).strip().replace("\n", " ")


class ExecutorContract:
    """The executor contract, as pytest checks: subclass it in a test module and provide fixtures.

    Fixtures a subclass provides (as methods of the subclass, or at module or ``conftest.py`` level):

    ``executor_id``
        the executor's registry id (``str``), as in ``create_executor(executor_id, **options)``.
    ``executor_options``
        the keyword arguments (``dict``, JSON-serializable) that configure the executor under test;
        the kit builds other instances with them, in another process
        (``create_executor(executor_id, **executor_options)``), so the backend must be registered
        (its entry point installed).
    ``data_dir``
        a folder or fsspec URL under which each check gets the data dir of its executions
        (``<data_dir>/<generated name>``); the backend's workers must be able to read and write it
        under that same name (for a backend on this machine, ``tmp_path`` is fine).

    Optional fixtures (looked up by name; define them anywhere a fixture can be defined):

    ``executor``
        the executor under test. Default: ``create_executor(executor_id, **executor_options)``,
        initialized and closed by :func:`initialized_executor`. Override it with an *initialized*
        executor (the fixture initializes and closes it) or a factory (sync or async) of one, which
        the kit then closes itself.

    ``unreachable_executor``
        an initialized executor configured like ``executor`` but whose backend cannot be reached
        (a closed port, a lost mount). Without it the two "unreachable" checks are skipped; a
        backend that cannot be made unreachable may also ``pytest.skip(reason)`` in the fixture.
    ``data_store``
        the :class:`DataStore` the kit writes ``task.pb``/``inputs.pb`` and reads back with (default:
        ``DataStore()``); give one with ``storage_options`` for an object store that needs them.

    Class attributes a subclass may set:

    ``expected_failures``
        check name -> reason: the check is expected to fail for this backend (a known bug) and is
        marked ``xfail(strict=True)``, so it fails the suite again once the bug is fixed.
    ``skipped_checks``
        check name -> reason: the check does not apply to this backend.
    ``reattach_in_subprocess``
        ``False`` for an executor whose instances cannot be shared across processes: the re-attach
        check then uses a second, independently initialized instance in this process.
    ``contract_timeout``, ``poll_policy``, ``python``, ``settle_seconds``
        the time limit of each check (s), how the driver polls, the interpreter the tasks' commands
        name (it must be able to ``import executors``), and how long to wait after an execution's end
        for a stray second launch to show.

    Example::

        from executors.testing import ExecutorContract

        class TestMyExecutorContract(ExecutorContract):
            @pytest.fixture
            def executor_id(self):
                return "mybackend"

            @pytest.fixture
            def executor_options(self, my_cluster):
                return {"address": my_cluster.url}

            @pytest.fixture
            def data_dir(self, tmp_path):
                return str(tmp_path)

    (With pytest-asyncio in strict mode, decorate an async ``executor`` fixture of your own with
    ``@pytest_asyncio.fixture``.) The checks are ``async`` test methods marked ``asyncio``; each
    starts its own executions, with unique names, and kills what it leaves running.
    """

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio]
    """The checks are coroutines: marked for pytest-asyncio, so they run in its strict mode too."""

    contract_timeout: ClassVar[float] = 120.0
    poll_policy: ClassVar[PollPolicy] = PollPolicy(
        interval=0.1, max_backoff=1.0, jitter=0.1, unknown_limit=30, call_timeout=60.0
    )
    python: ClassVar[str] = "python"
    reattach_in_subprocess: ClassVar[bool] = True
    settle_seconds: ClassVar[float] = 1.0
    expected_failures: ClassVar[Mapping[str, str]] = {}
    skipped_checks: ClassVar[Mapping[str, str]] = {}

    # -- the kit's own fixtures ----------------------------------------------------------------

    @pytest.fixture(autouse=True)
    def _contract_expectations(self, request: pytest.FixtureRequest) -> None:
        checks = {name for name in dir(ExecutorContract) if name.startswith("test_")}
        unknown = sorted((set(self.expected_failures) | set(self.skipped_checks)) - checks)
        if unknown:
            pytest.fail(
                f"{type(self).__name__}: expected_failures/skipped_checks name no contract check: "
                f"{', '.join(unknown)} (the checks: {', '.join(sorted(checks))})"
            )
        name = request.function.__name__
        if name in self.skipped_checks:
            pytest.skip(self.skipped_checks[name])
        if name in self.expected_failures:
            request.applymarker(pytest.mark.xfail(strict=True, reason=self.expected_failures[name]))

    @staticmethod
    def _optional_fixture(request: pytest.FixtureRequest, name: str) -> tuple[bool, Any]:
        try:
            return True, request.getfixturevalue(name)
        except pytest.FixtureLookupError as exc:
            if exc.argname != name:
                raise  # the fixture exists; one of its own dependencies is missing
            return False, None

    @pytest_asyncio.fixture
    async def executor(
        self, executor_id: str, executor_options: Mapping[str, Any]
    ) -> AsyncIterator[Executor]:
        """The default executor under test: built from the registry with ``executor_options``."""
        async with initialized_executor(executor_id, executor_options) as executor:
            yield executor

    @pytest.fixture
    def contract_data_store(self, request: pytest.FixtureRequest) -> DataStore:
        found, store = self._optional_fixture(request, "data_store")
        return store if found else DataStore()

    @pytest.fixture
    def contract_unreachable(self, request: pytest.FixtureRequest) -> Any:
        found, value = self._optional_fixture(request, "unreachable_executor")
        if not found:
            pytest.skip("no unreachable_executor fixture: the backend gives no way to make it unreachable")
        return value

    @pytest_asyncio.fixture
    async def contract(
        self,
        executor: Any,
        executor_id: str,
        executor_options: Mapping[str, Any],
        data_dir: Any,
        contract_data_store: DataStore,
    ) -> AsyncIterator[ContractRun]:
        resolved, made_here = await resolve_executor(executor)
        run = ContractRun(
            executor=resolved,
            executor_id=executor_id,
            executor_options=dict(executor_options),
            store=contract_data_store,
            data_dir=os.fspath(data_dir),
            policy=self.poll_policy,
            tasks=ContractTasks(self.python),
            timeout=self.contract_timeout,
        )
        try:
            yield run
        finally:
            await run.cleanup()
            if made_here:
                await resolved.close()

    # -- the checks ------------------------------------------------------------------------------

    async def test_registered_under_its_id(self, contract: ContractRun) -> None:
        """``get_id()`` is the registry id, and ``create_executor(executor_id, **executor_options)``
        builds the class under test: what the engine (another triggerer, a worker) does to get one.
        ``__init__`` is cheap and does no I/O, so building one here needs no backend."""
        assert contract.executor.get_id() == contract.executor_id
        try:
            json.dumps(contract.executor_options)
        except (TypeError, ValueError) as exc:
            pytest.fail(f"executor_options must be JSON-serializable (they travel to other processes): {exc}")
        other = create_executor(contract.executor_id, **contract.executor_options)
        assert type(other) is type(contract.executor)

    async def test_start_is_idempotent(self, contract: ContractRun) -> None:
        """``start_task`` is idempotent per ``task_ctx.generated_name``: a second call for the same
        context (after a crash, a restart, a retried call), one after the other or several at once,
        re-attaches to the execution the first call started and never launches a second one; a start
        after the end reports the finished execution. Checked by a side effect: each launch of the
        task leaves one file, and exactly one is there once the execution is over."""
        async with contract.deadline("idempotent start"):
            ctx = contract.context("idempotent-start")
            template = contract.tasks.side_effect(seconds=2)
            first = await contract.start(ctx, template)
            assert first.phase in STARTED, f"the first start was not accepted: {first}"
            again = await contract.start(ctx, template)
            assert again.phase in (*STARTED, TaskPhase.SUCCEEDED), f"the second start: {again}"
            together = await asyncio.gather(*(contract.start(ctx, template) for _ in range(3)))
            for status in together:
                assert status.phase in (*STARTED, TaskPhase.SUCCEEDED), f"a concurrent start: {status}"
            final, _ = await contract.finish(ctx, template, first)
            assert final.phase is TaskPhase.SUCCEEDED, final
            after = await contract.start(ctx, template)
            assert after.phase is TaskPhase.SUCCEEDED, f"a start after the end did not re-attach: {after}"
            await asyncio.sleep(self.settle_seconds)
            launches = await contract.count_files(join(ctx.raw_output_prefix, "contract-starts"))
            assert launches == 1, f"six starts of one context launched the task {launches} times"

    async def test_another_process_checks_and_resolves_outputs(self, contract: ContractRun) -> None:
        """``check_task_status`` may be called from a different process than ``start_task``, so any
        state it needs lives in the custom state it returned or in the backend, never only in memory.
        An execution started here is checked (still running: it waits for a file the other side
        writes), driven to SUCCEEDED and its outputs resolved by a fresh executor instance built
        from ``executor_options`` and initialized in a new Python process (or, with
        ``reattach_in_subprocess = False``, a second instance initialized here); the starting
        instance then sees the same end."""
        async with contract.deadline("re-attach from another process"):
            ctx = contract.context("reattach")
            release = join(ctx.data_dir, "contract-release")
            template = contract.tasks.gated_double(release, max_wait=self.contract_timeout)
            started = await contract.start(ctx, template, int_inputs(x=21))
            assert started.phase in STARTED, f"the start was not accepted: {started}"
            carried = ctx.with_status(started.phase, started.phase_version, started.state)
            request = {
                "executor_id": contract.executor_id,
                "executor_options": dict(contract.executor_options),
                "storage_options": contract.store.storage_options,
                "task_ctx": carried.to_dict(),
                "template": template.SerializeToString().hex(),
                "release": release,
                "outputs": ["y", "label"],
                "policy": contract.policy.to_dict(),
            }
            if self.reattach_in_subprocess:
                result = await in_another_process(request, max(1.0, self.contract_timeout - 10))
            else:
                result = await reattach(request)
            first = TaskStatus.from_dict(result["first"])
            final = TaskStatus.from_dict(result["final"])
            assert first.phase in STARTED, f"the other instance's first check (the task still waits): {first}"
            assert final.phase is TaskPhase.SUCCEEDED, f"the other instance's final status: {final}"
            outputs = {
                name: literals_pb2.Literal.FromString(bytes.fromhex(data))
                for name, data in result["outputs"].items()
            }
            assert sorted(outputs) == ["label", "y"], outputs
            assert outputs["y"].scalar.primitive.integer == 42, _literal_text(outputs["y"])
            assert outputs["label"].scalar.primitive.string_value == "x=21", _literal_text(outputs["label"])
            here, last_ctx = await contract.finish(ctx, template, started)
            assert here.phase is TaskPhase.SUCCEEDED, f"the starting instance disagrees: {here}"
            mine = await contract.executor.resolve_outputs(last_ctx, "y")
            assert mine["y"].scalar.primitive.integer == 42

    async def test_kill_of_a_running_execution_is_idempotent(self, contract: ContractRun) -> None:
        """``kill_task`` stops the execution and is idempotent: killing a running execution twice
        raises nothing and the execution ends (a final phase, and not SUCCEEDED: the task would have
        run for minutes); killing it once more after that end raises nothing and changes nothing."""
        async with contract.deadline("idempotent kill of a running execution"):
            ctx = contract.context("kill-running")
            template = contract.tasks.sleep(600)
            started = await contract.start(ctx, template)
            assert started.phase in STARTED, f"the start was not accepted: {started}"
            running, ctx = await contract.wait_until(
                ctx, template, started, lambda s: s.phase is TaskPhase.RUNNING
            )
            assert running.phase is TaskPhase.RUNNING, f"never seen RUNNING: {running}"
            await contract.executor.kill_task(ctx, "executor contract: first kill")
            await contract.executor.kill_task(ctx, "executor contract: second kill")
            final, ctx = await contract.finish(ctx, template, running)
            assert final.phase is not TaskPhase.SUCCEEDED, f"a killed execution succeeded: {final}"
            await contract.executor.kill_task(ctx, "executor contract: kill after the end")
            after = await contract.executor.check_task_status(ctx, template)
            assert after.phase is final.phase, f"a kill after the end changed {final} into {after}"

    async def test_kill_of_a_finished_execution_is_a_no_op(self, contract: ContractRun) -> None:
        """Killing an execution that already finished on its own (twice) succeeds, and its status
        stays final: there is nothing left to stop. (The engine never kills after it saw a terminal
        phase; which final phase is reported afterwards is not part of the contract.)"""
        async with contract.deadline("kill of a finished execution"):
            ctx = contract.context("kill-finished")
            template = contract.tasks.silent(declare_outputs=False)
            final, ctx = await contract.run(ctx, template)
            assert final.phase is TaskPhase.SUCCEEDED, final
            await contract.executor.kill_task(ctx, "executor contract: kill after the end")
            await contract.executor.kill_task(ctx, "executor contract: and again")
            after = await contract.executor.check_task_status(ctx, template)
            assert after.phase.is_final_for_execution(), f"after killing a finished execution: {after}"

    async def test_kill_of_an_execution_never_started_is_a_no_op(self, contract: ContractRun) -> None:
        """Killing an execution that was never started (twice) succeeds and starts nothing: a check
        afterwards reports no queued, running or succeeded execution."""
        async with contract.deadline("kill of an execution never started"):
            ctx = contract.context("kill-never-started")
            template = contract.tasks.sleep(600)
            await contract.executor.kill_task(ctx, "executor contract: nothing there")
            await contract.executor.kill_task(ctx, "executor contract: still nothing there")
            status = await contract.executor.check_task_status(ctx, template)
            assert status.phase not in (*STARTED, TaskPhase.SUCCEEDED), f"after the kill: {status}"

    async def test_check_while_the_backend_is_unreachable_is_unknown(
        self, contract: ContractRun, contract_unreachable: Any
    ) -> None:
        """Transient trouble reaching the backend is reported as UNKNOWN (the engine keeps asking),
        not as a failure; an exception escaping a method is treated the same way. An execution that
        is running is checked, three times, through an executor whose backend cannot be reached: the
        driver must see UNKNOWN each time (the executor answered it, or raised), never a failure nor
        UNDEFINED (which the engine ends as a failure)."""
        unreachable, made_here = await resolve_executor(contract_unreachable)
        try:
            async with contract.deadline("check while the backend is unreachable"):
                ctx = contract.context("unreachable-check")
                template = contract.tasks.sleep(600)
                started = await contract.start(ctx, template)
                assert started.phase in STARTED, f"the start (on the reachable backend): {started}"
                policy = dataclasses.replace(contract.policy, unknown_limit=1000)
                driver = contract.driver(ctx, template, started=started, executor=unreachable, policy=policy)
                for attempt in range(3):
                    status = await driver.step()
                    assert status.phase is TaskPhase.UNKNOWN, f"check {attempt + 1}, unreachable: {status}"
        finally:
            if made_here:
                await unreachable.close()

    async def test_start_while_the_backend_is_unreachable_is_not_accepted(
        self, contract: ContractRun, contract_unreachable: Any
    ) -> None:
        """A start through an executor whose backend cannot be reached is not a failure either: the
        driver sees UNKNOWN (or NOT_READY) and keeps the start unaccepted, to ask again later."""
        unreachable, made_here = await resolve_executor(contract_unreachable)
        try:
            async with contract.deadline("start while the backend is unreachable"):
                ctx = contract.context("unreachable-start")
                template = contract.tasks.silent(declare_outputs=False)
                inputs = await contract.prepare(ctx, template, None)
                policy = dataclasses.replace(contract.policy, unknown_limit=1000)
                driver = contract.driver(ctx, template, inputs, executor=unreachable, policy=policy)
                status = await driver.step()
                assert status.phase in (TaskPhase.UNKNOWN, TaskPhase.NOT_READY), (
                    f"a start while unreachable: {status}"
                )
                assert not driver.accepted
        finally:
            if made_here:
                await unreachable.close()

    async def test_outputs_pb_means_succeeded_and_resolve_outputs_returns_it(
        self, contract: ContractRun
    ) -> None:
        """A task that exits 0 having written the declared outputs to ``outputs.pb`` SUCCEEDS, and
        ``resolve_outputs`` returns the named variables as the literals the task wrote."""
        async with contract.deadline("outputs.pb"):
            ctx = contract.context("outputs")
            final, ctx = await contract.run(ctx, contract.tasks.double(), int_inputs(x=21))
            assert final.phase is TaskPhase.SUCCEEDED, final
            outputs = await contract.executor.resolve_outputs(ctx, "y", "label")
            assert sorted(outputs) == ["label", "y"], outputs
            assert outputs["y"].scalar.primitive.integer == 42, _literal_text(outputs["y"])
            assert outputs["label"].scalar.primitive.string_value == "x=21", _literal_text(outputs["label"])

    async def test_recoverable_error_pb_with_exit_0_is_a_retryable_failure(
        self, contract: ContractRun
    ) -> None:
        """``error.pb`` decides first when the task wrote one, whatever the exit code and whether
        outputs are declared (flytekit reports a user exception by writing it and exiting 0): a
        RECOVERABLE error is a RETRYABLE_FAILURE carrying the file's code, message and origin."""
        async with contract.deadline("recoverable error.pb"):
            ctx = contract.context("recoverable-error")
            template = contract.tasks.write_error(
                code="ContractRecoverable", message="try me again", recoverable=True, exit_code=0,
                declare_outputs=True,
            )  # fmt: skip
            final, _ = await contract.run(ctx, template)
            assert final.phase is TaskPhase.RETRYABLE_FAILURE, final
            assert final.err is not None
            assert (final.err.code, final.err.message, final.err.origin) == (
                "ContractRecoverable", "try me again", ErrorOrigin.USER,
            ), final  # fmt: skip

    async def test_non_recoverable_error_pb_with_a_nonzero_exit_is_a_permanent_failure(
        self, contract: ContractRun
    ) -> None:
        """A NON_RECOVERABLE ``error.pb`` (the default kind) is a PERMANENT_FAILURE carrying the
        file's code, message and origin, also when the process exited non-zero (the file wins over
        the exit code)."""
        async with contract.deadline("non-recoverable error.pb"):
            ctx = contract.context("permanent-error")
            template = contract.tasks.write_error(
                code="ContractPermanent", message="the input was odd", recoverable=False, exit_code=3
            )
            final, _ = await contract.run(ctx, template)
            assert final.phase is TaskPhase.PERMANENT_FAILURE, final
            assert final.err is not None
            assert (final.err.code, final.err.message, final.err.origin) == (
                "ContractPermanent", "the input was odd", ErrorOrigin.USER,
            ), final  # fmt: skip

    async def test_nonzero_exit_without_error_pb_is_a_retryable_failure_naming_the_code(
        self, contract: ContractRun
    ) -> None:
        """A task that exits non-zero without writing ``error.pb`` is a RETRYABLE_FAILURE (a crash
        may be transient) whose error names the exit code."""
        async with contract.deadline("non-zero exit"):
            ctx = contract.context("exit-code")
            final, _ = await contract.run(ctx, contract.tasks.exit(37))
            assert final.phase is TaskPhase.RETRYABLE_FAILURE, final
            assert final.err is not None and "37" in f"{final.err.code} {final.err.message}", final

    async def test_declared_outputs_never_written_is_a_permanent_failure(self, contract: ContractRun) -> None:
        """A task that exits 0 but never wrote the outputs it declares is a PERMANENT_FAILURE
        ``OutputsNotFound`` (origin USER) whose message names ``outputs.pb`` and the declared
        outputs; with no outputs declared, the same task SUCCEEDS."""
        async with contract.deadline("declared outputs never written"):
            ctx = contract.context("no-outputs")
            final, _ = await contract.run(ctx, contract.tasks.silent(declare_outputs=True))
            assert final.phase is TaskPhase.PERMANENT_FAILURE, final
            assert final.err is not None and final.err.code == "OutputsNotFound", final
            assert final.err.origin is ErrorOrigin.USER, final
            assert ctx.outputs_file in final.err.message and "label, y" in final.err.message, final
            other = contract.context("no-outputs-declared")
            succeeded, _ = await contract.run(other, contract.tasks.silent(declare_outputs=False))
            assert succeeded.phase is TaskPhase.SUCCEEDED, succeeded

    async def test_error_pb_that_does_not_parse_is_a_retryable_failure_naming_it(
        self, contract: ContractRun
    ) -> None:
        """An ``error.pb`` that does not parse is a RETRYABLE_FAILURE ``CorruptErrorFile`` whose
        message names the file (the task died while writing it, most likely)."""
        async with contract.deadline("corrupt error.pb"):
            ctx = contract.context("corrupt-error")
            final, _ = await contract.run(ctx, contract.tasks.corrupt_error())
            assert final.phase is TaskPhase.RETRYABLE_FAILURE, final
            assert final.err is not None and final.err.code == "CorruptErrorFile", final
            assert ctx.error_file in final.err.message, final

    async def test_read_logs_returns_what_the_task_printed(self, contract: ContractRun) -> None:
        """``read_logs`` returns the execution's output: what the task printed to stdout and to
        stderr (a backend that keeps no logs lists this check in ``skipped_checks``). Logs that
        reach the backend a little after the end are waited for, briefly."""
        async with contract.deadline("read_logs"):
            token = uuid.uuid4().hex[:12]
            out, err = f"contract-stdout-{token}", f"contract-stderr-{token}"
            ctx = contract.context("logs")
            final, ctx = await contract.run(ctx, contract.tasks.print_both(out, err))
            assert final.phase is TaskPhase.SUCCEEDED, final
            logs: str | None = None
            for _ in range(50):
                logs = await contract.executor.read_logs(ctx)
                if logs is not None and out in logs and err in logs:
                    break
                await asyncio.sleep(0.2)
            assert logs is not None, "read_logs returned None for an execution that printed"
            assert out in logs, f"stdout missing from the logs: {logs[-2000:]!r}"
            assert err in logs, f"stderr missing from the logs: {logs[-2000:]!r}"

    async def test_read_output_gives_each_line_once_while_it_runs_and_the_rest_at_the_end(
        self, contract: ContractRun
    ) -> None:
        """``read_output`` returns a line while the execution still runs, never again from the
        cursor that followed it, and at the end (``final``) the lines printed since, a last line
        without a newline included (a backend without incremental output answers ``None``: it
        lists this check in ``skipped_checks``)."""
        async with contract.deadline("read_output"):
            token = uuid.uuid4().hex[:12]
            first, second, last = f"first-{token}", f"second-{token}", f"last-{token}"
            ctx = contract.context("output")
            release = join(ctx.data_dir, "contract-release")
            template = contract.tasks.gated_print(
                first, second, last, release, max_wait=self.contract_timeout
            )
            started = await contract.start(ctx, template)
            assert started.phase in STARTED, f"the start was not accepted: {started}"
            cursor: Mapping[str, Any] | None = None
            early: list[str] = []
            while first not in early:  # the contract's deadline bounds this
                chunk = await contract.executor.read_output(ctx, cursor)
                assert chunk is not None, "read_output returned None: list this check in skipped_checks"
                early += [text for _, text in chunk.lines()]
                cursor = chunk.cursor
                if first not in early:
                    await asyncio.sleep(0.2)
            assert early.count(first) == 1, early
            await contract.store.write_bytes(release, b"go")
            final, ctx = await contract.finish(ctx, template, started)
            assert final.phase is TaskPhase.SUCCEEDED, final
            late: list[str] = []
            for _ in range(50):  # logs may reach the backend a little after the end
                chunk = await contract.executor.read_output(ctx, cursor, final=True)
                assert chunk is not None
                late += [text for _, text in chunk.lines()]
                cursor = chunk.cursor
                if last in late:
                    break
                await asyncio.sleep(0.2)
            assert first not in late, f"a line came twice: {late}"
            assert second in late and last in late, late
            assert late.index(second) < late.index(last), late
            again = await contract.executor.read_output(ctx, cursor, final=True)
            assert again is not None and not again.pieces, again
