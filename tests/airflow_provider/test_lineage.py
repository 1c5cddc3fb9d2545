"""OpenLineage: the real listener of ``apache-airflow-providers-openlineage``, writing to its file
transport, on a ``dag.test()`` run of ``dags/provider_test_lineage.py``.

The run is a subprocess: OpenLineage reads its configuration (the transport) once per process, and
this session's other tests run without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider.lineage import namespace_and_name
from tests.airflow_provider.dagtest import BUNDLE_CONFIG_ENV, TEST_DAGS, bundle_config_with_test_dags

REPO = Path(__file__).resolve().parents[2]
RUN = """
from pathlib import Path
from tests.airflow_provider import dagtest
module = dagtest.load_dag_module(Path({dag_file!r}))
run = dagtest.run_dag_test(module.dag)
print("RUN", run.state, run.xcom("summarize"))
"""


@pytest.fixture(scope="module")
def events(airflow_db: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The COMPLETE event of each task, by task id."""
    events_file = tmp_path_factory.mktemp("openlineage") / "events.jsonl"
    env = {
        **os.environ,
        BUNDLE_CONFIG_ENV: bundle_config_with_test_dags(),
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "executors-test",
        # Its own catalog: the session's is listed by other tests (the UI's catalog page).
        "AIRFLOW__PROVIDER_EXECUTORS__CATALOG_URL": str(events_file.parent / "catalog"),
        "PYTHONPATH": str(REPO),
    }
    # A script file, not ``python -c``: run that way, OpenLineage emits no task events (seen here).
    script = events_file.parent / "run_dag.py"
    script.write_text(RUN.format(dag_file=str(TEST_DAGS / "provider_test_lineage.py")))
    done = subprocess.run(
        [sys.executable, str(script)], env=env, cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert "RUN success total: 6" in done.stdout, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert events_file.exists(), f"no OpenLineage events:\n{done.stderr[-3000:]}"
    found: dict[str, dict[str, Any]] = {}
    for line in events_file.read_text().splitlines():
        event = json.loads(line)
        job = event["job"]["name"]
        if event["eventType"] == "COMPLETE" and "." in job:
            found[job.split(".", 1)[1]] = event
    return found


def datasets(event: dict[str, Any], side: str) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in event.get(side, [])]


def test_a_dataframe_output_is_a_dataset_with_its_schema_and_the_cache_outcome(
    events: dict[str, dict[str, Any]],
) -> None:
    event = events["make_frame"]
    [output] = event["outputs"]
    assert output["namespace"] == "file" and "/make_frame/1/raw/" in output["name"]
    assert [(f["name"], f["type"]) for f in output["facets"]["schema"]["fields"]] == [("a", "integer")]
    facet = event["run"]["facets"]["executors"]
    assert facet["cacheStatus"] == "CACHE_POPULATED" and facet["executor"] == "local"
    assert facet["outputs"] == {}  # the DataFrame is a dataset, not a value


def test_a_file_output_is_a_dataset(events: dict[str, dict[str, Any]]) -> None:
    [(namespace, name)] = datasets(events["write_report"], "outputs")
    assert namespace == "file" and name.endswith("/report.txt") and "/write_report/1/raw/" in name
    assert events["write_report"]["run"]["facets"]["executors"]["outputs"] == {}


def test_the_reader_s_inputs_are_the_writers_outputs_and_its_value_a_run_facet(
    events: dict[str, dict[str, Any]],
) -> None:
    event = events["summarize"]
    upstream = datasets(events["make_frame"], "outputs") + datasets(events["write_report"], "outputs")
    assert sorted(datasets(event, "inputs")) == sorted(upstream)  # the lineage graph joins up
    assert datasets(event, "outputs") == []
    facet = event["run"]["facets"]["executors"]
    assert facet["outputs"] == {"o0": "total: 6"} and facet["cacheStatus"] == ""
    assert [d["where"] for d in facet["data"]] == ["input 'frame'", "input 'report'"]


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bucket/a/b.parquet", ("s3://bucket", "a/b.parquet")),
        ("gs://b", ("gs://b", "/")),
        ("/tmp/x.csv", ("file", "/tmp/x.csv")),
        ("file:///tmp/x.csv", ("file", "/tmp/x.csv")),
        ("relative/x.csv", ("file", "/relative/x.csv")),
    ],
)
def test_dataset_naming_follows_openlineage(uri: str, expected: tuple[str, str]) -> None:
    assert namespace_and_name(uri) == expected
