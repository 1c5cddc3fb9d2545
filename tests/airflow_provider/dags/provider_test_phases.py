"""Operator-test DAG: one task per row of the phase table (see tests/airflow_provider/test_operators.py).

``succeeded`` and ``in_worker`` run on the real local executor; the failure rows use the scripted
executor, whose script is walked across the worker and the trigger. Callbacks hand each retry's and
failure's exception back to the test (tasks run inside the pytest process under ``dag.test()``).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_provider.operators import ExecutorOperator
from executors.engine.registry import default_registry
from tests.airflow_provider.dagtest import on_failure, on_retry
from tests.airflow_provider.scripted import SCRIPTED_ID, ScriptedExecutor

default_registry.register(ScriptedExecutor, source="tests/airflow_provider/dags/provider_test_phases.py")

SHOUT = """
import sys
from executors import task_io
inputs = task_io.read_inputs(sys.argv[1], sys.argv[3])
task_io.write_outputs(
    sys.argv[2], {"y": 2 * inputs["x"], "shout": [w.upper() for w in inputs["words"]]}, sys.argv[3]
)
"""
ARGS = ["{{.input}}", "{{.outputPrefix}}", "{{.taskTemplatePath}}"]


def scripted(task_id: str, script: dict[str, list[str]], **kwargs: object) -> ExecutorOperator:
    return ExecutorOperator(
        task_id=task_id,
        executor_id=SCRIPTED_ID,
        command=["never-run"],
        executor_options={"script": script},
        poll_interval=0.05,
        retry_delay=dt.timedelta(seconds=0),
        **kwargs,  # type: ignore[arg-type]
    )


with DAG(
    dag_id="provider_test_phases",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    default_args={"on_retry_callback": on_retry, "on_failure_callback": on_failure},
) as dag:
    for task_id, deferrable in (("succeeded", True), ("in_worker", False)):
        ExecutorOperator(
            task_id=task_id,
            executor_id="local",
            command=["python", "-c", SHOUT, *ARGS],
            input_types={"x": int, "words": list[str]},
            output_types={"y": int, "shout": list[str]},
            inputs={"x": 21, "words": ["a", "{{ dag.dag_id }}"]},
            poll_interval=0.2,
            deferrable=deferrable,
        )
    scripted("retryable", {"0": ["RUNNING", "RETRYABLE_FAILURE"], "*": ["RUNNING", "SUCCEEDED"]}, retries=1)
    scripted("permanent", {"*": ["RUNNING", "PERMANENT_FAILURE"]}, retries=2)
    scripted("unknown", {"0": ["RUNNING", "UNKNOWN"], "*": ["RUNNING", "SUCCEEDED"]}, retries=1)
    scripted("undefined", {"0": ["RUNNING", "UNDEFINED"], "*": ["RUNNING", "SUCCEEDED"]}, retries=1)
