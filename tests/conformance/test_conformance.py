"""Flyte conformance: flytekit's own tasks, serialized by flytekit, run through Airflow, judged by flytekit.

For every case of the corpus (``corpus/flyte_tasks.py``, at least 30 flytekit tasks), flytekit
serializes the task into a TaskTemplate (its ``pyflyte-execute`` command unchanged) and runs it
locally for the expected outcome (``flytekit_side.py serialize``). The same template and inputs then
run through ``ExecutorOperator`` in a ``dag.test()`` DAG run (``dags/conformance_local.py``; a subset on
Ray: ``dags/conformance_ray.py``), and each case asserts what Flyte would do:

* the Airflow end state and number of tries: success; failed at once for a user error (even with
  retries left); retried, then success, for a ``FlyteRecoverableException``;
* each failed try's message carries flytekit's own exception text (class and message);
* on success, every output's XCom (and ``return_value``) equals flytekit's output in plain form,
  blobs and data frames arrive as the URI in ``outputs.pb``, and flytekit reading our ``outputs.pb``
  finds the same values as its local execution (``flytekit_side.py check``).

Chains: a flytekit task's outputs into a ``@task.executor`` function, a ``@task.executor`` function's
outputs into a flytekit task, and an Optional output that is None into a plain ``@task``.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from flyteidl.core import literals_pb2, tasks_pb2
from google.protobuf import json_format

from tests.airflow_provider.dagtest import TaskResult
from tests.conformance import plain
from tests.conformance.cases import (
    CASES,
    CHAIN_ARROW,
    CHAIN_DESCRIBE,
    CHAIN_ENRICH,
    CHAIN_INDEX,
    CHAIN_MAKE_INPUTS,
    CHAIN_RESHAPE,
    CHAIN_SHOUT,
    CONFORMANCE_IMAGE,
    DOCKER_CASES,
    LOCAL_CASES,
    RAY_CASES,
    RECEIVE_NONE,
    RECEIVE_VALUES,
)
from tests.conformance.conftest import CaseRun, ConformanceRun, Corpus

pytestmark = [pytest.mark.e2e, pytest.mark.conformance]

PARAMS = (
    [("local", n) for n in LOCAL_CASES]
    + [("ray", n) for n in RAY_CASES]
    + [("docker", n) for n in DOCKER_CASES]
)


def _reference_in(outputs_pb: Path | None, name: str) -> tuple[str, dict[str, Any] | None] | None:
    """The URI of a blob or structured dataset output in ``outputs.pb``, with (for a structured
    dataset) the typed reference the product documents: ``{"uri", "format", "columns"}``."""
    if outputs_pb is None:
        return None
    literals = literals_pb2.LiteralMap()
    literals.ParseFromString(outputs_pb.read_bytes())
    if name not in literals.literals:
        return None
    scalar = literals.literals[name].scalar
    if scalar.HasField("blob"):
        return scalar.blob.uri, None
    dataset_type = scalar.structured_dataset.metadata.structured_dataset_type
    columns = [
        {"name": c.name, "type": json_format.MessageToDict(c.literal_type)} for c in dataset_type.columns
    ]
    uri = scalar.structured_dataset.uri
    return uri, {"uri": uri, "format": dataset_type.format, "columns": columns}


def _reference_problems(
    name: str, value: Any, reference: tuple[str, dict[str, Any] | None] | None
) -> list[str]:
    """A blob's XCom is its URI; a structured dataset's is its URI or its typed reference, which
    must carry the producer's metadata (what flytekit wrote in outputs.pb)."""
    if reference is None:
        return [f"output {name!r}: no blob or structured dataset in outputs.pb (XCom {value!r:.200})"]
    uri, typed = reference
    if value == uri or (typed is not None and value == typed):
        return []
    want = repr(uri) if typed is None else f"{uri!r} or {typed!r}"
    return [f"output {name!r}: XCom {value!r:.300} is not what flytekit wrote in outputs.pb ({want})"]


def conformance_problems(case: CaseRun, expected: dict[str, Any]) -> list[str]:
    """Everything in which our run of the case differs from what Flyte would do."""
    problems: list[str] = []
    want_state = "success" if expected["final"] == "success" else "failed"
    want = TaskResult(want_state, expected["tries"])
    if case.result != want:
        problems.append(
            f"Airflow ended {case.result} but Flyte would end {want_state} after {expected['tries']} "
            f"attempt(s) (flytekit: {', '.join(_attempt_text(a) for a in expected['attempts'])})"
        )

    # Each failed attempt: the callback of its try, with flytekit's own exception text.
    for attempt in expected["attempts"]:
        error = attempt.get("error")
        if error is None:
            continue
        try_number = attempt["attempt"] + 1
        records = [c for c in case.callbacks if c.try_number == try_number]
        if not records:
            problems.append(
                f"try {try_number}: no failure recorded, flytekit raised {error['summary'][:300]!r}"
            )
            continue
        record = records[0]
        text = str(record.exception)
        if error["recoverable"]:
            if isinstance(record.exception, AirflowFailException) or not isinstance(
                record.exception, AirflowException
            ):
                problems.append(
                    f"try {try_number}: {type(record.exception).__name__}, but flytekit's "
                    f"{error['type']} is recoverable (Flyte retries it): {text[:800]}"
                )
        elif not isinstance(record.exception, AirflowFailException):
            problems.append(
                f"try {try_number}: {type(record.exception).__name__}, but flytekit's {error['type']} is "
                f"not recoverable (Flyte does not retry it): {text[:800]}"
            )
        ours = CASES[case.name].refused_before_launch
        missing = [f for f in ([ours] if ours else error["fragments"]) if f not in text]
        if missing:
            problems.append(
                f"try {try_number}: the failure message lacks flytekit's exception text {missing!r}; "
                f"it says: {text[:2500]}"
            )

    if expected["final"] != "success" or case.result is None or case.result.state != "success":
        return problems

    # Outputs: one XCom per output, the whole dict as return_value, flytekit agrees with outputs.pb.
    outputs = expected["outputs"]
    for name in expected["output_names"]:
        if name not in case.xcoms:
            problems.append(f"output {name!r}: no XCom under its own key (XCom keys: {sorted(case.xcoms)})")
            continue
        value = case.xcoms[name]
        want_plain = outputs[name]
        if isinstance(want_plain, dict) and "$uri" in want_plain:
            problems.extend(_reference_problems(name, value, _reference_in(case.outputs_pb, name)))
            continue
        try:
            got = plain.encode(value)
        except TypeError as exc:
            problems.append(f"output {name!r}: the XCom is not a plain value: {exc}")
            continue
        if isinstance(want_plain, float) and type(got) is int and got == want_plain:
            # Airflow (SQLite metadata DB) reads a whole float pushed as its own XCom back as an
            # int (5.0 -> 5), for a plain @task too; return_value, checked below, keeps the float.
            continue
        problems.extend(f"output {name!r}: {d}" for d in plain.diff(want_plain, got, "xcom"))
    returned = case.xcoms.get("return_value")
    if not isinstance(returned, dict) or sorted(returned) != expected["output_names"]:
        problems.append(
            f"return_value should hold every output {expected['output_names']}, got {returned!r:.300}"
        )
    else:
        for name in expected["output_names"]:
            if isinstance(outputs[name], dict) and "$uri" in outputs[name]:
                if name in case.xcoms and returned[name] != case.xcoms[name]:
                    problems.append(f"return_value[{name!r}] differs from the XCom {name!r}")
                continue  # a reference: its XCom was checked against outputs.pb above
            # Strictly typed: inside the return_value dict a whole float stays a float.
            problems.extend(
                f"return_value[{name!r}]: {d}"
                for d in plain.diff(outputs[name], plain.encode(returned[name]), "return_value")
            )
            if name in case.xcoms and returned[name] != case.xcoms[name]:
                problems.append(f"return_value[{name!r}] differs from the XCom {name!r}")
    if case.check is None:
        problems.append(
            f"flytekit_side.py check did not run: no outputs.pb in {case.folder} (the product's default layout)"
        )
    elif case.check["ok"] is not True:
        problems.append(
            "flytekit reading our outputs.pb disagrees with its local execution:\n  "
            + "\n  ".join(case.check["problems"])
        )
    return problems


def _attempt_text(attempt: dict[str, Any]) -> str:
    if "error" in attempt:
        kind = "recoverable" if attempt["error"]["recoverable"] else "non-recoverable"
        return f"attempt {attempt['attempt']}: {kind} {attempt['error']['type']}"
    return f"attempt {attempt['attempt']}: success"


def assert_conforms(case: CaseRun, expected: dict[str, Any]) -> None:
    problems = conformance_problems(case, expected)
    if not problems:
        return
    details = [
        f"Airflow try {c.try_number} ({c.kind}): {type(c.exception).__name__}: {str(c.exception)[:2500]}"
        for c in case.callbacks
    ]
    if case.inputs_check and case.inputs_check.get("ok") is False:
        details.append(
            "flytekit reads our inputs.pb differently from its own:\n  "
            + "\n  ".join(case.inputs_check["problems"])
        )
    tail = case.log_tail()
    if tail:
        details.append(f"task output (final try):\n{tail}")
    raise AssertionError(
        f"case {case.name!r} ({expected['task']}) does not behave as on Flyte:\n- "
        + "\n- ".join(problems)
        + ("\n\n" + "\n\n".join(details) if details else "")
    )


@pytest.mark.parametrize(("executor", "name"), PARAMS, ids=[f"{e}-{n}" for e, n in PARAMS])
def test_case(executor: str, name: str, corpus: Corpus, request: pytest.FixtureRequest) -> None:
    run: ConformanceRun = request.getfixturevalue(f"{executor}_run")
    assert_conforms(run.cases[name], corpus.expected(name))


def test_the_corpus_image_is_the_test_image() -> None:
    """The image flytekit serializes the corpus with is the one the container suite builds."""
    from harness import podman

    assert CONFORMANCE_IMAGE == podman.CONFORMANCE_IMAGE


def test_corpus_is_serialized_by_flytekit(corpus: Corpus) -> None:
    """At least 30 distinct flytekit tasks; every template is flytekit's, command untouched."""
    tasks = {corpus.index[name]["task"] for name in CASES}
    assert len(tasks) >= 30, sorted(tasks)
    for name in CASES:
        template = tasks_pb2.TaskTemplate()
        template.ParseFromString(Path(corpus.index[name]["template"]).read_bytes())
        assert template.type == "python-task"
        assert template.container.image == CONFORMANCE_IMAGE, template.container.image
        assert template.metadata.runtime.flavor == "python" and template.metadata.runtime.version == "1.16.31"
        args = list(template.container.command) + list(template.container.args)
        assert args[:5] == [
            "pyflyte-execute",
            "--inputs",
            "{{.input}}",
            "--output-prefix",
            "{{.outputPrefix}}",
        ], args
        assert "--resolver" in args and args[args.index("--") + 1 :][:4] == [
            "task-module",
            "flyte_tasks",
            "task-name",
            corpus.index[name]["task"].split(".", 1)[1],
        ], args


def test_chain_flytekit_into_executor_task(local_run: ConformanceRun, corpus: Corpus) -> None:
    """``chain_report`` (flytekit: an Enum and a dict[str, int]) feeds a ``@task.executor`` function."""
    upstream = corpus.expected("chain_report")["outputs"]
    run = local_run.run
    color = enum.Enum("Color", {"RED": "red", "GREEN": "green", "BLUE": "blue"})(upstream["color"])
    counts = ", ".join(f"{k}:{v}" for k, v in sorted(upstream["counts"].items()))
    assert run.task("chain_report").state == "success", (
        "the flytekit upstream failed: see test_case[local-chain_report]"
    )
    failures = [str(c.exception)[:3000] for c in run.callbacks_of(CHAIN_DESCRIBE)]
    assert run.task(CHAIN_DESCRIBE) == TaskResult("success", 1), failures
    assert run.xcom(CHAIN_DESCRIBE) == f"{color.name}={color.value}; {counts}"


def test_chain_executor_task_into_flytekit(local_run: ConformanceRun, corpus: Corpus) -> None:
    """A ``@task.executor`` function's outputs (list[int], bare dict) feed the flytekit ``chain_summarize``."""
    run = local_run.run
    failures = [str(c.exception)[:3000] for c in run.callbacks_of(CHAIN_MAKE_INPUTS)]
    assert run.task(CHAIN_MAKE_INPUTS) == TaskResult("success", 1), failures
    # The upstream hands over exactly the inputs flytekit's local execution used.
    sent = {k: run.xcom(CHAIN_MAKE_INPUTS, k) for k in ("xs", "meta")}
    assert sent == plain.decode(corpus.index["chain_summarize"]["inputs"])
    assert_conforms(local_run.cases["chain_summarize"], corpus.expected("chain_summarize"))


def _middle_output(run: Any, upstream: str, middle: str) -> Any:
    """The XCom of the ``@task.executor`` task ``middle`` of a chain, after checking that the
    flytekit task ``upstream`` feeding it succeeded and ``middle`` succeeded on its first try."""
    assert run.task(upstream).state == "success", (
        f"the flytekit upstream failed: see test_case[local-{upstream}]"
    )
    failures = [str(c.exception)[:3000] for c in run.callbacks_of(middle)]
    assert run.task(middle) == TaskResult("success", 1), failures
    return run.xcom(middle)


def test_chain_dataclass_through_executor_task(local_run: ConformanceRun, corpus: Corpus) -> None:
    """flytekit's nested dataclass output reaches a ``@task.executor`` function as instances of the
    DAG file's own ``Shape`` and ``Point``; the ``Shape`` it returns is the input flytekit's local
    execution of ``dataclass_chain`` used, and that flytekit task conforms."""
    reshaped = _middle_output(local_run.run, "nested_dataclass", CHAIN_RESHAPE)
    assert reshaped == plain.decode(corpus.index["dataclass_chain"]["inputs"])["s"]
    assert_conforms(local_run.cases["dataclass_chain"], corpus.expected("dataclass_chain"))


def test_chain_files_through_executor_tasks(local_run: ConformanceRun, corpus: Corpus) -> None:
    """flytekit's FlyteFile and FlyteDirectory reach ``@task.executor`` functions as ``File`` and
    ``Directory``; what they write and return is uploaded under the raw output prefix (a URI in
    XCom, never the bytes) and read by flytekit's ``t_file_in`` / ``t_dir_in``, which conform."""
    for upstream, middle, chain in (
        ("file_out", CHAIN_SHOUT, "file_chain"),
        ("dir_out", CHAIN_INDEX, "dir_chain"),
    ):
        uri = _middle_output(local_run.run, upstream, middle)
        assert isinstance(uri, str) and "/raw/" in uri, uri
        assert_conforms(local_run.cases[chain], corpus.expected(chain))


def test_chain_dataframes_through_executor_tasks(local_run: ConformanceRun, corpus: Corpus) -> None:
    """flytekit's CSV dataset read as a pandas DataFrame and its parquet one as a pyarrow Table by
    ``@task.executor`` functions; what they return (parquet, laid out as flytekit lays it) is read by
    flytekit's ``t_df_in``, which conforms: the same rows, columns and sum as its local execution."""
    for upstream, middle, chain in (
        ("df_csv_out", CHAIN_ENRICH, "frame_chain"),
        ("df_out", CHAIN_ARROW, "arrow_chain"),
    ):
        reference = _middle_output(local_run.run, upstream, middle)
        assert set(reference) == {"uri", "format", "columns"} and reference["format"] == "parquet", reference
        assert_conforms(local_run.cases[chain], corpus.expected(chain))


def test_optional_none_output_reaches_a_plain_task(local_run: ConformanceRun, corpus: Corpus) -> None:
    """``optional_none``'s ``o0`` is None (flytekit says so): a downstream ``@task`` receives None."""
    assert corpus.expected("optional_none")["outputs"] == {"o0": None}
    run = local_run.run
    assert run.task("optional_none").state == "success", (
        "the flytekit upstream failed: see test_case[local-optional_none]"
    )
    failures = [str(c.exception)[:3000] for c in run.callbacks_of(RECEIVE_NONE)]
    assert run.task(RECEIVE_NONE) == TaskResult("success", 1), failures
    assert run.xcom(RECEIVE_NONE) == {"is_none": True, "repr": "None"}


def test_typed_outputs_reach_a_plain_task(local_run: ConformanceRun, corpus: Corpus) -> None:
    """A float, a datetime and a timedelta output, as a downstream ``@task`` receives them."""
    run = local_run.run
    for upstream in ("namedtuple", "datetime", "timedelta"):
        assert run.task(upstream).state == "success", (
            f"the flytekit upstream failed: see test_case[local-{upstream}]"
        )
    failures = [str(c.exception)[:3000] for c in run.callbacks_of(RECEIVE_VALUES)]
    assert run.task(RECEIVE_VALUES) == TaskResult("success", 1), failures
    mean = corpus.expected("namedtuple")["outputs"]["mean"]
    when = plain.decode(corpus.expected("datetime")["outputs"]["o0"])
    duration = plain.decode(corpus.expected("timedelta")["outputs"]["o0"])
    received = run.xcom(RECEIVE_VALUES)
    # Airflow itself hands a plain @task a whole float pushed under its own key as an int (5.0 -> 5,
    # SQLite metadata DB; ../shared FIELD-NOTES): the value is equal, its type is Airflow's doing.
    whole = isinstance(mean, float) and mean.is_integer()
    assert received["mean"] in ({f"float {mean!r}", f"int {int(mean)!r}"} if whole else {f"float {mean!r}"})
    assert received == {**received, "when": f"True {when.isoformat()}", "duration": f"True {duration!r}"}
