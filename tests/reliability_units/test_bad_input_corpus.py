"""A table-driven corpus of bad input, at the operator and at the executor level.

Every row of :data:`CASES` says what goes wrong, at which level, and the exact failure class:

* operator level (``ExecutorOperator.execute()`` with a minimal context, the REAL local executor
  underneath, ``deferrable=False`` so everything happens in the call): ``AirflowFailException``
  (failed, no retry), ``AirflowException`` (retried), another exception class (Airflow retries
  it too), or ``success`` (hostile names that must simply work);
* executor level (``executors.backends.local.LocalExecutor`` and ``executors.ExecutionDriver`` directly):
  the final phase (``PERMANENT_FAILURE``, ``RETRYABLE_FAILURE``, ``UNDEFINED``, ``SUCCEEDED``),
  ``SUCCEEDED->Error`` when the execution succeeds but ``resolve_outputs`` raises ``Error``, or the
  exception class a direct call raises.

Each case also names its culprits (variable, file path, executor id, placeholder) and the failure
message must contain every one of them. A row with ``bug=...`` is a product bug: the row states the
behaviour that is right, and is marked ``xfail(strict=True)``.

``test_case_does_not_affect_a_healthy_task`` runs every case again, concurrently with a healthy
real local execution on the same event loop, and checks that the healthy one succeeds (and that
the bad case still fails the same way). ``test_bad_triggers_never_block_the_loop`` runs a dozen
bad executions as ``ExecutorTrigger`` s on one loop with healthy triggers, under a loop-gap monitor.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred
from flyteidl.admin import task_pb2 as admin_task_pb2
from flyteidl.core import errors_pb2, execution_pb2, identifier_pb2, literals_pb2, tasks_pb2, types_pb2

from airflow_provider.identity import execution_folder, task_execution_identifier
from airflow_provider.links import RUN_URL_XCOM_KEY
from airflow_provider.operators import ExecutorOperator
from executors import (
    DataStore,
    ExecutionDriver,
    ExecutorInitializationParameters,
    PollPolicy,
    TaskContext,
    TaskExecutionID,
    TaskPhase,
    TaskStatus,
    create_executor,
)
from executors.backends.local import LocalExecutor
from executors.backends.local.executor import state_dirs
from executors.core.context import default_output_prefix, generated_name_for
from executors.core.errors import UnknownExecutorError
from executors.data.task_template import build_task_template, template_to_dict
from harness.loop_gaps import loop_monitor
from tests.airflow_provider.ui import folder_of_view_link
from tests.conftest import INT, make_identifier, make_template, python_template
from tests.reliability_units.support import (
    DOUBLE,
    FAULTY_ID,
    FakeTI,
    context_for,
    healthy_run,
    int_inputs,
    prepare_trigger,
    run_trigger,
)

POLICY = PollPolicy(interval=0.02, max_backoff=0.05, jitter=0.0, unknown_limit=3, call_timeout=10.0)
MAX_MESSAGE = 10_000
"""No failure message of the corpus may be longer than this (they end up in task logs and UIs)."""

TASK_IO = "import sys\nfrom executors import task_io\n"
ECHO_X = TASK_IO + (
    "i = task_io.read_inputs(sys.argv[1], sys.argv[3])\n"
    "task_io.write_outputs(sys.argv[2], {'y': 2 * i['x']}, sys.argv[3])\n"
)
IO_ARGS = ["{{.input}}", "{{.outputPrefix}}", "{{.taskTemplatePath}}"]
HUGE_STDERR = (
    "import sys\n"
    "sys.stderr.write('HEAD-MARKER\\n' + ('x' * 1023 + '\\n') * 51200 + 'TAIL-MARKER the real reason\\n')\n"
    "sys.exit(1)\n"
)  # 50 MiB on stderr, the reason on the last line
HUGE_BYTES = 50 * 1024 * 1024


def write_file(name: str, data: str) -> str:
    """A Python script that writes ``data`` (a bytes literal) to ``<argv[1]>/<name>`` and exits with
    the code ``argv[2]``."""
    return (
        "import os, sys\n"
        f"open(os.path.join(sys.argv[1], {name!r}), 'wb').write({data})\n"
        "sys.stderr.write('task wrote " + name + "\\n')\n"
        "sys.exit(int(sys.argv[2]))\n"
    )


def serialized_error(kind: int = errors_pb2.ContainerError.RECOVERABLE) -> bytes:
    doc = errors_pb2.ErrorDocument()
    doc.error.code = "Flaky"
    doc.error.message = "a long explanation " * 20
    doc.error.kind = kind  # type: ignore[assignment]
    doc.error.origin = execution_pb2.ExecutionError.USER
    return doc.SerializeToString()


def outputs_bytes(**literals: literals_pb2.Literal) -> bytes:
    return literals_pb2.LiteralMap(literals=literals).SerializeToString()


def int_literal(value: int) -> literals_pb2.Literal:
    literal = literals_pb2.Literal()
    literal.scalar.primitive.integer = value
    return literal


def float_literal(value: float) -> literals_pb2.Literal:
    literal = literals_pb2.Literal()
    literal.scalar.primitive.float_value = value
    return literal


def str_literal(value: str) -> literals_pb2.Literal:
    literal = literals_pb2.Literal()
    literal.scalar.primitive.string_value = value
    return literal


# -- the case model --------------------------------------------------------------------------------


@dataclasses.dataclass
class Env:
    tmp: Path

    @property
    def data(self) -> Path:
        return self.tmp / "data"

    @property
    def state_root(self) -> Path:
        return self.tmp / "local-state"


@dataclasses.dataclass
class Outcome:
    kind: str
    message: str
    value: Any = None
    context: dict[str, Any] | None = None


@dataclasses.dataclass
class OpRun:
    op: ExecutorOperator
    ti: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Setup:
    culprits: list[str] = dataclasses.field(default_factory=list)
    ops: list[OpRun] = dataclasses.field(default_factory=list)
    """Operator level: the runs (usually one; look-alike names use several)."""
    run: Callable[[], Awaitable[Outcome]] | None = None
    """Executor level: the coroutine function producing the outcome."""
    check: Callable[[list[Outcome]], None] | None = None


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    level: str
    expect: str
    setup: Callable[[Env], Setup]
    bug: str | None = None

    def param(self) -> Any:
        marks = [pytest.mark.xfail(strict=True, reason=f"BUG: {self.bug}")] if self.bug else []
        return pytest.param(self, id=self.id, marks=marks)


CASES: list[Case] = []
OP, EX = "operator", "executor"
FAIL, RETRY, SUCCESS = "AirflowFailException", "AirflowException", "success"


def case(case_id: str, level: str, expect: str, bug: str | None = None) -> Callable[..., Any]:
    def register(setup: Callable[[Env], Setup]) -> Callable[[Env], Setup]:
        CASES.append(Case(case_id, level, expect, setup, bug))
        return setup

    return register


# -- operator-level building blocks ---------------------------------------------------------------


def make_op(env: Env, task_id: str = "bad", **kwargs: Any) -> ExecutorOperator:
    if "task_template" not in kwargs:
        kwargs.setdefault("command", ["python", "-c", "pass"])
    options = {"state_root": str(env.state_root), **kwargs.pop("executor_options", {})}
    return ExecutorOperator(
        task_id=task_id,
        data_dir=kwargs.pop("data_dir", str(env.data)),
        deferrable=False,
        poll_interval=0.05,
        executor_options=options,
        **kwargs,
    )


def one(op: ExecutorOperator, culprits: list[str], **extra: Any) -> Setup:
    return Setup(culprits=culprits, ops=[OpRun(op)], **extra)


def folder_of(env: Env, ti: FakeTI | dict[str, Any], data: Path | None = None) -> Path:
    fields = ti if isinstance(ti, dict) else dataclasses.asdict(ti)
    return Path(
        execution_folder(
            str(data or env.data),
            dag_id=fields.get("dag_id", "unit_dag"),
            run_id=fields.get("run_id", "manual__unit"),
            task_id=fields["task_id"],
            map_index=-1,
            try_number=fields.get("try_number", 1),
        )
    )


def outcome_of_exception(exc: BaseException, context: dict[str, Any]) -> Outcome:
    if isinstance(exc, TaskDeferred):
        return Outcome("TaskDeferred", str(exc), context=context)
    if isinstance(exc, AirflowFailException):
        kind = FAIL
    elif isinstance(exc, AirflowException):
        kind = RETRY
    else:
        kind = type(exc).__name__
    return Outcome(kind, str(exc), exc, context)


def run_op_sync(run: OpRun) -> Outcome:
    context = context_for(run.op, **run.ti)
    try:
        value = run.op.execute(context)  # type: ignore[arg-type]
    except (Exception, TaskDeferred) as exc:
        return outcome_of_exception(exc, context)
    return Outcome(SUCCESS, "", value, context)


async def run_op_on_this_loop(run: OpRun) -> Outcome:
    """What ``execute()`` runs (``_execute``), but on the caller's event loop, so it shares it with
    others. Without ``executor_pool.closing``: that closes every pooled executor of the loop, which
    only makes sense on a worker's private loop."""
    context = context_for(run.op, **run.ti)
    try:
        value = await run.op._execute(context)  # type: ignore[arg-type]
    except (Exception, TaskDeferred) as exc:
        return outcome_of_exception(exc, context)
    return Outcome(SUCCESS, "", value, context)


def typed_op(env: Env, inputs: dict[str, Any], input_types: dict[str, Any]) -> ExecutorOperator:
    return make_op(env, input_types=input_types, inputs=inputs)


def template_file(env: Env, name: str, data: bytes) -> Path:
    path = env.tmp / "templates" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def valid_template() -> tasks_pb2.TaskTemplate:
    return build_task_template(["python", "-c", "pass"], name="corpus.valid", inputs={"a": int})


def nothing_started(env: Env) -> Callable[[list[Outcome]], None]:
    def check(outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            assert outcome.context is not None
            assert outcome.context["ti"].xcoms == {RUN_URL_XCOM_KEY: ""}, outcome.context["ti"].xcoms
        assert not env.data.exists() or not any(env.data.rglob("*")), "bad input must not start anything"

    return check


def nothing_started_in_local(env: Env) -> Callable[[list[Outcome]], None]:
    """The local executor launched no process (refused before launch: no pid.json anywhere)."""

    def check(outcomes: list[Outcome]) -> None:
        launched = [r for r in state_dirs(str(env.state_root)).values() if Path(r, "pid.json").exists()]
        assert not launched, f"bad input must not start a process: {launched}"

    return check


def unwritable_dir(env: Env, how: str) -> tuple[Path, Path, str]:
    """A data dir that cannot be written: ``(data dir, the culprit folder, how it was made)``.

    ``read-only``: a folder with mode 0500, unless we are privileged (root ignores the mode bits):
    then, as for ``under-file``, the data dir is put below a regular file.
    """
    if how == "read-only":
        folder = env.tmp / "read-only"
        folder.mkdir()
        folder.chmod(0o500)
        try:
            (folder / ".probe").touch()
        except PermissionError:
            return folder / "data", folder, "chmod 0500"
        (folder / ".probe").unlink()
        folder.chmod(0o700)  # privileged (root): the mode bits do not stop us
    blocker = env.tmp / "a-regular-file"
    blocker.write_text("not a folder")
    return blocker / "data", blocker, "a regular file as parent"


# -- operator level: task template files ----------------------------------------------------------


@case("op-template-pb-truncated", OP, FAIL)
def _(env: Env) -> Setup:
    data = valid_template().SerializeToString()
    path = template_file(env, "cut.pb", data[: len(data) // 2])
    return one(make_op(env, task_template=str(path)), [str(path), "truncated"], check=nothing_started(env))


@case("op-template-pb-empty-file", OP, FAIL)
def _(env: Env) -> Setup:
    path = template_file(env, "empty.pb", b"")
    return one(
        make_op(env, task_template=str(path)),
        [str(path), "does not hold a TaskTemplate"],
        check=nothing_started(env),
    )


@case(
    "op-template-pb-other-message-type",
    OP,
    FAIL,
)
def _(env: Env) -> Setup:
    spec = admin_task_pb2.TaskSpec(template=valid_template())
    path = template_file(env, "task-spec.pb", spec.SerializeToString())
    return one(make_op(env, task_template=str(path)), [str(path)], check=nothing_started(env))


@case("op-template-json-truncated", OP, FAIL)
def _(env: Env) -> Setup:
    text = json.dumps(template_to_dict(valid_template()))
    path = template_file(env, "cut.json", text[: len(text) // 2].encode())
    return one(
        make_op(env, task_template=str(path)),
        [str(path), "not a valid TaskTemplate in JSON form"],
        check=nothing_started(env),
    )


@case("op-template-json-unknown-field", OP, FAIL)
def _(env: Env) -> Setup:
    body = {**template_to_dict(valid_template()), "retries_typo": 3}
    path = template_file(env, "unknown-field.json", json.dumps(body).encode())
    return one(
        make_op(env, task_template=str(path)), [str(path), '"retries_typo"'], check=nothing_started(env)
    )


@case("op-template-json-not-an-object", OP, FAIL)
def _(env: Env) -> Setup:
    path = template_file(env, "list.json", b'[{"type": "container"}]')
    return one(make_op(env, task_template=str(path)), [str(path), "not a valid"], check=nothing_started(env))


@case("op-template-json-empty-file", OP, FAIL)
def _(env: Env) -> Setup:
    path = template_file(env, "empty.json", b"")
    return one(
        make_op(env, task_template=str(path)),
        [str(path), "does not hold a TaskTemplate"],
        check=nothing_started(env),
    )


@case("op-template-json-missing-file", OP, FAIL)
def _(env: Env) -> Setup:
    path = env.tmp / "templates" / "nowhere.json"
    return one(make_op(env, task_template=str(path)), [str(path), "not found"], check=nothing_started(env))


@case("op-template-dict-unknown-field", OP, FAIL)
def _(env: Env) -> Setup:
    body = {**template_to_dict(valid_template()), "comand": ["echo"]}
    return one(make_op(env, task_template=body), ["task_template", '"comand"'], check=nothing_started(env))


@case("op-template-without-container", OP, FAIL)
def _(env: Env) -> Setup:
    template = tasks_pb2.TaskTemplate(type="container")
    template.id.name = "corpus.no_container"
    path = template_file(env, "no-container.json", json.dumps(template_to_dict(template)).encode())
    return one(
        make_op(env, task_template=str(path)),
        ["MissingContainer", "corpus.no_container", "no container command"],
    )


# -- operator level: inputs ------------------------------------------------------------------------


@case("op-input-str-for-int", OP, FAIL)
def _(env: Env) -> Setup:
    op = typed_op(env, {"count": "seven"}, {"count": int})
    return one(op, ["bad: ", "input 'count'", "expected integer", "'seven'"], check=nothing_started(env))


@case("op-input-bool-for-int", OP, FAIL)
def _(env: Env) -> Setup:
    op = typed_op(env, {"count": True}, {"count": int})
    return one(op, ["input 'count'", "expected integer", "bool True"], check=nothing_started(env))


@case("op-input-float-for-int", OP, FAIL)
def _(env: Env) -> Setup:
    op = typed_op(env, {"count": 1.5}, {"count": int})
    return one(op, ["input 'count'", "expected integer", "float 1.5"], check=nothing_started(env))


@case("op-input-none-for-int", OP, FAIL)
def _(env: Env) -> Setup:
    op = typed_op(env, {"count": None}, {"count": int})
    return one(op, ["input 'count'", "expected integer", "NoneType None"], check=nothing_started(env))


@case("op-input-int-beyond-int64", OP, FAIL)
def _(env: Env) -> Setup:
    op = typed_op(env, {"count": 2**63}, {"count": int})
    return one(op, ["input 'count'", str(2**63)], check=nothing_started(env))


@case("op-input-str-for-list", OP, FAIL)
def _(env: Env) -> Setup:
    op = typed_op(env, {"xs": "abc"}, {"xs": list[int]})
    return one(op, ["input 'xs'", "expected list[integer]", "str 'abc'"], check=nothing_started(env))


@case("op-input-wrong-list-element", OP, FAIL)
def _(env: Env) -> Setup:
    op = typed_op(env, {"xs": [1, 2, "three"]}, {"xs": list[int]})
    return one(op, ["input 'xs'[2]", "expected integer", "'three'"], check=nothing_started(env))


@case("op-input-wrong-nested-element", OP, FAIL)
def _(env: Env) -> Setup:
    op = typed_op(env, {"xss": [[1], [2, False]]}, {"xss": list[list[int]]})
    return one(op, ["input 'xss'[1][1]", "expected integer", "bool False"], check=nothing_started(env))


@case("op-input-wrong-map-value", OP, FAIL)
def _(env: Env) -> Setup:
    op = typed_op(env, {"m": {"a": 1.0, "b": "x"}}, {"m": dict[str, float]})
    return one(op, ["input 'm'['b']", "expected float", "str 'x'"], check=nothing_started(env))


@case("op-input-bad-datetime-string", OP, FAIL)
def _(env: Env) -> Setup:
    import datetime

    op = typed_op(env, {"when": "yesterday-ish"}, {"when": datetime.datetime})
    return one(op, ["input 'when'", "ISO-8601", "'yesterday-ish'"], check=nothing_started(env))


@case("op-input-nested-deeper-than-protobuf-reads", OP, FAIL)
def _(env: Env) -> Setup:
    # 50 list levels: accepted once, then nothing could parse inputs.pb and two tries burnt 8 minutes.
    annotation: Any = int
    value: Any = 1
    for _level in range(50):
        annotation, value = list[annotation], [value]  # type: ignore[valid-type]
    op = typed_op(env, {"deep": value}, {"deep": annotation})
    return one(op, ["input 'deep'", "nested", "deep"], check=nothing_started(env))


@case("op-input-lone-surrogate", OP, FAIL)
def _(env: Env) -> Setup:
    op = typed_op(env, {"ok": "fine", "s": ["a", "b\ud800"]}, {"ok": str, "s": list[str]})
    return one(op, ["input 's'[1]"], check=nothing_started(env))


@case("op-environment-name-with-equals", OP, FAIL)
def _(env: Env) -> Setup:
    op = make_op(env, command=["python", "-c", "pass"], environment={"GOOD": "1", "BAD=NAME": "x"})
    return one(op, ["'BAD=NAME'"], check=nothing_started_in_local(env))


@case("op-nul-rendered-into-an-argument", OP, FAIL)
def _(env: Env) -> Setup:
    op = make_op(
        env, command=["python", "-c", "pass", "{{.inputs.s}}"], input_types={"s": str}, inputs={"s": "a\x00b"}
    )
    return one(op, ["InvalidCommand", "argument 3"], check=nothing_started_in_local(env))


@case("op-output-nan", OP, FAIL)
def _(env: Env) -> Setup:
    data = repr(outputs_bytes(y=float_literal(float("nan"))))
    op = task_op(env, write_file("outputs.pb", data), "{{.outputPrefix}}", "0", output_types={"y": float})
    return one(op, ["output 'y'", "finite"])


@case("op-input-missing", OP, FAIL)
def _(env: Env) -> Setup:
    op = typed_op(env, {"count": 7}, {"count": int, "label": str})
    return one(op, ["missing input 'label'", "declared inputs"], check=nothing_started(env))


@case("op-input-unknown", OP, FAIL)
def _(env: Env) -> Setup:
    op = typed_op(env, {"count": 7, "colour": "red"}, {"count": int})
    return one(op, ["unknown input 'colour'", "'count'"], check=nothing_started(env))


@case("op-unknown-executor-id", OP, FAIL)
def _(env: Env) -> Setup:
    op = make_op(env, executor_id="no-such-executor")
    return one(op, ["'no-such-executor'", "known executors:", "'local'"], check=nothing_started(env))


@case(
    "op-executor-option-typo",
    OP,
    FAIL,
)
def _(env: Env) -> Setup:
    op = make_op(env, executor_options={"max_concurent": 2})
    return one(op, ["max_concurent"], check=nothing_started(env))


@case(
    "op-environment-value-not-a-string",
    OP,
    FAIL,
)
def _(env: Env) -> Setup:
    op = make_op(env, environment={"RETRIES": 3})
    return one(op, ["RETRIES"])


# -- operator level: the data dir ------------------------------------------------------------------


@case("op-data-dir-under-a-regular-file", OP, RETRY)
def _(env: Env) -> Setup:
    data, culprit, _how = unwritable_dir(env, "under-file")
    op = make_op(env, data_dir=str(data))
    return one(op, ["data store unavailable at start", str(culprit), "task.pb"])


@case("op-data-dir-read-only", OP, RETRY)
def _(env: Env) -> Setup:
    data, culprit, how = unwritable_dir(env, "read-only")
    op = make_op(env, data_dir=str(data))
    print(f"read-only data dir made with: {how}")
    return one(op, ["data store unavailable at start", str(culprit)])


# -- operator level: what a finished task leaves behind ---------------------------------------------


def task_op(env: Env, script: str, *args: str, **kwargs: Any) -> ExecutorOperator:
    return make_op(env, command=["python", "-c", script, *args], **kwargs)


def outputs_path(env: Env, task_id: str = "bad") -> str:
    return str(Path(default_output_prefix(str(folder_of(env, {"task_id": task_id})))) / "outputs.pb")


@case("op-corrupt-outputs-pb", OP, FAIL)
def _(env: Env) -> Setup:
    op = task_op(
        env,
        write_file("outputs.pb", "b'\\x0a\\xff\\xff garbage'"),
        "{{.outputPrefix}}",
        "0",
        output_types={"y": int},
    )
    # Permanent: a retry would adopt the same succeeded execution and read the same bytes.
    return one(op, [outputs_path(env), "do not match its interface", "flyteidl.core.LiteralMap"])


@case(
    "op-outputs-missing-a-declared-variable",
    OP,
    FAIL,
)
def _(env: Env) -> Setup:
    data = repr(outputs_bytes(y=int_literal(1)))
    op = task_op(
        env, write_file("outputs.pb", data), "{{.outputPrefix}}", "0", output_types={"y": int, "z": int}
    )
    return one(op, ["'z'", outputs_path(env)])


@case(
    "op-outputs-of-the-wrong-type",
    OP,
    FAIL,
)
def _(env: Env) -> Setup:
    data = repr(outputs_bytes(y=str_literal("forty-two")))
    op = task_op(env, write_file("outputs.pb", data), "{{.outputPrefix}}", "0", output_types={"y": int})
    return one(op, ["output 'y'", "expected integer", "forty-two"])


@case("op-corrupt-error-pb", OP, RETRY)
def _(env: Env) -> Setup:
    op = task_op(env, write_file("error.pb", "b'\\x0a\\xff\\xff garbage'"), "{{.outputPrefix}}", "1")
    error_file = Path(default_output_prefix(str(folder_of(env, {"task_id": "bad"})))) / "error.pb"
    return one(op, ["CorruptErrorFile", str(error_file)])


@case(
    "op-empty-error-pb",
    OP,
    RETRY,
)
def _(env: Env) -> Setup:
    # An empty error.pb says nothing: the exit code (and the log tail) decide, as with no error.pb.
    op = task_op(env, write_file("error.pb", "b''"), "{{.outputPrefix}}", "1")
    return one(op, ["ExitCode1", "exited with code 1"])


@case("op-command-not-found", OP, FAIL)
def _(env: Env) -> Setup:
    op = make_op(env, command=["no-such-command-xyz", "--flag"])
    return one(op, ["CommandNotFound", "'no-such-command-xyz'"])


@case("op-huge-stderr", OP, RETRY)
def _(env: Env) -> Setup:
    op = task_op(env, HUGE_STDERR)

    def check(outcomes: list[Outcome]) -> None:
        [outcome] = outcomes
        stderr = folder_of(env, {"task_id": "bad"}) / "logs" / "stderr.log"
        assert stderr.stat().st_size > HUGE_BYTES
        assert len(outcome.message) < 4000, len(outcome.message)
        assert "HEAD-MARKER" not in outcome.message
        stderr.unlink()  # 50 MiB: do not keep it in pytest's temp folders

    return one(op, ["ExitCode1", "TAIL-MARKER the real reason"], check=check)


# -- operator level: placeholders -------------------------------------------------------------------


@case("op-placeholder-unknown", OP, FAIL)
def _(env: Env) -> Setup:
    op = make_op(env, command=["python", "-c", "pass", "{{.nope}}"])
    return one(op, ["InvalidCommand", "command argument 3", "'{{.nope}}'"])


@case("op-placeholder-unknown-input", OP, FAIL)
def _(env: Env) -> Setup:
    op = make_op(env, command=["echo", "{{.inputs.colour}}"], input_types={"count": int}, inputs={"count": 1})
    return one(op, ["'{{.inputs.colour}}'", "unknown input 'colour'", "known inputs: count"])


@case(
    "op-placeholder-unclosed",
    OP,
    FAIL,
)
def _(env: Env) -> Setup:
    op = task_op(
        env,
        ECHO_X,
        "{{.input}}",
        "{{.outputPrefix",
        "{{.taskTemplatePath}}",
        input_types={"x": int},
        output_types={"y": int},
        inputs={"x": 1},
    )
    return one(op, ["{{.outputPrefix"])


# -- operator level: hostile names -------------------------------------------------------------------


def echo_op(env: Env, x: int, task_id: str = "hostile") -> ExecutorOperator:
    return task_op(
        env,
        ECHO_X,
        *IO_ARGS,
        task_id=task_id,
        input_types={"x": int},
        output_types={"y": int},
        inputs={"x": x},
    )


def contained(
    env: Env, *tis: dict[str, Any], lookalikes: tuple[dict[str, Any], ...] = ()
) -> Callable[..., None]:
    """Each run's folder exists, is exactly four levels below the data dir (dag/run/task/try: no
    separator survived), holds only files inside the data dir, and differs from every other run's
    and from the look-alike names' folders (and generated names)."""

    def check(outcomes: list[Outcome]) -> None:
        data = env.data.resolve()
        folders = []
        for ti, outcome in zip(tis, outcomes, strict=True):
            folder = folder_of(env, ti)
            real = folder.resolve()
            assert real.is_relative_to(data), real
            assert len(real.relative_to(data).parts) == 4, real.relative_to(data).parts
            assert all(len(part) <= 120 for part in real.relative_to(data).parts)
            assert (Path(default_output_prefix(str(folder))) / "outputs.pb").is_file()
            for path in folder.rglob("*"):
                assert path.resolve().is_relative_to(data), path
            folders.append(real)
            # Each task instance is told about its own execution (outputs go out as its return value).
            assert outcome.context is not None
            run_url = outcome.context["ti"].xcoms[RUN_URL_XCOM_KEY]
            assert Path(folder_of_view_link(run_url, str(env.data))).resolve() == real, run_url
        assert sorted(p.name for p in env.tmp.iterdir()) == ["data", "local-state"]
        everyone = [*tis, *lookalikes]
        all_folders = {folder_of(env, ti) for ti in everyone}
        assert len(all_folders) == len(everyone), "two names share an execution folder"
        names = {generated(ti) for ti in everyone}
        assert len(names) == len(everyone), "two names share a generated name"
        assert all(re.fullmatch(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?", name) for name in names), names

    return check


def generated(ti: dict[str, Any]) -> str:
    ident = task_execution_identifier(
        tasks_pb2.TaskTemplate(id=identifier_pb2.Identifier(name="hostile")),
        dag_id=ti.get("dag_id", "unit_dag"),
        task_id=ti["task_id"],
        run_id=ti.get("run_id", "manual__unit"),
        map_index=-1,
        try_number=1,
    )
    return generated_name_for(ident)


def hostile(env: Env, runs: list[dict[str, Any]], lookalikes: list[dict[str, Any]]) -> Setup:
    ops = [OpRun(echo_op(env, 10 + i), ti) for i, ti in enumerate(runs)]
    for run, ti in zip(ops, runs, strict=True):
        ti.setdefault("task_id", run.op.task_id)
    return Setup(ops=ops, check=contained(env, *runs, lookalikes=tuple(lookalikes)))


@case("op-hostile-dag-id", OP, SUCCESS)
def _(env: Env) -> Setup:
    # ".." is a valid Airflow dag id (letters, digits, '.', '-', '_').
    return hostile(
        env,
        [{"dag_id": ".."}, {"dag_id": "../../../escape"}],
        [{"dag_id": d, "task_id": "hostile"} for d in (".", "...", "%2E%2E", "..%2F..%2F..%2Fescape")],
    )


@case("op-hostile-task-id", OP, SUCCESS)
def _(env: Env) -> Setup:
    return hostile(
        env,
        [{"task_id": ".."}, {"task_id": "a/../../b"}],
        [{"task_id": t} for t in ("a/b", "a%2F..%2F..%2Fb", "a_.._.._b", "a-..-..-b")],
    )


@case("op-hostile-run-id", OP, SUCCESS)
def _(env: Env) -> Setup:
    return hostile(
        env,
        [{"run_id": "manual__2026-01-01/../.."}, {"run_id": "a/b"}, {"run_id": "a%2Fb"}, {"run_id": "a_b"}],
        [{"run_id": r, "task_id": "hostile"} for r in ("a-b", "a b", "A/B", "/a/b/")],
    )


@case("op-hostile-non-ascii-and-newline", OP, SUCCESS)
def _(env: Env) -> Setup:
    return hostile(
        env,
        [{"dag_id": "données", "task_id": "タスク", "run_id": "run\nü🚀"}],
        [{"dag_id": "donnees", "task_id": "タスク", "run_id": "run\nu🚀"}],
    )


@case(
    "op-hostile-nul-in-run-id",
    OP,
    SUCCESS,
)
def _(env: Env) -> Setup:
    return hostile(env, [{"run_id": "run\x00x"}], [{"run_id": "run%00x", "task_id": "hostile"}])


@case("op-hostile-very-long", OP, SUCCESS)
def _(env: Env) -> Setup:
    long_task = "t" * 250
    return hostile(
        env,
        [
            {"task_id": long_task, "run_id": "r" * 1000 + "1"},
            {"task_id": long_task, "run_id": "r" * 1000 + "2"},
        ],
        [{"task_id": long_task[:-1] + "u", "run_id": "r" * 1000 + "1"}],
    )


HOSTILE_VARS = TASK_IO + (
    "i = task_io.read_inputs(sys.argv[1], sys.argv[3])\n"
    "n = i['../in'] + sum(i['a/b']) + len(i['ünï']) + i['x' * 300]\n"
    "task_io.write_outputs(sys.argv[2], {'../out': n, 'a/b': -n, '日本': i['ünï'] * 2, '': 0}, sys.argv[3])\n"
)


@case("op-hostile-variable-names", OP, SUCCESS)
def _(env: Env) -> Setup:
    op = task_op(
        env,
        HOSTILE_VARS,
        *IO_ARGS,
        input_types={"../in": int, "a/b": list[int], "ünï": str, "x" * 300: int},
        output_types={"../out": int, "a/b": int, "日本": str, "": int},
        inputs={"../in": 1, "a/b": [2, 3], "ünï": "é", "x" * 300: 4},
    )

    def check(outcomes: list[Outcome]) -> None:
        [outcome] = outcomes
        expected = {"../out": 11, "a/b": -11, "日本": "éé", "": 0}
        assert outcome.value == expected
        assert outcome.context is not None
        xcoms = outcome.context["ti"].xcoms
        assert xcoms[RUN_URL_XCOM_KEY].startswith("/executors/ti/unit_dag/")  # the Execution view
        assert sorted(p.name for p in env.data.iterdir()) == ["unit_dag"]  # no '..' escaped

    return Setup(ops=[OpRun(op)], check=check)


@case(
    "op-output-named-like-a-reserved-xcom",
    OP,
    FAIL,
)
def _(env: Env) -> Setup:
    # Refused before anything starts: the output would overwrite the "Executor run" link's XCom.
    op = task_op(env, "pass", output_types={RUN_URL_XCOM_KEY: int})
    return one(op, [RUN_URL_XCOM_KEY, "would overwrite the XCom"], check=nothing_started(env))


# -- executor level --------------------------------------------------------------------------------


async def local_executor(env: Env, store: DataStore | None = None) -> LocalExecutor:
    executor = LocalExecutor(state_root=str(env.state_root), kill_grace_period=1)
    await executor.initialize(ExecutorInitializationParameters(data_store=store or DataStore()))
    return executor


def ex_ctx(env: Env, name: str = "bad", data_dir: str | None = None, **ident: Any) -> TaskContext:
    return TaskContext(
        task_execution_id=TaskExecutionID.create(make_identifier(node=name, **ident)),
        data_dir=data_dir or str(env.data / name),
    )


def status_outcome(status: TaskStatus) -> Outcome:
    return Outcome(status.phase.name, str(status.err) if status.err else "", status)


async def drive(
    env: Env,
    template: tasks_pb2.TaskTemplate,
    *,
    inputs: literals_pb2.LiteralMap | None = None,
    ctx: TaskContext | None = None,
    loader: Callable[[], Awaitable[literals_pb2.LiteralMap]] | None = None,
    accepted: bool = False,
    resolve: bool = False,
    prewritten: bool = False,
) -> Outcome:
    """Run one execution with the real local executor and the driver, to its final phase; with
    ``resolve``, also resolve the declared outputs of a success (an exception there is the outcome)."""
    store = DataStore()
    executor = await local_executor(env, store)
    ctx = ctx or ex_ctx(env)
    literal_inputs = inputs or literals_pb2.LiteralMap()
    if not prewritten:
        try:
            await store.write_protobuf(ctx.task_template_file, template)
            await store.write_protobuf(ctx.inputs_file, literal_inputs)
        except OSError:
            pass  # an unwritable data dir: the executor must say so itself

    async def given() -> literals_pb2.LiteralMap:
        return literal_inputs

    driver = ExecutionDriver(
        executor, template, ctx, inputs_loader=loader or given, policy=POLICY, accepted=accepted
    )
    status = await asyncio.wait_for(driver.run(), 60)
    outcome = status_outcome(status)
    if resolve and status.phase is TaskPhase.SUCCEEDED:
        try:
            await executor.resolve_outputs(driver.ctx, *template.interface.outputs.variables)
        except Exception as exc:
            return Outcome(f"SUCCEEDED->{type(exc).__name__}", str(exc), exc)
    return outcome


def ex(run: Callable[[], Awaitable[Outcome]], culprits: list[str], **extra: Any) -> Setup:
    return Setup(culprits=culprits, run=run, **extra)


@case("ex-template-without-container", EX, "PERMANENT_FAILURE")
def _(env: Env) -> Setup:
    template = tasks_pb2.TaskTemplate(type="container")
    template.id.name = "corpus.no_container"
    return ex(
        lambda: drive(env, template), ["MissingContainer", "corpus.no_container", "no container command"]
    )


@case("ex-container-with-empty-command", EX, "PERMANENT_FAILURE")
def _(env: Env) -> Setup:
    template = make_template([])
    template.container.image = "some/image:1"
    return ex(lambda: drive(env, template), ["MissingContainer", "tests.task"])


@case("ex-placeholder-unknown", EX, "PERMANENT_FAILURE")
def _(env: Env) -> Setup:
    template = make_template(["echo", "--out={{ .OutputPrefix }}", "{{$nope}}"])
    return ex(lambda: drive(env, template), ["InvalidCommand", "command argument 2", "'{{$nope}}'"])


@case("ex-placeholder-unknown-input", EX, "PERMANENT_FAILURE")
def _(env: Env) -> Setup:
    template = make_template(["echo", "{{.inputs.y}}"], inputs={"x": INT})
    return ex(
        lambda: drive(env, template, inputs=int_inputs(x=1)),
        ["'{{.inputs.y}}'", "unknown input 'y'", "known inputs: x"],
    )


@case("ex-placeholder-input-not-renderable", EX, "PERMANENT_FAILURE")
def _(env: Env) -> Setup:
    map_type = types_pb2.LiteralType(map_value_type=INT)
    template = make_template(["echo", "{{.inputs.m}}"], inputs={"m": map_type})
    inputs = literals_pb2.LiteralMap()
    inputs.literals["m"].map.literals["k"].scalar.primitive.integer = 1
    return ex(
        lambda: drive(env, template, inputs=inputs),
        ["'{{.inputs.m}}'", "input 'm'", "a map cannot be rendered"],
    )


@case("ex-command-not-found", EX, "PERMANENT_FAILURE")
def _(env: Env) -> Setup:
    template = make_template(["no-such-command-xyz"])
    return ex(lambda: drive(env, template), ["CommandNotFound", "'no-such-command-xyz'"])


@case("ex-command-not-executable", EX, "PERMANENT_FAILURE")
def _(env: Env) -> Setup:
    script = env.tmp / "not-executable.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)  # no x bit: even root cannot exec it
    return ex(lambda: drive(env, make_template([str(script)])), ["SpawnError", str(script)])


def exit_template(name: str, data: str, code: int, **kwargs: Any) -> tasks_pb2.TaskTemplate:
    return python_template(write_file(name, data), "{{.outputPrefix}}", str(code), **kwargs)


@case("ex-corrupt-error-pb", EX, "RETRYABLE_FAILURE")
def _(env: Env) -> Setup:
    template = exit_template("error.pb", "b'\\x0a\\xff\\xff garbage'", 1)
    return ex(lambda: drive(env, template), ["CorruptErrorFile", ex_ctx(env).error_file])


@case("ex-truncated-error-pb", EX, "RETRYABLE_FAILURE")
def _(env: Env) -> Setup:
    data = serialized_error()
    template = exit_template("error.pb", repr(data[: len(data) // 2]), 1)
    return ex(lambda: drive(env, template), ["CorruptErrorFile", ex_ctx(env).error_file])


@case(
    "ex-empty-error-pb",
    EX,
    "RETRYABLE_FAILURE",
)
def _(env: Env) -> Setup:
    template = exit_template("error.pb", "b''", 1)
    return ex(lambda: drive(env, template), ["ExitCode1", "exited with code 1"])


@case("ex-exit-zero-without-outputs", EX, "PERMANENT_FAILURE")
def _(env: Env) -> Setup:
    template = python_template("print('forgot to write outputs')", outputs={"y": INT})
    return ex(
        lambda: drive(env, template),
        ["OutputsNotFound", ex_ctx(env).outputs_file, "declared outputs: y"],
    )


@case("ex-corrupt-outputs-pb", EX, "SUCCEEDED->CorruptDataError")
def _(env: Env) -> Setup:
    template = exit_template("outputs.pb", "b'\\x0a\\xff\\xff garbage'", 0, outputs={"y": INT})
    return ex(
        lambda: drive(env, template, resolve=True),
        [ex_ctx(env).outputs_file, "flyteidl.core.LiteralMap"],
    )


@case("ex-outputs-missing-a-declared-variable", EX, "SUCCEEDED->OutputsError")
def _(env: Env) -> Setup:
    template = exit_template(
        "outputs.pb", repr(outputs_bytes(y=int_literal(1))), 0, outputs={"y": INT, "z": INT}
    )
    return ex(
        lambda: drive(env, template, resolve=True),
        ["'z'", ex_ctx(env).outputs_file, "present: y"],
    )


@case("ex-huge-stderr", EX, "RETRYABLE_FAILURE")
def _(env: Env) -> Setup:
    template = python_template(HUGE_STDERR)
    ctx = ex_ctx(env)
    peak: list[int] = []

    async def run() -> Outcome:
        executor = await local_executor(env)
        tracemalloc.start()
        try:
            outcome = await drive(env, template, ctx=ctx)
            logs = await executor.read_logs(ctx)
            peak.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert logs is not None and len(logs) < 70_000 and "TAIL-MARKER" in logs
        return outcome

    def check(outcomes: list[Outcome]) -> None:
        [outcome] = outcomes
        stderr = Path(ctx.data_dir) / "logs" / "stderr.log"
        assert stderr.stat().st_size > HUGE_BYTES
        assert len(outcome.message) < 2500, len(outcome.message)
        assert "HEAD-MARKER" not in outcome.message
        assert peak[0] < 8 * 1024 * 1024, f"reading the log tail allocated {peak[0]} bytes"
        stderr.unlink()

    return ex(run, ["ExitCode1", "TAIL-MARKER the real reason"], check=check)


@case("ex-data-dir-under-a-regular-file", EX, "RETRYABLE_FAILURE")
def _(env: Env) -> Setup:
    data, culprit, _how = unwritable_dir(env, "under-file")
    ctx = ex_ctx(env, data_dir=str(data))
    return ex(
        # The launch's own error, at once (it used to take unknown_limit polls of StatusUnknown).
        lambda: drive(env, make_template(["true"]), ctx=ctx),
        ["LaunchFailed", str(culprit)],
    )


@case("ex-data-dir-read-only", EX, "RETRYABLE_FAILURE")
def _(env: Env) -> Setup:
    data, culprit, how = unwritable_dir(env, "read-only")
    print(f"read-only data dir made with: {how}")
    ctx = ex_ctx(env, data_dir=str(data))
    return ex(
        # The launch's own error, at once (it used to take unknown_limit polls of StatusUnknown).
        lambda: drive(env, make_template(["true"]), ctx=ctx),
        ["LaunchFailed", str(culprit)],
    )


@case("ex-data-dir-in-memory", EX, "PERMANENT_FAILURE")
def _(env: Env) -> Setup:
    ctx = ex_ctx(env, data_dir=f"memory://corpus/{env.tmp.name}/bad")
    return ex(lambda: drive(env, make_template(["true"]), ctx=ctx), ["DataDirNotShared", "memory://corpus/"])


@case("ex-corrupt-inputs-pb", EX, "RETRYABLE_FAILURE")
def _(env: Env) -> Setup:
    ctx = ex_ctx(env)
    store = DataStore()
    Path(ctx.data_dir).mkdir(parents=True)
    Path(ctx.task_template_file).write_bytes(DOUBLE.SerializeToString())
    Path(ctx.inputs_file).write_bytes(b"\x0a\xff\xff")

    async def load() -> literals_pb2.LiteralMap:
        return await store.read_protobuf(ctx.inputs_file, literals_pb2.LiteralMap)

    return ex(
        lambda: drive(env, DOUBLE, ctx=ctx, loader=load, prewritten=True),
        ["StatusUnknown", ctx.inputs_file, "flyteidl.core.LiteralMap"],
    )


@case("ex-inputs-that-do-not-match-the-interface", EX, "RETRYABLE_FAILURE")
def _(env: Env) -> Setup:
    template = python_template(ECHO_X, *IO_ARGS, inputs={"x": INT}, outputs={"y": INT})
    inputs = literals_pb2.LiteralMap()
    inputs.literals["x"].scalar.primitive.string_value = "seven"
    return ex(lambda: drive(env, template, inputs=inputs), ["ExitCode1", "input 'x'", "expected integer"])


@case("ex-check-of-a-never-started-execution", EX, "UNDEFINED")
def _(env: Env) -> Setup:
    ctx = ex_ctx(env)

    async def run() -> Outcome:
        executor = await local_executor(env)
        return status_outcome(await executor.check_task_status(ctx, DOUBLE))

    state_dir = LocalExecutor(state_root=str(env.state_root)).state_dir(ctx)
    return ex(run, ["NotStarted", ctx.generated_name, state_dir])


@case("ex-driver-resuming-a-never-started-execution", EX, "RETRYABLE_FAILURE")
def _(env: Env) -> Setup:
    ctx = ex_ctx(env)
    return ex(
        lambda: drive(env, DOUBLE, ctx=ctx, accepted=True),
        ["UndefinedPhase", "executor 'local'", ctx.generated_name],
    )


@case("ex-unknown-executor-id", EX, "UnknownExecutorError")
def _(env: Env) -> Setup:
    async def run() -> Outcome:
        try:
            create_executor("no-such-executor", state_root=str(env.state_root))
        except UnknownExecutorError as exc:
            return Outcome(type(exc).__name__, str(exc), exc)
        return Outcome("created", "")

    return ex(run, ["'no-such-executor'", "'local'", repr(FAULTY_ID)])


@case("ex-hostile-identifier", EX, "SUCCEEDED")
def _(env: Env) -> Setup:
    hostile_ident = {"run": "/../../etc", "task_name": "../x"}
    ctx = ex_ctx(env, name="../../../etc/passwd", **hostile_ident)
    lookalikes = [
        ex_ctx(env, name=n, **hostile_ident).generated_name
        for n in ("etc/passwd", "etc-passwd", "ETC_PASSWD")
    ]

    def check(outcomes: list[Outcome]) -> None:
        names = {ctx.generated_name, *lookalikes}
        assert len(names) == 4, names
        assert all(re.fullmatch(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?", n) for n in names), names
        root = env.state_root.resolve()
        for path in env.state_root.rglob("*"):
            assert path.resolve().is_relative_to(root)
        assert sorted(p.name for p in env.tmp.iterdir()) == ["data", "local-state"]

    return ex(lambda: drive(env, DOUBLE, ctx=ctx, inputs=int_inputs(x=4), resolve=True), [], check=check)


# -- running the corpus ----------------------------------------------------------------------------


def assert_outcome(case: Case, setup: Setup, outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        assert outcome.kind == case.expect, f"{case.id}: got {outcome.kind}: {outcome.message[:2000]}"
        assert len(outcome.message) < MAX_MESSAGE, f"{case.id}: a {len(outcome.message)}-char message"
        for culprit in setup.culprits:
            assert culprit in outcome.message, f"{case.id}: {culprit!r} not in: {outcome.message[:2000]}"
    if setup.check is not None:
        setup.check(outcomes)


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)
    assert {c.level for c in CASES} == {OP, EX}


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_case(case: Case, tmp_path: Path) -> None:
    env = Env(tmp_path)
    setup = case.setup(env)
    if case.level == OP:
        outcomes = [run_op_sync(run) for run in setup.ops]
    else:
        assert setup.run is not None
        outcomes = [asyncio.run(setup.run())]
    assert_outcome(case, setup, outcomes)


@pytest.mark.parametrize("case", [c.param() for c in CASES])
async def test_case_does_not_affect_a_healthy_task(case: Case, tmp_path: Path) -> None:
    env = Env(tmp_path / "bad")
    env.tmp.mkdir()
    setup = case.setup(env)
    x = 1 + CASES.index(case)

    async def bad() -> list[Outcome]:
        if case.level == OP:
            return list(await asyncio.gather(*(run_op_on_this_loop(run) for run in setup.ops)))
        assert setup.run is not None
        return [await setup.run()]

    async with loop_monitor() as gaps:
        outcomes, healthy = await asyncio.gather(bad(), healthy_run(tmp_path / "healthy", x))
    assert healthy == 2 * x
    assert_outcome(case, setup, outcomes)
    print(f"max loop gap {gaps.worst:.3f}s")
    gaps.assert_below(0.2)


# -- a dozen bad triggers and healthy ones on one loop -----------------------------------------------


async def test_bad_triggers_never_block_the_loop(tmp_path: Path) -> None:
    config = {"state_root": str(tmp_path / "local-state"), "kill_grace_period": 1}
    prepared: dict[str, Any] = {}

    async def add(name: str, template: tasks_pb2.TaskTemplate, **kwargs: Any) -> None:
        kwargs.setdefault("config", config)
        prepared[name] = await prepare_trigger(tmp_path, template, name=name, **kwargs)

    await add("no-container", tasks_pb2.TaskTemplate(type="container"))
    await add("unknown-placeholder", make_template(["echo", "{{.nope}}"]))
    await add("not-found", make_template(["no-such-command-xyz"]))
    await add("corrupt-error", exit_template("error.pb", "b'\\x0a\\xff\\xff'", 1))
    await add("empty-outputs", python_template("pass", outputs={"y": INT}))
    await add("huge-stderr", python_template(HUGE_STDERR))
    await add("unknown-executor", DOUBLE, executor_id="no-such-executor")
    await add("missing-template", DOUBLE, write=False)
    await add("never-started", DOUBLE, accepted=True)
    await add("memory-data-dir", make_template(["true"]), data_dir=f"memory://gap/{tmp_path.name}")
    await add(
        "backend-down",
        DOUBLE,
        executor_id=FAULTY_ID,
        inputs=int_inputs(x=1),
        config={**config, "fail": "check_task_status"},
    )
    await add("corrupt-inputs", DOUBLE)
    Path(prepared["corrupt-inputs"].ctx.inputs_file).write_bytes(b"\x0a\xff\xff")
    for i in range(4):
        await add(f"healthy-{i}", DOUBLE, inputs=int_inputs(x=i))

    names = list(prepared)
    async with loop_monitor() as gaps:
        results = await asyncio.gather(*(run_trigger(prepared[n].trigger()) for n in names))
    statuses = dict(zip(names, results, strict=True))
    print(f"max loop gap {gaps.worst:.3f}s over {len(gaps.gaps)} ticks")

    expected = {
        "no-container": (TaskPhase.PERMANENT_FAILURE, "MissingContainer"),
        "unknown-placeholder": (TaskPhase.PERMANENT_FAILURE, "InvalidCommand"),
        "corrupt-inputs": (TaskPhase.RETRYABLE_FAILURE, "StatusUnknown"),
        "not-found": (TaskPhase.PERMANENT_FAILURE, "CommandNotFound"),
        "corrupt-error": (TaskPhase.RETRYABLE_FAILURE, "CorruptErrorFile"),
        "empty-outputs": (TaskPhase.PERMANENT_FAILURE, "OutputsNotFound"),
        "huge-stderr": (TaskPhase.RETRYABLE_FAILURE, "ExitCode1"),
        "unknown-executor": (TaskPhase.RETRYABLE_FAILURE, "UnknownExecutorError"),
        "missing-template": (TaskPhase.RETRYABLE_FAILURE, "DataNotFoundError"),
        "never-started": (TaskPhase.RETRYABLE_FAILURE, "UndefinedPhase"),
        "memory-data-dir": (TaskPhase.PERMANENT_FAILURE, "DataDirNotShared"),
        "backend-down": (TaskPhase.RETRYABLE_FAILURE, "StatusUnknown"),
    }
    for name, (phase, code) in expected.items():
        status = statuses[name]
        assert status.phase is phase and status.err is not None and status.err.code == code, (name, status)
        assert len(status.err.message) < 4000, (name, len(status.err.message))
    assert "no-such-executor" in statuses["unknown-executor"].err.message  # type: ignore[union-attr]
    assert prepared["missing-template"].ctx.task_template_file in statuses["missing-template"].err.message  # type: ignore[union-attr]
    assert "TAIL-MARKER" in statuses["huge-stderr"].err.message  # type: ignore[union-attr]
    for i in range(4):
        status = statuses[f"healthy-{i}"]
        assert status.phase is TaskPhase.SUCCEEDED, status
        out = literals_pb2.LiteralMap.FromString(Path(prepared[f"healthy-{i}"].ctx.outputs_file).read_bytes())
        assert out.literals["y"].scalar.primitive.integer == 2 * i
    # backend-down leaves its (real) process behind: stop it.
    await LocalExecutor(**config).kill_task(prepared["backend-down"].ctx, "test cleanup")
    (Path(prepared["huge-stderr"].ctx.data_dir) / "logs" / "stderr.log").unlink()
    assert len(gaps.gaps) > 20
    gaps.assert_below(0.2)


# -- names that differ only in case ---------------------------------------------------------------


def test_names_differing_only_in_case_get_folders_distinct_on_case_insensitive_filesystems(
    tmp_path: Path,
) -> None:
    pairs = [
        ({"task_id": "Load"}, {"task_id": "load"}),
        ({"dag_id": "ETL", "task_id": "t"}, {"dag_id": "etl", "task_id": "t"}),
    ]
    env = Env(tmp_path)
    for first, second in pairs:
        assert generated(first) != generated(second)  # generated names already are distinct
        assert str(folder_of(env, first)).casefold() != str(folder_of(env, second)).casefold()
