"""``dag.test()`` of each example DAG in ``dags/`` (the repo's DAGs folder, Airflow's ``dags-folder``
bundle), in this process, on the real local executor; then states, try numbers and XComs from the
metadata DB."""

from __future__ import annotations

import asyncio

import pytest

from tests.airflow_provider.dagtest import EXAMPLE_DAGS, DagTestRun, TaskResult, load_dag_module, run_dag_test


def run_example(name: str) -> DagTestRun:
    module = load_dag_module(EXAMPLE_DAGS / f"{name}.py")
    assert module.dag.dag_id == name
    return run_dag_test(module.dag)


@pytest.mark.usefixtures("airflow_db")
def test_hello() -> None:
    run = run_example("executors_hello")
    assert run.state == "success"
    assert run.task("hello") == TaskResult("success", 1)
    assert run.xcom("hello", "greeting") == "Hello, Airflow! (3 times)"
    assert run.xcom("hello", "length") == len("Hello, Airflow! (3 times)")
    assert run.xcom("hello") == {"greeting": "Hello, Airflow! (3 times)", "length": 25}
    # One XCom for the "Executor run" link: Airflow's own (``_link_...``) is the same key.
    assert run.xcom("hello", "executor_run_url").startswith(
        "/executors/ti/executors_hello/hello/"
    )  # its view
    assert not any(key.startswith("_link_") for key in run.xcom_keys("hello"))


@pytest.mark.usefixtures("airflow_db")
def test_typed_pipeline() -> None:
    run = run_example("executors_typed_pipeline")
    assert run.state == "success"
    assert run.task("stats") == TaskResult("success", 1)
    assert run.xcom("stats", "count") == 4
    assert run.xcom("stats", "mean") == 2.625
    assert run.xcom("stats", "summary") == {"min": 1.0, "max": 4.5}
    assert run.xcom("report") == "4 values, mean 2.625, range 1.0..4.5"


@pytest.mark.usefixtures("airflow_db")
def test_mapped() -> None:
    run = run_example("executors_mapped")
    assert run.state == "success"
    for index, x in enumerate([1, 2, 3]):
        assert run.task("square", index) == TaskResult("success", 1)
        assert run.xcom("square", "square", index) == x * x
        assert run.xcom("square", map_index=index) == {"square": x * x}
    assert run.xcom("total") == 14


@pytest.mark.usefixtures("airflow_db")
def test_failures() -> None:
    run = run_example("executors_failures")
    assert run.state == "failed"
    assert run.task("flaky") == TaskResult("success", 2)
    assert run.xcom("flaky", "attempt") == 1  # Flyte's retry_attempt of Airflow's try 2
    assert run.xcom("flaky") == {"attempt": 1}
    assert run.task("broken") == TaskResult("failed", 1)  # retries=3, but the error is NON_RECOVERABLE
    assert run.xcom_keys("broken") <= {"executor_run_url"}


def _started_processes(dag_id: str, task_id: str) -> int:
    """How many local executions of a task were launched, across all runs (from their folders)."""
    import os
    from pathlib import Path

    from harness.local_state import configured_state_root, state_dirs_under

    root = Path(os.environ["AIRFLOW__PROVIDER_EXECUTORS__DATA_DIR"]) / dag_id
    claimed = state_dirs_under(root, configured_state_root())
    return sum(1 for folder, _ in claimed if folder.parent.name == task_id)


@pytest.mark.usefixtures("airflow_db")
def test_cached_second_run_is_a_hit_and_starts_nothing() -> None:
    before = _started_processes("executors_cached", "expensive")
    first = run_example("executors_cached")
    assert first.state == "success"
    assert first.xcom("expensive", "total") == 499999500000
    assert first.xcom("expensive", "cache_status") in ("CACHE_POPULATED", "CACHE_HIT")
    second = run_example("executors_cached")
    assert second.state == "success"
    assert second.xcom("expensive", "cache_status") == "CACHE_HIT"
    assert second.xcom("expensive") == {"total": 499999500000}
    assert second.xcom("show") == "total=499999500000 (CACHE_HIT)"
    assert _started_processes("executors_cached", "expensive") - before <= 1


@pytest.mark.usefixtures("airflow_db")
def test_taskflow_pipeline_and_cached_rerun() -> None:
    first = run_example("executors_taskflow")
    assert first.state == "success"
    assert first.xcom("load") == [1.0, 2.0, 3.0, 4.0]
    assert first.xcom("normalize") == [2.5, 5.0, 7.5, 10.0]
    assert first.xcom("describe") == {"count": 4, "mean": 6.25}
    assert first.xcom("describe", "count") == 4
    assert first.xcom("report") == "4 values, mean 6.25"
    normalize_runs = _started_processes("executors_taskflow", "normalize")
    second = run_example("executors_taskflow")
    assert second.state == "success"
    assert second.xcom("normalize", "cache_status") == "CACHE_HIT"
    assert second.xcom("normalize") == [2.5, 5.0, 7.5, 10.0]
    assert _started_processes("executors_taskflow", "normalize") == normalize_runs
    assert _started_processes("executors_taskflow", "load") == 2  # not cached: runs each time


@pytest.mark.usefixtures("airflow_db")
def test_pipelines_with_data_dir_and_catalog_on_s3(s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``[provider_executors] data_dir = s3://...`` (the catalog beside it), a real S3 server and the
    ``AWS_*`` variables, nothing else configured: each step of ``dag.test()`` runs in its own event
    loop, where a store client made on an earlier, closed loop used to fail every task."""
    from executors import DataStore

    monkeypatch.setenv("AIRFLOW__PROVIDER_EXECUTORS__DATA_DIR", f"{s3_bucket}/executions")
    typed = run_example("executors_typed_pipeline")
    assert typed.state == "success", typed
    assert typed.xcom("report") == "4 values, mean 2.625, range 1.0..4.5"
    first = run_example("executors_taskflow")
    assert first.state == "success", first
    assert first.xcom("describe") == {"count": 4, "mean": 6.25}
    second = run_example("executors_taskflow")
    assert second.xcom("normalize", "cache_status") == "CACHE_HIT"
    assert second.xcom("normalize") == [2.5, 5.0, 7.5, 10.0]
    stored = asyncio.run(DataStore().find(s3_bucket))
    assert any(
        ref.endswith("/outputs.pb") and "/executions/executors_typed_pipeline/" in ref for ref in stored
    )
    assert any("/catalog/" in ref for ref in stored), "the catalog is on S3 beside the data dir"


@pytest.mark.usefixtures("airflow_db")
def test_rich_data() -> None:
    run = run_example("executors_rich_data")
    assert run.state == "success", {t: run.task(t) for t in ("load", "frame", "report", "show")}
    batch = run.xcom("load")
    assert batch["day"] == "2026-03-01" and len(batch["readings"]) == 9
    reference = run.xcom("frame")
    assert set(reference) == {"uri", "format", "columns"} and reference["format"] == "parquet"
    # The CSV the last executor task wrote, opened by a plain @task from the URI in XCom.
    assert run.xcom("show") == "sensor,value; s0,4.5; s1,6.0; s2,7.5"
