"""A typed task on a Ray cluster: the same command as on the local executor, run as a Ray job.

Needs a Ray head whose dashboard (Jobs API) answers at ``RAY_DASHBOARD_ADDRESS`` (default
``http://127.0.0.1:8265``), e.g. ``ray start --head --dashboard-host 127.0.0.1
--include-dashboard true``, with this project installed in the Ray nodes' Python environment
(the command imports ``executors.runtime.task_io``). With a dashboard on this machine the default data dir
(a local folder) works; for a remote cluster the data dir must be an object store or a shared
mount (see "The Ray executor" in docs/executors.md).
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import DAG

from airflow_provider.operators import ExecutorOperator

RAY_ADDRESS = os.environ.get("RAY_DASHBOARD_ADDRESS", "http://127.0.0.1:8265")

SUM_OF_SQUARES = """
import os, sys
from executors import task_io
inputs = task_io.read_inputs(sys.argv[1], sys.argv[3])
squares = [x * x for x in inputs["xs"]]
print("squares:", squares, "on Ray job", os.environ.get("FLYTE_INTERNAL_TASK_NAME"))
task_io.write_outputs(sys.argv[2], {"total": sum(squares), "squares": squares}, sys.argv[3])
"""

with DAG(
    dag_id="executors_ray",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    tags=["executors", "example", "ray"],
) as dag:
    ExecutorOperator(
        task_id="sum_of_squares",
        executor_id="ray",
        command=["python", "-c", SUM_OF_SQUARES, "{{.input}}", "{{.outputPrefix}}", "{{.taskTemplatePath}}"],
        input_types={"xs": list[int]},
        output_types={"total": int, "squares": list[int]},
        inputs={"xs": [1, 2, 3, 4]},
        requests={"cpu": "500m", "memory": "128Mi"},
        executor_options={"address": RAY_ADDRESS},
        poll_interval=1,
    )
