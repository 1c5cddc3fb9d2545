"""TaskFlow: typed Python functions on an executor, no TaskTemplate in sight.

Each ``@task.executor`` function runs as its own local process; its annotations are its typed
interface, its return value flows to the next task through XCom. ``describe`` returns a
``NamedTuple``: one XCom per field. ``normalize`` is cached: rerun the DAG and it starts nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from airflow.sdk import DAG, task

from executors import Cache


class Summary(NamedTuple):
    count: int
    mean: float


with DAG(
    dag_id="executors_taskflow",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    tags=["executors", "example"],
) as dag:

    @task.executor(executor_id="local", poll_interval=0.5)
    def load(n: int) -> list[float]:
        return [float(i) for i in range(1, n + 1)]

    @task.executor(executor_id="local", cache=Cache(version="1"), poll_interval=0.5)
    def normalize(values: list[float], scale: float = 10.0) -> list[float]:
        top = max(values)
        return [scale * v / top for v in values]

    @task.executor(executor_id="local", poll_interval=0.5)
    def describe(values: list[float]) -> Summary:
        import statistics  # the function runs elsewhere: import inside it

        return Summary(count=len(values), mean=statistics.fmean(values))

    @task
    def report(count: int, mean: float) -> str:
        return f"{count} values, mean {mean:.2f}"

    summary = describe(normalize(load(4)))
    report(summary["count"], summary["mean"])
