"""Flyte workflows as Airflow DAGs: five real flytekit workflows, packaged by ``pyflyte package``,
run with ``dag.test()``; their final outputs must equal flytekit's own local execution's.

The workflows (tests/flyte_workflows/corpus/flyte_workflows.py): a linear chain with a constant,
a fan-out/fan-in through a collection of promises, a map task, a sub-workflow used twice, and a
DataFrame and a dataclass passed between tasks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider.flyte_workflows import OUTPUTS_TASK, UnsupportedWorkflowError, flyte_workflow_dag
from executors.data.flyte_workflows import load
from tests.airflow_provider import dagtest
from tests.airflow_provider.dagtest import TaskResult
from tests.conformance import plain

pytestmark = pytest.mark.conformance
WORKFLOWS = ["linear", "fan_out_in", "mapped", "nested", "data_passing"]


def _run(workflow_dags: Any, name: str, conf: dict[str, Any] | None) -> dagtest.DagTestRun:
    return dagtest.run_dag_test(getattr(workflow_dags, f"dag_{name}"), run_conf=conf)


@pytest.mark.parametrize("name", WORKFLOWS)
def test_the_dag_s_outputs_are_flytekit_s(
    name: str, workflow_dags: Any, flytekit_package: tuple[Path, dict[str, Any]]
) -> None:
    expected = flytekit_package[1][name]
    run = _run(workflow_dags, name, plain.decode(expected["inputs"]))
    failed = {key: result for key, result in run.tasks.items() if result.state != "success"}
    failures = [str(c.exception)[:2000] for c in run.callbacks]
    assert run.state == "success" and not failed, (failed, failures)
    assert plain.encode(run.xcom(OUTPUTS_TASK)) == expected["outputs"]


def test_defaults_come_from_the_launch_plan(
    workflow_dags: Any, flytekit_package: tuple[Path, dict[str, Any]]
) -> None:
    # A fresh DAG object: dag.test(run_conf=...) of an earlier test updates the params of the DAG
    # object it ran, in this process.
    fresh = dagtest.load_dag_module(Path(workflow_dags.__file__))
    run = _run(fresh, "linear", None)
    assert run.state == "success"
    assert plain.encode(run.xcom(OUTPUTS_TASK)) == flytekit_package[1]["linear"]["default_outputs"]


def test_the_shape_of_the_dags(workflow_dags: Any) -> None:
    """Task nodes are operators, the sub-workflow a task group, the map task a mapped operator."""
    nested = workflow_dags.dag_nested
    assert {"n0_inner.n0_add", "n0_inner.n1_double", "n1_inner.n0_add", "n2_describe"} <= set(nested.task_ids)
    mapped = workflow_dags.dag_mapped
    assert {"n0_map_square_indices", "n0_map_square", "n0_map_square_collect", "n1_total"} <= set(
        mapped.task_ids
    )
    square = mapped.get_task("n0_map_square")
    assert type(square).__name__ == "MappedOperator"
    linear = workflow_dags.dag_linear
    assert linear.params["a"] == 3 and linear.params["b"] == 4  # the workflow's defaults
    assert linear.params.get_param("a").schema["type"] == "integer"
    assert workflow_dags.dag_mapped.params.get_param("xs").schema["type"] == "array"
    assert linear.get_task("n0_add").retries == 0
    assert workflow_dags.dag_fan_out_in.get_task("n2_square").retries == 2  # from the node's metadata


def test_a_cached_task_node_is_answered_by_the_catalog(workflow_dags: Any) -> None:
    """``describe`` is ``cache=True, cache_version="1"`` in flytekit: the second run with the same
    inputs gets its output from our catalog (its template's metadata says so)."""
    conf = {"a": 20, "b": 1}
    statuses = []
    for _ in range(2):
        run = _run(workflow_dags, "linear", conf)
        assert run.state == "success" and run.xcom(OUTPUTS_TASK) == {"o0": "doubled sum=42"}
        statuses.append(run.xcom("n2_describe", "cache_status"))
    assert statuses[1] == "CACHE_HIT" and statuses[0] in ("CACHE_POPULATED", "CACHE_HIT"), statuses


def test_a_map_task_runs_each_element_once(workflow_dags: Any) -> None:
    run = _run(workflow_dags, "mapped", {"xs": [5, 6, 7, 8, 9]})
    assert run.state == "success"
    assert [run.tasks[("n0_map_square", i)] for i in range(5)] == [TaskResult("success", 1)] * 5
    assert run.xcom(OUTPUTS_TASK) == {"o0": 25 + 36 + 49 + 64 + 81}


def test_an_unknown_workflow_is_named(flytekit_package: tuple[Path, dict[str, Any]]) -> None:
    package = load(flytekit_package[0])
    with pytest.raises(Exception, match=r"no workflow 'nope' \(it holds: flyte_workflows\.data_passing, "):
        flyte_workflow_dag(package, "nope")
    with pytest.raises(Exception, match=r"holds \d+ workflows .*: say which one"):
        package.workflow(None)


def test_a_branch_is_refused_naming_the_node(flytekit_package: tuple[Path, dict[str, Any]]) -> None:
    package = load(flytekit_package[0])
    template = package.workflow("flyte_workflows.linear")
    branching = type(template)()
    branching.CopyFrom(template)
    branching.nodes[1].ClearField("task_node")
    branching.nodes[1].branch_node.if_else.case.then_node.id = "x"
    package.workflows["flyte_workflows.linear"] = branching
    with pytest.raises(
        UnsupportedWorkflowError, match=r"node n1 \(double\): a conditional branch has no faithful"
    ):
        flyte_workflow_dag(package, "flyte_workflows.linear", dag_id="branching")
