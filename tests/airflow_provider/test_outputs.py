"""What a Flyte task does that must reach Airflow unchanged (DAG: dags/provider_test_outputs.py):

* ``error.pb`` is authoritative whatever the exit code (flytekit's ``pyflyte-execute`` writes it
  and exits 0): non-recoverable fails without retry, recoverable retries, a task with no declared
  outputs that wrote one fails (its downstream does not run);
* a ``None`` output reaches a downstream task read by its own key (``op.output["k"]``);
* a retry gets the previous try's checkpoint folder as ``{{.prevCheckpointPrefix}}``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider import config
from airflow_provider.identity import execution_folder
from tests.airflow_provider import dagtest
from tests.airflow_provider.dagtest import DagTestRun


@pytest.fixture(scope="module")
def run(test_dags: Path) -> DagTestRun:
    module = dagtest.load_dag_module(test_dags / "provider_test_outputs.py")
    return dagtest.run_dag_test(module.dag)


@pytest.mark.parametrize("task_id", ["error_pb_no_outputs", "error_pb_with_outputs"])
def test_error_pb_with_exit_0_fails_without_retry(run: DagTestRun, task_id: str) -> None:
    assert run.task(task_id).state == "failed"
    assert run.task(task_id).try_number == 1, "a non-recoverable error.pb must not be retried"
    [failure] = run.callbacks_of(task_id)
    assert isinstance(failure.exception, AirflowFailException)
    assert "[user:ValueError] boom on attempt 0" in str(failure.exception)


def test_downstream_of_a_failed_no_output_task_does_not_run(run: DagTestRun) -> None:
    assert run.task("after_error_pb").state == "upstream_failed"


def test_recoverable_error_pb_with_exit_0_is_retried(run: DagTestRun) -> None:
    assert run.task("error_pb_recoverable").state == "success"
    assert run.task("error_pb_recoverable").try_number == 2
    [retry] = run.callbacks_of("error_pb_recoverable")
    assert retry.kind == "retry" and isinstance(retry.exception, AirflowException)
    assert "boom on attempt 0" in str(retry.exception)


def test_a_none_output_reaches_downstream_by_its_own_key(run: DagTestRun) -> None:
    assert run.task("optional_none").state == "success"
    assert run.xcom("optional_none") == {"maybe": None, "count": 3}
    assert run.task("read_by_key").state == "success"
    assert run.xcom("read_by_key") == "maybe=None count=3"


def test_a_retry_resumes_from_the_previous_checkpoint(run: DagTestRun) -> None:
    assert run.task("checkpointed").state == "success"
    assert run.task("checkpointed").try_number == 2
    first_try = execution_folder(
        config.data_dir(), dag_id="provider_test_outputs", run_id=run.run_id, task_id="checkpointed",
        map_index=-1, try_number=1,
    )  # fmt: skip
    assert run.xcom("checkpointed") == {"resumed_from": "epoch 7", "prev": f"{first_try}/checkpoint"}
