"""A cached task: the second run with the same inputs finishes from the catalog, starting nothing.

``cache=Cache(version=...)`` makes the task *discoverable*: its outputs are stored in
the catalog under a key made of the task, its interface, the version and a hash of the inputs.
Trigger the DAG twice: the second ``expensive`` task logs ``cache: CACHE_HIT`` and pushes the same
outputs; bump the version when the code changes to start afresh.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, task

from airflow_provider.operators import ExecutorOperator
from executors import Cache

EXPENSIVE = """
import sys, time
from executors import task_io
n = task_io.read_inputs(sys.argv[1], sys.argv[3])["n"]
time.sleep(2)  # pretend this is expensive
task_io.write_outputs(sys.argv[2], {"total": sum(range(n))}, sys.argv[3])
"""

with DAG(
    dag_id="executors_cached",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    tags=["executors", "example"],
) as dag:
    expensive = ExecutorOperator(
        task_id="expensive",
        command=["python", "-c", EXPENSIVE, "{{.input}}", "{{.outputPrefix}}", "{{.taskTemplatePath}}"],
        input_types={"n": int},
        output_types={"total": int},
        inputs={"n": 1_000_000},
        cache=Cache(version="1"),
        poll_interval=1,
    )

    @task
    def show(total: int, cache_status: str) -> str:
        return f"total={total} ({cache_status})"

    show(expensive.output["total"], expensive.output["cache_status"])
