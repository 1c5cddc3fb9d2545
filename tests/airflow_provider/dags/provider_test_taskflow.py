"""Operator-test DAG for ``@task.executor`` (see tests/airflow_provider/test_decorators.py)."""

from __future__ import annotations

import datetime as dt
from typing import TypedDict

from airflow.sdk import DAG, task

from tests.airflow_provider.dagtest import on_failure, on_retry


class Split(TypedDict):
    head: int
    tail: list[int]


with DAG(
    dag_id="provider_test_taskflow",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    default_args={
        "on_retry_callback": on_retry,
        "on_failure_callback": on_failure,
        "retry_delay": dt.timedelta(seconds=0),
    },
) as dag:

    @task.executor(poll_interval=0.2)
    def square(x: int) -> int:
        return x * x

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    total(square.expand(x=[1, 2, 3]))

    @task.executor(poll_interval=0.2)
    def split(values: list[int]) -> Split:
        return Split(head=values[0], tail=values[1:])

    split([5, 6, 7])

    @task.executor(poll_interval=0.2, retries=3)
    def bad_value(x: int) -> int:
        raise ValueError(f"x={x} is not acceptable")

    bad_value(1)

    @task.executor(poll_interval=0.2, retries=1)
    def flaky(x: int) -> int:
        import os

        from executors.task_io import RecoverableError

        if os.environ["FLYTE_ATTEMPT_NUMBER"] == "0":
            raise RecoverableError("busy, try again")
        return x + 100

    flaky(1)

    @task.executor(poll_interval=0.2, retries=1, retry_on=(ConnectionError,))
    def network(x: int) -> int:
        import os

        if os.environ["FLYTE_ATTEMPT_NUMBER"] == "0":
            raise ConnectionRefusedError("backend down")  # a subclass of the listed ConnectionError
        return x

    network(7)
