"""Running DAGs with ``dag.test()`` inside the pytest process, and reading back what happened.

``dag.test()`` only runs a DAG that the metadata DB knows (it syncs the DAG's bundle first), so a
DAG must live in a file of a configured DAG bundle: the example DAGs are in the repo's ``dags/``
(the ``dags-folder`` bundle); the operator-test DAGs are in ``tests/airflow_provider/dags/``, added
as a second bundle for those tests only (:func:`bundle_config_with_test_dags`). Tasks and the inline
trigger run in this process, so task callbacks can hand the exact exception back to the test
(:data:`CALLBACKS`), and executors registered here are seen by the task.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.util
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS = REPO / "dags"
TEST_DAGS = Path(__file__).resolve().parent / "dags"
BUNDLE_CONFIG_ENV = "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"

_migrated: set[str] = set()
_module_ids = itertools.count()


def migrate_airflow_db() -> str:
    """``airflow db migrate`` once per AIRFLOW_HOME and process; returns AIRFLOW_HOME."""
    home = os.environ["AIRFLOW_HOME"]
    if home not in _migrated:
        result = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"airflow db migrate failed:\n{result.stdout}\n{result.stderr}"
        _migrated.add(home)
    return home


def bundle_config_with_test_dags() -> str:
    """The default ``dags-folder`` bundle plus one holding the operator-test DAG files."""
    local = "airflow.dag_processing.bundles.local.LocalDagBundle"
    return json.dumps(
        [
            {"name": "dags-folder", "classpath": local, "kwargs": {}},
            {"name": "provider-test-dags", "classpath": local, "kwargs": {"path": str(TEST_DAGS)}},
        ]
    )


def load_dag_module(path: Path) -> Any:
    """Import a DAG file the way a test would (a fresh module each time); it exposes ``dag``."""
    name = f"_executors_test_dag_{path.stem}_{next(_module_ids)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, as Airflow's own DAG importer does: a dataclass in a DAG file with
    # postponed annotations looks its module up in sys.modules while it is being defined.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclasses.dataclass(frozen=True)
class CallbackRecord:
    kind: str  # "retry" or "failure"
    task_id: str
    try_number: int
    exception: BaseException | None


CALLBACKS: list[CallbackRecord] = []
"""Filled by the task callbacks of the operator-test DAGs (they run in this process)."""


def _record(kind: str, context: Any) -> None:
    ti = context["ti"]
    CALLBACKS.append(CallbackRecord(kind, ti.task_id, ti.try_number, context.get("exception")))


def on_retry(context: Any) -> None:
    _record("retry", context)


def on_failure(context: Any) -> None:
    _record("failure", context)


def recording_default_args(**extra: Any) -> dict[str, Any]:
    """``default_args`` of a test DAG: each retry's and failure's exception handed back to the test
    (:data:`CALLBACKS`), retries without delay; ``extra`` adds to them (``retries=2``)."""
    return {
        "on_retry_callback": on_retry,
        "on_failure_callback": on_failure,
        "retry_delay": datetime.timedelta(seconds=0),
        **extra,
    }


@dataclasses.dataclass(frozen=True)
class TaskResult:
    state: str
    try_number: int


@dataclasses.dataclass
class DagTestRun:
    dag_id: str
    run_id: str
    state: str
    tasks: dict[tuple[str, int], TaskResult]
    xcoms: dict[tuple[str, int, str], Any]
    callbacks: list[CallbackRecord]

    def task(self, task_id: str, map_index: int = -1) -> TaskResult:
        return self.tasks[(task_id, map_index)]

    def xcom(self, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        return self.xcoms[(task_id, map_index, key)]

    def xcom_keys(self, task_id: str, map_index: int = -1) -> set[str]:
        return {k for (t, m, k) in self.xcoms if (t, m) == (task_id, map_index)}

    def callbacks_of(self, task_id: str) -> list[CallbackRecord]:
        return [c for c in self.callbacks if c.task_id == task_id]


def run_dag_test(dag: Any, run_conf: dict[str, Any] | None = None) -> DagTestRun:
    """``dag.test()`` (with ``run_conf``, the run's params), then the final state of every task
    instance and every XCom of the run."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    CALLBACKS.clear()
    dr = dag.test(run_conf=run_conf) if run_conf else dag.test()
    with create_session() as session:
        tis = dr.get_task_instances(session=session)
        tasks = {
            (ti.task_id, ti.map_index): TaskResult(str(getattr(ti.state, "value", ti.state)), ti.try_number)
            for ti in tis
        }
        xcoms = {
            (x.task_id, x.map_index, x.key): XComModel.deserialize_value(x)
            for x in session.scalars(XComModel.get_many(run_id=dr.run_id, dag_ids=dag.dag_id))
        }
        state = str(getattr(dr.state, "value", dr.state))
    return DagTestRun(dag.dag_id, dr.run_id, state, tasks, xcoms, list(CALLBACKS))
