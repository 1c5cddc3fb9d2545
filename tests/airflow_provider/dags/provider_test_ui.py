"""Operator-test DAG for the Execution view and the Catalog page (tests/airflow_provider/ui/): a
cached typed task on the real local executor, run by ``dag.test()``, whose folder, events and
catalog entry the view then reads."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_provider.operators import ExecutorOperator
from executors.core.cache import Cache

SQUARE = """
import sys
from executors import task_io
inputs = task_io.read_inputs(sys.argv[1], sys.argv[3])
print("squaring", inputs["x"])
print("to stderr", file=sys.stderr)
task_io.write_outputs(sys.argv[2], {"square": inputs["x"] ** 2, "note": "<b>not bold</b>"}, sys.argv[3])
"""

with DAG(dag_id="provider_test_ui", schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False) as dag:
    ExecutorOperator(
        task_id="square",
        executor_id="local",
        command=["python", "-c", SQUARE, "{{.input}}", "{{.outputPrefix}}", "{{.taskTemplatePath}}"],
        input_types={"x": int},
        output_types={"square": int, "note": str},
        inputs={"x": 7},
        cache=Cache(version="1"),
        poll_interval=0.2,
    )
