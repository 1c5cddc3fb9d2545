"""Dynamic task mapping: one execution per input set, with ``.expand()``.

Each mapped instance gets its own execution folder (``.../<task_id>/<map_index>/<try>/``) and its
own XComs; the downstream task receives the list of return values.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, task

from airflow_provider.operators import ExecutorOperator

SQUARE = """
import sys
from executors import task_io
x = task_io.read_inputs(sys.argv[1], sys.argv[3])["x"]
task_io.write_outputs(sys.argv[2], {"square": x * x}, sys.argv[3])
"""

with DAG(
    dag_id="executors_mapped",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    tags=["executors", "example"],
) as dag:
    squares = ExecutorOperator.partial(
        task_id="square",
        executor_id="local",
        command=["python", "-c", SQUARE, "{{.input}}", "{{.outputPrefix}}", "{{.taskTemplatePath}}"],
        input_types={"x": int},
        output_types={"square": int},
        poll_interval=1,
    ).expand(inputs=[{"x": 1}, {"x": 2}, {"x": 3}])

    @task
    def total(results: list[dict[str, int]]) -> int:
        return sum(r["square"] for r in results)

    total(squares.output)
