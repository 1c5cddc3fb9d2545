"""Hello world: a typed task on the local executor (the embedded default, nothing else to run).

The command is plain Python reading ``inputs.pb`` and writing ``outputs.pb`` through Flyte's
placeholders; the greeting lands in XCom under ``greeting`` (and in the return value).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_provider.operators import ExecutorOperator

GREET = """
import sys
from executors import task_io
inputs = task_io.read_inputs(sys.argv[1], sys.argv[3])
greeting = f"Hello, {inputs['name']}! ({inputs['times']} times)"
print(greeting)
task_io.write_outputs(sys.argv[2], {"greeting": greeting, "length": len(greeting)}, sys.argv[3])
"""

with DAG(
    dag_id="executors_hello",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    tags=["executors", "example"],
) as dag:
    ExecutorOperator(
        task_id="hello",
        executor_id="local",
        command=["python", "-c", GREET, "{{.input}}", "{{.outputPrefix}}", "{{.taskTemplatePath}}"],
        input_types={"name": str, "times": int},
        output_types={"greeting": str, "length": int},
        inputs={"name": "Airflow", "times": 3},
        poll_interval=1,
    )
