"""ExecutorOperator: the phase table, outputs, bad input, and both waiting modes.

Two levels:

* ``execute`` / ``execute_complete`` called directly with a minimal context (a task instance that
  records XCom pushes), real executors underneath: exact exceptions and messages, fast.
* ``dag.test()`` of the DAG files in ``tests/airflow_provider/dags/`` (a second DAG bundle, see
  ``dagtest.py``): the real task runner, the inline trigger, Airflow's retry handling, XComs in the
  metadata DB. One run per DAG serves many tests (module-scoped fixtures).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred
from flyteidl.core import tasks_pb2
from google.protobuf.message import DecodeError

from airflow_provider import config
from airflow_provider.execution import ExecutionHandle
from airflow_provider.identity import execution_folder
from airflow_provider.links import RUN_URL_XCOM_KEY
from airflow_provider.operators import ExecutorOperator, run_sync
from airflow_provider.triggers import ExecutorTrigger
from executors import Cache, File, TaskPhase, TaskStatus
from executors.data.task_template import build_task_template, template_to_dict
from executors.engine.registry import default_registry
from harness.fake_ti import FakeTI
from tests.airflow_provider import dagtest
from tests.airflow_provider.dagtest import DagTestRun
from tests.airflow_provider.scripted import SCRIPTED_ID, ScriptedExecutor, recorded_calls_in
from tests.airflow_provider.ui import folder_of_view_link

default_registry.register(ScriptedExecutor, source="tests/airflow_provider/test_operators.py")

SHOUT = """
import sys
from executors import task_io
inputs = task_io.read_inputs(sys.argv[1], sys.argv[3])
task_io.write_outputs(
    sys.argv[2], {"y": 2 * inputs["x"], "shout": [w.upper() for w in inputs["words"]]}, sys.argv[3]
)
"""
ARGS = ["{{.input}}", "{{.outputPrefix}}", "{{.taskTemplatePath}}"]


def context_for(op: ExecutorOperator, **ti_fields: Any) -> dict[str, Any]:
    return {"ti": FakeTI(task_id=op.task_id, **ti_fields), "task": op}


def shout_operator(tmp_path: Path, **kwargs: Any) -> ExecutorOperator:
    return ExecutorOperator(
        task_id=kwargs.pop("task_id", "shout"),
        command=["python", "-c", SHOUT, *ARGS],
        input_types={"x": int, "words": list[str]},
        output_types={"y": int, "shout": list[str]},
        inputs={"x": 21, "words": ["a", "b"]},
        data_dir=str(tmp_path / "data"),
        poll_interval=0.1,
        **kwargs,
    )


def scripted_operator(tmp_path: Path, script: dict[str, list[str]], **kwargs: Any) -> ExecutorOperator:
    return ExecutorOperator(
        task_id=kwargs.pop("task_id", "scripted"),
        executor_id=SCRIPTED_ID,
        command=["never-run"],
        executor_options={"script": script},
        data_dir=str(tmp_path / "data"),
        poll_interval=0.01,
        deferrable=False,
        **kwargs,
    )


def nothing_written(tmp_path: Path) -> bool:
    return not (tmp_path / "data").exists() or not any((tmp_path / "data").rglob("*"))


# -- construction --------------------------------------------------------------------------------


def test_executor_kwarg_with_one_of_our_ids_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"executor_id='local'"):
        ExecutorOperator(task_id="t", command=["true"], executor="local")


def test_exactly_one_of_command_and_task_template() -> None:
    with pytest.raises(ValueError, match="exactly one of task_template= or command="):
        ExecutorOperator(task_id="t")
    with pytest.raises(ValueError, match="exactly one of task_template= or command="):
        ExecutorOperator(task_id="t", command=["true"], task_template={"type": "container"})


# -- execute() with a minimal context -----------------------------------------------------------


def test_non_deferrable_runs_to_success_in_the_worker(tmp_path: Path) -> None:
    op = shout_operator(tmp_path, deferrable=False)
    context = context_for(op)

    result = op.execute(context)  # type: ignore[arg-type]

    assert result == {"y": 42, "shout": ["A", "B"]}
    assert op.multiple_outputs  # Airflow pushes each output as its own XCom from the return value
    xcoms = context["ti"].xcoms
    folder = execution_folder(
        str(tmp_path / "data"), dag_id="unit_dag", run_id="manual__unit", task_id="shout", map_index=-1,
        try_number=1,
    )  # fmt: skip
    assert folder_of_view_link(xcoms[RUN_URL_XCOM_KEY], str(tmp_path / "data")) == folder  # its view
    assert Path(folder, "outputs", "outputs.pb").exists() and Path(folder, "task.pb").exists()


def test_the_start_line_names_executor_execution_folder_and_command(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    op = shout_operator(tmp_path, deferrable=False)
    op.execute(context_for(op))  # type: ignore[arg-type]
    out = capfd.readouterr()
    text = out.out + out.err  # the task logger (structlog) writes there
    lines = [chunk.split(" [airflow.task")[0] for chunk in text.split("[info     ] ")[1:]]
    lines = [line for line in lines if line.startswith("submitted: ")]
    folder = execution_folder(
        str(tmp_path / "data"), dag_id="unit_dag", run_id="manual__unit", task_id="shout", map_index=-1,
        try_number=1,
    )  # fmt: skip
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("submitted: local execution ") and f" in {folder}: python -c " in line
    assert line.endswith(" '{{.input}}' '{{.outputPrefix}}' '{{.taskTemplatePath}}'"), line


def test_a_worker_copies_the_output_into_the_task_log_while_the_task_runs(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """deferrable=False: the worker's driver copies each new line as it comes ([stdout] / [stderr]),
    the last one at the end, and nothing is dumped again after."""
    monkeypatch.setenv("AIRFLOW__PROVIDER_EXECUTORS__OUTPUT_INTERVAL", "0.2")
    script = (
        "import sys, time\nprint('early line', flush=True)\nprint('to stderr', file=sys.stderr, flush=True)\n"
        "time.sleep(1.5)\nprint('late line')\n"
    )
    op = ExecutorOperator(
        task_id="chatty", command=["python", "-c", script], data_dir=str(tmp_path / "data"),
        poll_interval=0.1, deferrable=False,
    )  # fmt: skip
    op.execute(context_for(op))  # type: ignore[arg-type]
    out = capfd.readouterr()
    text = out.out + out.err  # the task logger (structlog) writes there
    records = [chunk.split(" [airflow.task")[0].strip() for chunk in text.split("[info     ] ")[1:]]
    assert "[stdout] early line" in records and "[stderr] to stderr" in records, records
    assert "[stdout] late line" in records
    # Copied while it ran: before the log line of its end.
    ended = next(i for i, r in enumerate(records) if " is SUCCEEDED" in r)
    assert records.index("[stdout] early line") < ended < records.index("[stdout] late line"), records
    assert not any(r.startswith("output of ") for r in records), "the output was dumped again"


def test_deferrable_defers_then_completes_from_the_trigger_event(tmp_path: Path) -> None:
    op = shout_operator(tmp_path, deferrable=True, timeout=dt.timedelta(minutes=10))
    context = context_for(op)

    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)  # type: ignore[arg-type]

    assert deferred.value.method_name == "execute_complete"
    trigger = deferred.value.trigger
    assert isinstance(trigger, ExecutorTrigger)
    backstop = deferred.value.timeout
    assert isinstance(backstop, dt.timedelta)
    assert dt.timedelta(minutes=14) < backstop <= dt.timedelta(minutes=15)  # timeout + 5 min backstop
    _, kwargs = trigger.serialize()
    handle = ExecutionHandle.from_dict(json.loads(json.dumps(kwargs))["handle"])
    assert handle.driver.accepted is True  # started in the worker, the trigger only watches
    assert handle.task_ctx.phase in (TaskPhase.RUNNING, TaskPhase.QUEUED)

    async def first_event() -> dict[str, Any]:
        async for event in ExecutorTrigger(**kwargs).run():
            return event.payload  # type: ignore[no-any-return]
        raise AssertionError("no event")

    payload = asyncio.run(first_event())
    result = op.execute_complete(context, event=json.loads(json.dumps(payload)))  # type: ignore[arg-type]

    assert result == {"y": 42, "shout": ["A", "B"]}


def test_execute_complete_without_a_status_event_fails(tmp_path: Path) -> None:
    op = shout_operator(tmp_path)
    with pytest.raises(AirflowException, match="without a status event"):
        op.execute_complete(context_for(op), event=None)  # type: ignore[arg-type]


def _slow_operator(tmp_path: Path, **kwargs: Any) -> tuple[ExecutorOperator, Path]:
    script = "import os, sys, time\nopen(sys.argv[1], 'w').write(str(os.getpid()))\ntime.sleep(60)"
    pid_file = tmp_path / "pid"
    op = ExecutorOperator(
        task_id="slow",
        command=["python", "-c", script, str(pid_file)],
        data_dir=str(tmp_path / "data"),
        poll_interval=0.1,
        **kwargs,
    )
    return op, pid_file


def _gone(pid_file: Path) -> bool:
    pid = int(pid_file.read_text())
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_worker_timeout_kills_the_execution(tmp_path: Path) -> None:
    op, pid_file = _slow_operator(tmp_path, deferrable=False, timeout=1.5)
    with pytest.raises(AirflowException, match="did not finish before") as raised:
        op.execute(context_for(op))  # type: ignore[arg-type]
    assert not isinstance(raised.value, AirflowFailException)  # a timeout is retryable
    assert _gone(pid_file)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"inputs": {"x": "not a number"}}, AirflowFailException, "x"),
        ({"inputs": {"x": 1}, "command": ["sh", "-c", "exit 3"]}, AirflowException, "ExitCode3"),
    ],
    ids=["refused-input", "failed-execution"],
)
def test_a_failure_the_message_explains_is_raised_without_a_traceback_through_the_provider(
    tmp_path: Path, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    arguments = {"task_id": "fails", "command": ["true"], "input_types": {"x": int}, **kwargs}
    op = ExecutorOperator(data_dir=str(tmp_path / "data"), poll_interval=0.1, deferrable=False, **arguments)
    with pytest.raises(error, match=message) as raised:
        op.execute(context_for(op))  # type: ignore[arg-type]
    frames = [frame.filename for frame in traceback.extract_tb(raised.value.__traceback__)]
    noise = [
        f for f in frames if any(part in f for part in ("asyncio", "executor_pool", "start.py", "publishing"))
    ]
    assert noise == [], f"the task log would print a traceback through {noise}"
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_execution_timeout_holds_across_the_deferral(tmp_path: Path) -> None:
    # Airflow applies execution_timeout only while a worker runs execute(); a deferred try would
    # wait forever. The trigger kills the execution at the try's deadline and the try fails.
    op, pid_file = _slow_operator(tmp_path, deferrable=True, execution_timeout=dt.timedelta(seconds=2))
    assert op._time_limit() == 2.0
    context = context_for(op, start_date=dt.datetime.now(dt.UTC))
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)  # type: ignore[arg-type]
    event = asyncio.run(asyncio.wait_for(_first(deferred.value.trigger.run()), 30))
    assert TaskStatus.from_dict(event.payload["status"]).err.code == "Timeout"  # type: ignore[union-attr]
    with pytest.raises(AirflowException, match="did not finish before") as raised:
        op.execute_complete(context, event.payload)  # type: ignore[arg-type]
    assert not isinstance(raised.value, AirflowFailException)  # retried, as Airflow's own timeout is
    assert _gone(pid_file)


def test_the_time_limit_counts_from_the_trys_start_and_the_shorter_limit_wins(tmp_path: Path) -> None:
    # A try that Airflow started 10 minutes ago with a 5 minute limit is over before it starts
    # (a triggerer restart must not give a try a new deadline).
    op = shout_operator(tmp_path, deferrable=False, timeout=3600, execution_timeout=dt.timedelta(minutes=5))
    assert op._time_limit() == 300.0
    started = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    with pytest.raises(AirflowException, match="did not finish before"):
        op.execute(context_for(op, start_date=started))  # type: ignore[arg-type]
    assert ExecutorOperator(task_id="t", command=["true"], timeout=30)._time_limit() == 30.0
    assert ExecutorOperator(task_id="u", command=["true"])._time_limit() is None


async def _first(events: Any) -> Any:
    async for event in events:
        return event
    raise AssertionError("the trigger ended without an event")


@pytest.mark.parametrize(
    ("script", "error", "fragments"),
    [
        (
            {"*": ["RUNNING", "RETRYABLE_FAILURE"]},
            AirflowException,
            ["failed (retryable)", "ScriptedFlake", "the scripted backend flaked"],
        ),
        (
            {"*": ["RUNNING", "PERMANENT_FAILURE"]},
            AirflowFailException,
            ["failed permanently (no retry)", "ScriptedBroken"],
        ),
        ({"*": ["RUNNING", "UNKNOWN"]}, AirflowException, ["StatusUnknown", "3 times in a row", "503"]),
        ({"*": ["UNKNOWN"]}, AirflowException, ["StatusUnknown"]),
        ({"*": ["RUNNING", "UNDEFINED"]}, AirflowException, ["UndefinedPhase", f"executor {SCRIPTED_ID!r}"]),
    ],
    ids=["retryable", "permanent", "unknown-streak", "unknown-at-start", "undefined"],
)
def test_phase_table_in_the_worker(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    script: dict[str, list[str]],
    error: type[Exception],
    fragments: list[str],
) -> None:
    monkeypatch.setenv("AIRFLOW__PROVIDER_EXECUTORS__UNKNOWN_LIMIT", "3")
    op = scripted_operator(tmp_path, script)
    with pytest.raises(error) as raised:
        op.execute(context_for(op))  # type: ignore[arg-type]
    if error is AirflowException:
        assert not isinstance(raised.value, AirflowFailException)
    for fragment in fragments:
        assert fragment in str(raised.value)


@pytest.mark.parametrize(
    ("kwargs", "fragments"),
    [
        (
            {"input_types": {"count": int}, "inputs": {"count": "seven"}},
            ["input 'count'", "expected integer", "'seven'"],
        ),
        ({"input_types": {"count": int, "label": str}, "inputs": {"count": 7}}, ["missing input 'label'"]),
        (
            {"input_types": {"count": int}, "inputs": {"count": 7, "colour": "red"}},
            ["unknown input 'colour'"],
        ),
        (
            {"executor_id": "no-such-executor"},
            ["unknown executor id 'no-such-executor'", "known executors:", "'local'"],
        ),
        ({"requests": {"gpus": 1}}, ["bad.requests: unknown resource 'gpus'", "known: cpu"]),
        (
            {"input_types": {"f": File}, "inputs": {"f": "NOWHERE"}},
            ["input 'f': nothing at", "nowhere.csv (a file, directory or dataset input must exist)"],
        ),
    ],
    ids=["wrong-type", "missing", "unknown-input", "unknown-executor", "bad-resource", "missing-file"],
)
def test_bad_input_fails_without_retry_naming_the_culprit(
    tmp_path: Path, kwargs: dict[str, Any], fragments: list[str]
) -> None:
    if kwargs.get("inputs", {}).get("f") == "NOWHERE":
        kwargs = {**kwargs, "inputs": {"f": str(tmp_path / "nowhere.csv")}}
    op = ExecutorOperator(
        task_id="bad", command=["python", "-c", "pass"], data_dir=str(tmp_path / "data"), **kwargs
    )
    context = context_for(op)
    with pytest.raises(AirflowFailException) as raised:
        op.execute(context)  # type: ignore[arg-type]
    message = str(raised.value)
    assert message.startswith("bad: ")
    for fragment in fragments:
        assert fragment in message
    assert context["ti"].xcoms == {RUN_URL_XCOM_KEY: ""}  # the link has a value, nothing started
    assert nothing_written(tmp_path)


def write_truncated_template(path: Path) -> None:
    template = build_task_template(["python", "-c", "print('hello')"], name="x.y", inputs={"a": int})
    data = template.SerializeToString()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DecodeError):  # make sure it really is unparseable
        tasks_pb2.TaskTemplate.FromString(path.read_bytes())


@pytest.mark.parametrize("kind", ["missing", "truncated", "missing-json"])
def test_bad_template_file_fails_without_retry_naming_the_file(tmp_path: Path, kind: str) -> None:
    name = {"missing": "nope.pb", "truncated": "cut.pb", "missing-json": "t.json"}[kind]
    path = tmp_path / "templates" / name
    if kind == "truncated":
        write_truncated_template(path)
    op = ExecutorOperator(task_id="bad", task_template=str(path), data_dir=str(tmp_path / "data"))
    with pytest.raises(AirflowFailException) as raised:
        op.execute(context_for(op))  # type: ignore[arg-type]
    message = str(raised.value)
    assert str(path) in message
    assert ("truncated" if kind == "truncated" else "not found") in message
    assert nothing_written(tmp_path)


def test_task_template_from_a_file(tmp_path: Path) -> None:
    template = build_task_template(
        ["python", "-c", SHOUT, *ARGS],
        name="from.file",
        inputs={"x": int, "words": list[str]},
        outputs={"y": int, "shout": list[str]},
    )
    path = tmp_path / "shout.pb"
    path.write_bytes(template.SerializeToString())
    op = ExecutorOperator(
        task_id="from_file",
        task_template=str(path),
        inputs={"x": 1, "words": ["q"]},
        data_dir=str(tmp_path / "data"),
        poll_interval=0.1,
        deferrable=False,
    )
    assert op.execute(context_for(op)) == {"y": 2, "shout": ["Q"]}  # type: ignore[arg-type]


def test_task_without_outputs_succeeds(tmp_path: Path) -> None:
    op = ExecutorOperator(
        task_id="no_outputs",
        command=["python", "-c", "print('side effects only')"],
        data_dir=str(tmp_path / "data"),
        poll_interval=0.1,
        deferrable=False,
    )
    assert op.execute(context_for(op)) == {}  # type: ignore[arg-type]


# -- dag.test() ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def phases(test_dags: Path) -> Iterator[tuple[DagTestRun, list[str]]]:
    """One ``dag.test()`` of provider_test_phases; also which tasks deferred."""
    deferred: list[str] = []
    real_defer = ExecutorOperator.defer

    def spy(self: ExecutorOperator, **kwargs: Any) -> Any:
        deferred.append(self.task_id)
        return real_defer(self, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW__PROVIDER_EXECUTORS__UNKNOWN_LIMIT", "3")
        mp.setattr(ExecutorOperator, "defer", spy)
        module = dagtest.load_dag_module(test_dags / "provider_test_phases.py")
        yield dagtest.run_dag_test(module.dag), deferred


@pytest.fixture(scope="module")
def bad_inputs(test_dags: Path) -> DagTestRun:
    module = dagtest.load_dag_module(test_dags / "provider_test_bad_inputs.py")
    write_truncated_template(Path(module.TRUNCATED_TEMPLATE))
    assert not os.path.exists(module.MISSING_TEMPLATE)
    return dagtest.run_dag_test(module.dag)


def test_dag_succeeded_publishes_each_output_and_the_whole_dict(phases: tuple[DagTestRun, list[str]]) -> None:
    run, deferred = phases
    assert run.task("succeeded") == dagtest.TaskResult("success", 1)
    outputs = {"y": 42, "shout": ["A", "PROVIDER_TEST_PHASES"]}  # inputs were Jinja-rendered
    assert run.xcom("succeeded") == outputs
    assert run.xcom("succeeded", "y") == 42
    assert run.xcom("succeeded", "shout") == ["A", "PROVIDER_TEST_PHASES"]
    assert run.xcom("succeeded", RUN_URL_XCOM_KEY).startswith("/executors/ti/provider_test_phases/succeeded/")
    assert "succeeded" in deferred
    assert run.callbacks_of("succeeded") == []


def test_dag_non_deferrable_succeeds_in_the_worker(phases: tuple[DagTestRun, list[str]]) -> None:
    run, deferred = phases
    assert run.task("in_worker") == dagtest.TaskResult("success", 1)
    assert run.xcom("in_worker") == {"y": 42, "shout": ["A", "PROVIDER_TEST_PHASES"]}
    assert "in_worker" not in deferred


def test_dag_retryable_failure_is_retried(phases: tuple[DagTestRun, list[str]]) -> None:
    run, _ = phases
    assert run.task("retryable") == dagtest.TaskResult("success", 2)
    [retry] = run.callbacks_of("retryable")
    assert (retry.kind, retry.try_number) == ("retry", 1)
    assert isinstance(retry.exception, AirflowException)
    assert not isinstance(retry.exception, AirflowFailException)
    assert "ScriptedFlake" in str(retry.exception) and "(retryable)" in str(retry.exception)


def test_dag_permanent_failure_is_not_retried(phases: tuple[DagTestRun, list[str]], test_dags: Path) -> None:
    run, deferred = phases
    assert run.task("permanent") == dagtest.TaskResult("failed", 1)  # despite retries=2
    [failure] = run.callbacks_of("permanent")
    assert (failure.kind, failure.try_number) == ("failure", 1)
    assert isinstance(failure.exception, AirflowFailException)
    assert "ScriptedBroken" in str(failure.exception) and "permanently" in str(failure.exception)
    # The worker started it, the trigger took over and only checked: one script, two processes.
    assert "permanent" in deferred
    folder = execution_folder(
        config.data_dir(), dag_id=run.dag_id, run_id=run.run_id, task_id="permanent", map_index=-1,
        try_number=1,
    )  # fmt: skip
    assert recorded_calls_in(folder) == ["start", "check"]


def test_dag_unknown_streak_is_a_retryable_failure(phases: tuple[DagTestRun, list[str]]) -> None:
    run, _ = phases
    assert run.task("unknown") == dagtest.TaskResult("success", 2)
    [retry] = run.callbacks_of("unknown")
    assert (retry.kind, retry.try_number) == ("retry", 1)
    assert "StatusUnknown" in str(retry.exception) and "3 times in a row" in str(retry.exception)


def test_dag_undefined_phase_is_a_retryable_failure_naming_the_executor(
    phases: tuple[DagTestRun, list[str]],
) -> None:
    run, _ = phases
    assert run.task("undefined") == dagtest.TaskResult("success", 2)
    [retry] = run.callbacks_of("undefined")
    assert (retry.kind, retry.try_number) == ("retry", 1)
    assert f"executor {SCRIPTED_ID!r} reported an undefined phase" in str(retry.exception)
    assert "banana" in str(retry.exception)


BAD_INPUT_FRAGMENTS = {
    "wrong_type": ["input 'count'", "expected integer", "'seven'"],
    "missing_input": ["missing input 'label'"],
    "unknown_input": ["unknown input 'colour'"],
    "unknown_executor": ["unknown executor id 'no-such-executor'", "known executors:", "'local'"],
    "missing_template": ["does-not-exist.pb", "not found"],
    "truncated_template": ["truncated.pb", "truncated"],
    "missing_dataset": ["input 'frames'[1]: nothing at /nonexistent/frames/second", "must exist"],
}


@pytest.mark.parametrize("task_id", sorted(BAD_INPUT_FRAGMENTS))
def test_dag_bad_input_fails_at_once_naming_the_culprit(bad_inputs: DagTestRun, task_id: str) -> None:
    assert bad_inputs.task(task_id) == dagtest.TaskResult("failed", 1)  # retries=2 not used
    [failure] = bad_inputs.callbacks_of(task_id)
    assert failure.kind == "failure"
    assert isinstance(failure.exception, AirflowFailException)
    message = str(failure.exception)
    assert message.startswith(f"{task_id}: ")
    for fragment in BAD_INPUT_FRAGMENTS[task_id]:
        assert fragment in message, message
    assert bad_inputs.xcom(task_id, RUN_URL_XCOM_KEY) == ""


def test_dag_bad_inputs_run_failed(bad_inputs: DagTestRun) -> None:
    assert bad_inputs.state == "failed"
    assert len(bad_inputs.tasks) == len(BAD_INPUT_FRAGMENTS)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("poll_interval", 0),
        ("poll_interval", -1.5),
        ("poll_interval", float("nan")),
        ("timeout", 0),
        ("timeout", dt.timedelta(0)),
        ("timeout", float("inf")),
        ("timeout", "10"),
    ],
)
def test_time_options_must_be_positive_seconds(option: str, value: Any) -> None:
    # poll_interval=0 used to busy-poll a core; timeout=0 silently meant "no timeout".
    with pytest.raises(ValueError, match=rf"t: {option} must be a positive number of seconds.*got"):
        ExecutorOperator(task_id="t", command=["true"], **{option: value})


def test_time_options_accept_timedelta_and_none() -> None:
    op = ExecutorOperator(task_id="t", command=["true"], timeout=dt.timedelta(minutes=2), poll_interval=None)
    assert op.timeout == 120.0 and op.poll_interval is None


def test_cache_is_one_object_and_the_old_keywords_name_it() -> None:
    op = ExecutorOperator(
        task_id="t", command=["true"], input_types={"x": int, "note": str},
        cache=Cache(version="7", serialize=True, ignored_inputs=("note",)),
    )  # fmt: skip
    meta = op.task_template.value["metadata"]
    assert (meta["discoverable"], meta["discovery_version"], meta["cache_serializable"]) == (True, "7", True)
    assert meta["cache_ignore_input_vars"] == ["note"]
    with pytest.raises(TypeError, match=r"cache_version= is now cache=Cache\(version=...\)"):
        ExecutorOperator(task_id="u", command=["true"], cache=True, cache_version="1")


def flyte_template(retries: int = 0, timeout_s: int = 0) -> tasks_pb2.TaskTemplate:
    template = build_task_template(["true"], name="t")
    template.metadata.retries.retries = retries
    if timeout_s:
        template.metadata.timeout.FromSeconds(timeout_s)
    return template


@pytest.mark.parametrize("form", ["object", "dict", "pb_file", "json_file"])
def test_template_retries_and_timeout_are_the_defaults(tmp_path: Path, form: str) -> None:
    # On Flyte a task's own metadata says how often it is retried and when it times out: a
    # FlyteRecoverableException must be retried without the DAG author repeating it.
    template = flyte_template(retries=3, timeout_s=90)
    source: Any = template
    if form == "dict":
        source = json.loads(json.dumps(template_to_dict(template)))
    elif form == "pb_file":
        source = tmp_path / "task.pb"
        source.write_bytes(template.SerializeToString())
    elif form == "json_file":
        from google.protobuf import json_format

        source = str(tmp_path / "task.json")
        Path(source).write_text(json_format.MessageToJson(template))
    op = ExecutorOperator(task_id="t", task_template=source)
    assert op.retries == 3
    assert op.timeout == 90.0


def test_the_dag_wins_over_the_template_metadata() -> None:
    template = flyte_template(retries=3, timeout_s=90)
    op = ExecutorOperator(task_id="t", task_template=template, retries=0, timeout=5)
    assert (op.retries, op.timeout) == (0, 5.0)
    from_defaults = ExecutorOperator(task_id="u", task_template=template, default_args={"retries": 1})
    assert from_defaults.retries == 1


def test_a_template_that_cannot_be_read_at_parse_time_changes_nothing(tmp_path: Path) -> None:
    op = ExecutorOperator(task_id="t", task_template=str(tmp_path / "missing.pb"))
    assert op.retries == ExecutorOperator(task_id="u", command=["true"]).retries
    assert op.timeout is None


def test_run_sync_keeps_one_loop_per_thread_between_calls() -> None:
    # A loop per call cost as much as the operator's own work (execute() 5.2 -> 3.6 ms p50).
    async def loop_id() -> int:
        return id(asyncio.get_running_loop())

    async def failing() -> None:
        raise ValueError("the coroutine's own error")

    first = run_sync(loop_id())
    assert run_sync(loop_id()) == first
    with pytest.raises(ValueError, match="own error"):
        run_sync(failing())
    assert run_sync(loop_id()) == first  # an error does not cost the loop

    async def nested() -> int:  # called where a loop already runs: a thread and a loop of its own
        return run_sync(loop_id())

    assert asyncio.run(nested()) != first
