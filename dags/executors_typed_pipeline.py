"""Typed inputs and outputs, consumed by a downstream ``@task`` through ordinary XComArgs.

``stats`` runs on the local executor and declares typed outputs; ``report`` is a plain Airflow
task that receives them. Each output is also its own XCom key (``mean``, ``count``, ...).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, task

from airflow_provider.operators import ExecutorOperator

STATS = """
import statistics, sys
from executors import task_io
inputs = task_io.read_inputs(sys.argv[1], sys.argv[3])
xs = inputs["values"]
task_io.write_outputs(
    sys.argv[2],
    {"count": len(xs), "mean": statistics.fmean(xs), "summary": {"min": min(xs), "max": max(xs)}},
    sys.argv[3],
)
"""

with DAG(
    dag_id="executors_typed_pipeline",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    tags=["executors", "example"],
) as dag:
    stats = ExecutorOperator(
        task_id="stats",
        executor_id="local",
        command=["python", "-c", STATS, "{{.input}}", "{{.outputPrefix}}", "{{.taskTemplatePath}}"],
        input_types={"values": list[float]},
        output_types={"count": int, "mean": float, "summary": dict[str, float]},
        inputs={"values": [1.0, 2.0, 3.0, 4.5]},
        poll_interval=1,
    )

    @task
    def report(count: int, mean: float, summary: dict[str, float]) -> str:
        return f"{count} values, mean {mean:.3f}, range {summary['min']}..{summary['max']}"

    report(stats.output["count"], stats.output["mean"], stats.output["summary"])
