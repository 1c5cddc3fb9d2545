"""DAGs of the benchmarks that need a real Airflow stack (benchmarks/stack.py points its dags folder here).

Sizes come from environment variables that the benchmark sets on every component of its stack,
so one file serves quick and full runs:

- ``bench_triggerer_load``: ``BENCH_LOAD_TASKS`` mapped ExecutorOperator instances on the local
  executor, each running ``sleep BENCH_LOAD_SLEEP`` (deferrable): load for a real triggerer.
- ``bench_deferrable`` / ``bench_blocking``: ``BENCH_DVB_TASKS`` mapped instances of
  ``sleep BENCH_DVB_SLEEP``, deferrable or not (``deferrable=False`` waits in the worker slot).
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import DAG

from airflow_provider.operators import ExecutorOperator

START = dt.datetime(2026, 1, 1)


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


LOAD_TASKS = _int("BENCH_LOAD_TASKS", 200)
LOAD_SLEEP = _int("BENCH_LOAD_SLEEP", 600)
DVB_TASKS = _int("BENCH_DVB_TASKS", 32)
DVB_SLEEP = _int("BENCH_DVB_SLEEP", 20)

with DAG(
    "bench_triggerer_load",
    schedule=None,
    start_date=START,
    catchup=False,
    max_active_tasks=max(16, LOAD_TASKS),
    tags=["benchmark"],
):
    ExecutorOperator.partial(
        task_id="sleep",
        command=["sleep", str(LOAD_SLEEP)],
        input_types={"i": int},
        deferrable=True,
        poll_interval=1.0,
    ).expand(inputs=[{"i": i} for i in range(LOAD_TASKS)])


for dag_id, deferrable in (("bench_deferrable", True), ("bench_blocking", False)):
    with DAG(
        dag_id,
        schedule=None,
        start_date=START,
        catchup=False,
        max_active_tasks=max(16, DVB_TASKS),
        tags=["benchmark"],
    ):
        ExecutorOperator.partial(
            task_id="sleep",
            command=["sleep", str(DVB_SLEEP)],
            input_types={"i": int},
            deferrable=deferrable,
            poll_interval=1.0,
        ).expand(inputs=[{"i": i} for i in range(DVB_TASKS)])
