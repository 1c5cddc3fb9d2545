"""DAGs of the benchmarks that need a real Airflow stack (benchmarks/stack.py points its dags folder here).

Sizes come from environment variables that the benchmark sets on every component of its stack,
so one file serves quick and full runs:

- ``bench_triggerer_load``: ``BENCH_LOAD_TASKS`` mapped ExecutorOperator instances on the local
  executor, each running ``sleep BENCH_LOAD_SLEEP`` (deferrable): load for a real triggerer.
- ``bench_triggerer_load_more``: ``BENCH_LOAD_MORE`` more of the same (the second step of the load).
- ``bench_triggerer_sleep`` / ``bench_triggerer_sleep_more``: the baseline for the same triggerer,
  ``BENCH_LOAD_TASKS`` / ``BENCH_LOAD_MORE`` mapped instances of a tiny operator that waits on
  Airflow's own bare sleeping trigger (``DateTimeTrigger``, what ``TimeDeltaSensor`` defers on)
  until 2100. It starts from the triggerer (``start_from_trigger``): the scheduler defers it
  without a worker, so its ramp costs no task process.
- ``bench_deferrable`` / ``bench_blocking``: ``BENCH_DVB_TASKS`` mapped instances of
  ``sleep BENCH_DVB_SLEEP``, deferrable or not (``deferrable=False`` waits in the worker slot).
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import DAG, BaseOperator
from airflow.triggers.base import StartTriggerArgs

from airflow_provider.operators import ExecutorOperator

START = dt.datetime(2026, 1, 1)


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


LOAD_TASKS = _int("BENCH_LOAD_TASKS", 200)
LOAD_SLEEP = _int("BENCH_LOAD_SLEEP", 600)
LOAD_MORE = _int("BENCH_LOAD_MORE", 0)
DVB_TASKS = _int("BENCH_DVB_TASKS", 32)
DVB_SLEEP = _int("BENCH_DVB_SLEEP", 20)

# Far ahead, and fixed (a moment computed at parse time would change the DAG at every parse): the
# bare triggers never fire during a benchmark.
SLEEP_UNTIL = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


class BareSleep(BaseOperator):
    """Defers on ``DateTimeTrigger`` straight from the scheduler (``start_from_trigger``)."""

    start_trigger_args = StartTriggerArgs(
        trigger_cls="airflow.providers.standard.triggers.temporal.DateTimeTrigger",
        trigger_kwargs={"moment": SLEEP_UNTIL, "end_from_trigger": False},
        next_method="execute_complete",
        next_kwargs=None,
        timeout=None,
    )
    start_from_trigger = True

    def __init__(self, *, i: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.i = i

    def execute(self, context: Any) -> None:  # only if the scheduler did not defer it itself
        self.defer(trigger=DateTimeTrigger(moment=SLEEP_UNTIL), method_name="execute_complete")

    def execute_complete(self, context: Any, event: Any = None) -> None:
        return None


for dag_id, count in (("bench_triggerer_load", LOAD_TASKS), ("bench_triggerer_load_more", LOAD_MORE)):
    if count <= 0:
        continue
    with DAG(
        dag_id,
        schedule=None,
        start_date=START,
        catchup=False,
        max_active_tasks=max(16, count),
        tags=["benchmark"],
    ):
        ExecutorOperator.partial(
            task_id="sleep",
            command=["sleep", str(LOAD_SLEEP)],
            input_types={"i": int},
            deferrable=True,
            poll_interval=1.0,
        ).expand(inputs=[{"i": i} for i in range(count)])

for dag_id, count in (("bench_triggerer_sleep", LOAD_TASKS), ("bench_triggerer_sleep_more", LOAD_MORE)):
    if count <= 0:
        continue
    with DAG(
        dag_id,
        schedule=None,
        start_date=START,
        catchup=False,
        max_active_tasks=max(16, count),
        tags=["benchmark"],
    ):
        BareSleep.partial(task_id="sleep").expand(i=list(range(count)))


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
