"""``@task.executor``: interface from annotations, mapping, outputs, errors by exception class."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import NamedTuple

import pytest
from airflow.sdk import DAG, task
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from flyteidl.core import types_pb2

from airflow_provider import executor_task
from executors.core.errors import LiteralConversionError
from tests.airflow_provider import dagtest
from tests.airflow_provider.dagtest import DagTestRun


class Pair(NamedTuple):
    left: int
    right: str


def build(fn, **kwargs):  # type: ignore[no-untyped-def]
    with DAG(dag_id="decorator_unit", schedule=None, start_date=dt.datetime(2026, 1, 1)):
        return task.executor(fn, **kwargs)(1) if fn.__code__.co_argcount else task.executor(fn, **kwargs)()


def test_importable_from_the_package_and_registered_on_task() -> None:
    assert callable(executor_task)
    assert hasattr(task, "executor")


def test_annotations_become_the_interface() -> None:
    def f(x: int, names: list[str] | None = None) -> Pair:
        return Pair(x, "a")

    op = build(f).operator
    template = op.task_template.value
    inputs = template["interface"]["inputs"]["variables"]
    outputs = template["interface"]["outputs"]["variables"]
    assert inputs["x"]["type"] == {"simple": "INTEGER"}
    assert "union_type" in inputs["names"]["type"]
    assert set(outputs) == {"left", "right"}
    assert template["custom"]["function_name"] == "f"
    assert "def f(x: int" in template["custom"]["python_source"]
    assert "@task" not in template["custom"]["python_source"]


def test_a_plain_return_is_the_single_output_o0() -> None:
    def f(x: int) -> float:
        return x / 2

    template = build(f).operator.task_template.value
    out = template["interface"]["outputs"]["variables"]
    assert list(out) == ["o0"] and out["o0"]["type"]["simple"] == types_pb2.SimpleType.Name(types_pb2.FLOAT)


@pytest.mark.parametrize(
    ("source", "culprit"),
    [
        ("def f(x: set[int]) -> int: return 1", "parameter 'x'"),
        ("def f(x) -> int: return 1", "parameter 'x'"),
        ("def f(x: int): return 1", "return"),
        ("def f(*xs: int) -> int: return 1", "parameter 'xs'"),
        ("def f(ti: int) -> int: return 1", "parameter 'ti'"),
        ("async def f(x: int) -> int: return 1", "function f"),
    ],
)
def test_unsupported_signatures_fail_at_parse_time_naming_the_culprit(source: str, culprit: str) -> None:
    namespace: dict = {}  # type: ignore[type-arg]
    exec(source, namespace)
    with pytest.raises(LiteralConversionError, match=culprit):
        build(namespace["f"])


# -- dag.test() --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def taskflow(test_dags: Path) -> DagTestRun:
    module = dagtest.load_dag_module(test_dags / "provider_test_taskflow.py")
    return dagtest.run_dag_test(module.dag)


def test_mapped_decorated_task(taskflow: DagTestRun) -> None:
    for index, x in enumerate([1, 2, 3]):
        assert taskflow.task("square", index) == dagtest.TaskResult("success", 1)
        assert taskflow.xcom("square", map_index=index) == x * x
    assert taskflow.xcom("total") == 14


def test_typed_dict_return_gives_one_xcom_per_field(taskflow: DagTestRun) -> None:
    assert taskflow.xcom("split") == {"head": 5, "tail": [6, 7]}
    assert taskflow.xcom("split", "head") == 5
    assert taskflow.xcom("split", "tail") == [6, 7]


def test_user_exception_fails_without_retry_with_its_traceback(taskflow: DagTestRun, test_dags: Path) -> None:
    assert taskflow.task("bad_value") == dagtest.TaskResult("failed", 1)  # retries=3 ignored
    [failure] = taskflow.callbacks_of("bad_value")
    assert isinstance(failure.exception, AirflowFailException)
    text = str(failure.exception)
    assert "[user:ValueError] ValueError: x=1 is not acceptable" in text
    lines = (test_dags / "provider_test_taskflow.py").read_text().splitlines()
    line = next(n for n, source in enumerate(lines, 1) if 'raise ValueError(f"x={x}' in source)
    assert (
        "Traceback (most recent call last)" in text
        and f'provider_test_taskflow.py", line {line}, in bad_value' in text
    )


def test_recoverable_error_is_retried(taskflow: DagTestRun) -> None:
    assert taskflow.task("flaky") == dagtest.TaskResult("success", 2)
    [retry] = taskflow.callbacks_of("flaky")
    assert isinstance(retry.exception, AirflowException) and "RecoverableError" in str(retry.exception)
    assert not isinstance(retry.exception, AirflowFailException)
    assert taskflow.xcom("flaky") == 101


def test_retry_on_names_exception_classes_and_their_subclasses(taskflow: DagTestRun) -> None:
    assert taskflow.task("network") == dagtest.TaskResult("success", 2)
    [retry] = taskflow.callbacks_of("network")
    assert "ConnectionRefusedError" in str(retry.exception)
    assert taskflow.xcom("network") == 7


def test_enum_parameters_arrive_as_members(taskflow: DagTestRun) -> None:
    assert taskflow.task("describe_color") == dagtest.TaskResult("success", 1)
    assert taskflow.xcom("describe_color") == "RED=red ['GREEN', 'RED'] None"


def test_enum_return_is_written_by_value(taskflow: DagTestRun) -> None:
    assert taskflow.task("next_color") == dagtest.TaskResult("success", 1)
    assert taskflow.xcom("next_color") == "green"


def test_dataclasses_int_enums_and_dates_pass_between_tasks(taskflow: DagTestRun) -> None:
    """``plan_route`` returns a dataclass (nested, with an int Enum and a date), ``walk_route``
    receives it as an instance along with one written in the DAG file, a plain ``@task`` the dict."""
    for name in ("plan_route", "walk_route", "read_route"):
        failures = [str(c.exception)[:2000] for c in taskflow.callbacks_of(name)]
        assert taskflow.task(name) == dagtest.TaskResult("success", 1), failures
    assert taskflow.xcom("walk_route") == "r3 2026-03-04 from (5, 0.5) 3.0"
    route = {"name": "r3", "day": "2026-03-04", "stops": [{"x": i, "y": i / 2} for i in range(3)], "level": 2}
    assert taskflow.xcom("plan_route") == route
    assert taskflow.xcom("read_route") == f"dict {route!r}"


def test_bare_dict_keeps_ints_end_to_end(taskflow: DagTestRun) -> None:
    assert taskflow.task("count") == dagtest.TaskResult("success", 1)
    value = taskflow.xcom("count")
    assert value == {"n": 2, "type": "int", "nested": {"k": [1, 2.5]}}
    assert type(value["n"]) is int and type(value["nested"]["k"][0]) is int


def test_a_bare_dict_is_declared_as_flytekit_does() -> None:
    def f(d: dict) -> dict:  # type: ignore[type-arg]
        return d

    template = build(f).operator.task_template.value
    declared = template["interface"]["inputs"]["variables"]["d"]["type"]
    assert declared == {
        "simple": "STRUCT",
        "annotation": {"annotations": {"cache-key-metadata": {"serialization-format": "msgpack"}}},
    }


def test_wrong_return_type_fails_without_retry_naming_the_output(taskflow: DagTestRun) -> None:
    assert taskflow.task("bad_return") == dagtest.TaskResult("failed", 1)  # retries=3 ignored
    [failure] = taskflow.callbacks_of("bad_return")
    assert isinstance(failure.exception, AirflowFailException)
    assert "[user:LiteralConversionError] output 'o0': expected integer, got str '1'" in str(
        failure.exception
    )


def test_a_nan_output_fails_without_retry_naming_the_output(taskflow: DagTestRun) -> None:
    assert taskflow.task("not_a_number") == dagtest.TaskResult("failed", 1)
    [failure] = taskflow.callbacks_of("not_a_number")
    assert isinstance(failure.exception, AirflowFailException)
    assert "output 'o0': expected a finite number" in str(failure.exception)
