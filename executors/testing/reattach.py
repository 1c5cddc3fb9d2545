"""Re-attach to an execution with a fresh executor instance: the contract's "another process" check.

The contract kit runs this module in a new Python process (``python -m executors.testing.reattach``)
with one JSON request on stdin, as another triggerer would pick up a deferred task: it builds the
executor from the registry (``create_executor(executor_id, **executor_options)``), initializes it,
checks the execution once (it must still be running: the task waits for the ``release`` file),
writes ``release``, drives the execution to its end with :class:`ExecutionDriver` (never starting
it) and resolves the requested outputs. The answer is one line on stdout, after :data:`RESULT_MARK`.

:func:`reattach` is the same thing in the calling process, for an executor that declares it cannot
be shared across processes (a second, independently initialized instance).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping
from typing import Any

from flyteidl.core import literals_pb2, tasks_pb2

from executors import ExecutionDriver, PollPolicy
from executors.core.context import TaskContext
from executors.core.interface import ExecutorInitializationParameters
from executors.core.phase import TaskPhase
from executors.data.storage import DataStore
from executors.engine.registry import create_executor

RESULT_MARK = "EXECUTORS-CONTRACT-RESULT "


async def _no_inputs() -> literals_pb2.LiteralMap:
    raise AssertionError("the re-attaching executor must never start the execution again")


async def reattach(request: Mapping[str, Any]) -> dict[str, Any]:
    """Check, release, drive to the end and resolve the outputs of an execution started elsewhere.

    ``request``: ``executor_id``, ``executor_options``, ``storage_options`` (for the DataStore),
    ``task_ctx`` (``TaskContext.to_dict()`` carrying the start's status), ``template`` (hex of the
    serialized TaskTemplate), ``release`` (a file reference to write, or ""), ``outputs`` (names to
    resolve), ``policy`` (``PollPolicy.to_dict()``). Returns ``first`` and ``final``
    (``TaskStatus.to_dict()``) and ``outputs`` (name -> hex of the serialized Literal).
    """
    store = DataStore(request.get("storage_options") or None)
    executor = create_executor(str(request["executor_id"]), **dict(request.get("executor_options") or {}))
    await executor.initialize(ExecutorInitializationParameters(data_store=store))
    try:
        ctx = TaskContext.from_dict(request["task_ctx"])
        template = tasks_pb2.TaskTemplate.FromString(bytes.fromhex(str(request["template"])))
        first = await executor.check_task_status(ctx, template)
        if request.get("release"):
            await store.write_bytes(str(request["release"]), b"released by another executor instance\n")
        driver = ExecutionDriver(
            executor,
            template,
            ctx.with_status(first.phase, first.phase_version, first.state),
            inputs_loader=_no_inputs,
            policy=PollPolicy.from_dict(request["policy"]),
            accepted=True,
        )
        final = first if first.phase.is_final_for_execution() else await driver.run()
        outputs: dict[str, str] = {}
        names = [str(n) for n in request.get("outputs") or ()]
        if final.phase is TaskPhase.SUCCEEDED and names:
            resolved = await executor.resolve_outputs(driver.ctx, *names)
            outputs = {name: literal.SerializeToString().hex() for name, literal in resolved.items()}
        return {"first": first.to_dict(), "final": final.to_dict(), "outputs": outputs}
    finally:
        await executor.close()


def main() -> None:
    request = json.loads(sys.stdin.read())
    result = asyncio.run(reattach(request))
    sys.stdout.write(RESULT_MARK + json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
