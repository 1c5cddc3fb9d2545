"""A task that cleans its output folder before writing (``rm -rf "$OUT"; mkdir -p "$OUT"`` with
``OUT={{.outputPrefix}}``, common in real scripts) must not destroy its own execution.

``{{.outputPrefix}}`` is a folder of its own inside the execution folder (``outputs/``, as on Flyte
a per-attempt folder that holds only ``outputs.pb`` / ``error.pb``), so the clean leaves
``task.pb``, ``inputs.pb``, ``events/`` and ``logs/`` alone. When the output prefix was the
execution folder itself, the clean deleted them: the task's own read of ``inputs.pb`` failed, and a
trigger resuming the deferred task could not read ``task.pb`` ("cannot resume ... task.pb: not
found"), a retryable failure on every try.

REAL local executions through the provider operator path (``ExecutorOperator.execute`` with a
:class:`FakeTI`), in the worker and deferred (the trigger run to its event, then
``execute_complete``).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_provider.identity import execution_folder
from airflow_provider.operators import ExecutorOperator
from airflow_provider.triggers import ExecutorTrigger
from executors import TaskPhase, TaskStatus
from tests.reliability_units.support import context_for

# Optionally wait for GO (so the test can look at the folder first), clean the output prefix,
# say so in CLEANED, then run the rest of the arguments: the Python task below.
CLEAN_THEN_RUN = r"""
OUT="$1"; GO="$2"; CLEANED="$3"; shift 3
if [ -n "$GO" ]; then
    i=0
    while [ ! -e "$GO" ] && [ "$i" -lt 1500 ]; do sleep 0.02; i=$((i + 1)); done
fi
rm -rf "$OUT"
mkdir -p "$OUT"
: > "$CLEANED"
exec "$@"
"""

DOUBLE_X = """
import sys
from executors import task_io
inputs = task_io.read_inputs(sys.argv[1], sys.argv[3])
task_io.write_outputs(sys.argv[2], {"y": 2 * inputs["x"]}, sys.argv[3])
print("doubled", inputs["x"])
"""

TIMEOUT = 60.0


def cleaning_op(tmp: Path, *, deferrable: bool, go: str = "") -> ExecutorOperator:
    command = [
        "sh", "-c", CLEAN_THEN_RUN, "clean-then-run", "{{.outputPrefix}}", go, str(tmp / "cleaned"),
        sys.executable, "-c", DOUBLE_X, "{{.input}}", "{{.outputPrefix}}", "{{.taskTemplatePath}}",
    ]  # fmt: skip
    return ExecutorOperator(
        task_id="cleaner",
        command=command,
        input_types={"x": int},
        output_types={"y": int},
        inputs={"x": 21},
        data_dir=str(tmp / "data"),
        deferrable=deferrable,
        poll_interval=0.05,
        executor_options={"state_root": str(tmp / "local-state"), "kill_grace_period": 1},
    )


def folder_of(tmp: Path) -> Path:
    folder = execution_folder(
        str(tmp / "data"), dag_id="unit_dag", run_id="manual__unit", task_id="cleaner", map_index=-1,
        try_number=1,
    )  # fmt: skip
    return Path(folder)


def snapshot(folder: Path) -> set[str]:
    """The execution's own files: everything in its folder but the output prefix (and work/)."""
    return {
        str(path.relative_to(folder))
        for path in folder.rglob("*")
        if path.is_file() and path.relative_to(folder).parts[0] not in ("outputs", "work")
    }


def assert_the_execution_survived(folder: Path, before: set[str]) -> None:
    assert (folder / "task.pb").is_file() and (folder / "inputs.pb").is_file()
    assert (folder / "logs" / "stdout.log").is_file()
    events = sorted(p.name for p in (folder / "events").iterdir())
    assert len(events) >= 2, events  # the start's and the success's
    missing = before - snapshot(folder)
    assert not missing, f"the task's clean deleted {sorted(missing)}"
    # The output prefix holds only what the task wrote there.
    assert sorted(p.name for p in (folder / "outputs").iterdir()) == ["outputs.pb"]


def test_a_task_that_cleans_its_output_prefix_succeeds_in_the_worker(tmp_path: Path) -> None:
    op = cleaning_op(tmp_path, deferrable=False)
    context = context_for(op)

    assert op.execute(context) == {"y": 42}  # type: ignore[arg-type]  # first try, no exception

    assert (tmp_path / "cleaned").exists(), "the task did clean its output prefix"
    folder = folder_of(tmp_path)
    assert_the_execution_survived(folder, {"task.pb", "inputs.pb"})
    assert "doubled 21" in (folder / "logs" / "stdout.log").read_text()


def test_a_deferred_task_that_cleans_its_output_prefix_is_resumed_by_its_trigger(tmp_path: Path) -> None:
    go = tmp_path / "go"
    op = cleaning_op(tmp_path, deferrable=True, go=str(go))
    context = context_for(op)

    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)  # type: ignore[arg-type]
    folder = folder_of(tmp_path)
    before = snapshot(folder)  # the task waits for GO: nothing is cleaned yet
    assert {"task.pb", "inputs.pb"} <= before and any(name.startswith("events/") for name in before), before

    go.touch()
    deadline = time.monotonic() + TIMEOUT
    while not (tmp_path / "cleaned").exists():
        assert time.monotonic() < deadline, "the task never cleaned its output prefix"
        time.sleep(0.02)

    # The trigger starts after the clean: it reads task.pb, watches the execution to its end.
    _, kwargs = deferred.value.trigger.serialize()

    async def first_event() -> dict[str, Any]:
        async for event in ExecutorTrigger(**json.loads(json.dumps(kwargs))).run():
            return event.payload  # type: ignore[no-any-return]
        raise AssertionError("no event")

    payload = asyncio.run(asyncio.wait_for(first_event(), TIMEOUT))
    status = TaskStatus.from_dict(payload["status"])
    assert status.phase is TaskPhase.SUCCEEDED, status  # not "cannot resume ... task.pb: not found"
    result = op.execute_complete(context, event=json.loads(json.dumps(payload)))  # type: ignore[arg-type]

    assert result == {"y": 42}
    assert_the_execution_survived(folder, before)
