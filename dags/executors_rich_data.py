"""Rich data: a dataclass, a DataFrame and a file passed between ``@task.executor`` functions.

``load`` returns a ``Batch`` dataclass (nested, with a date); ``frame`` turns it into a pandas
DataFrame, which the runner writes as parquet next to the execution (XCom holds a reference, never
the rows); ``report`` reads it back and writes a CSV file it returns as a ``File``; a plain ``@task``
at the end opens that file on the Airflow side. Needs the ``dataframes`` extra (pandas, pyarrow).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd
from airflow.sdk import DAG, task

from executors import File


@dataclasses.dataclass
class Reading:
    sensor: str
    value: float


@dataclasses.dataclass
class Batch:
    day: dt.date
    readings: list[Reading]


with DAG(
    dag_id="executors_rich_data",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    tags=["executors", "example"],
) as dag:

    @task.executor(executor_id="local", poll_interval=0.5)
    def load(day: dt.date) -> Batch:
        readings = [Reading(f"s{i % 3}", 1.5 * i) for i in range(9)]
        return Batch(day, readings)

    @task.executor(executor_id="local", poll_interval=0.5)
    def frame(batch: Batch) -> pd.DataFrame:
        import pandas

        rows = [{"sensor": r.sensor, "value": r.value, "day": batch.day.isoformat()} for r in batch.readings]
        return pandas.DataFrame(rows)

    @task.executor(executor_id="local", poll_interval=0.5)
    def report(readings: pd.DataFrame) -> File:
        means = readings.groupby("sensor")["value"].mean().round(2)
        means.to_csv("means.csv")  # written locally; the runner uploads it
        return File("means.csv")

    @task
    def show(means: str) -> str:
        from executors import File as StoredFile

        return StoredFile(means).read_text().strip().replace("\n", "; ")

    show(report(frame(load(dt.date(2026, 3, 1)))))
