"""Operator-test DAG for OpenLineage (see tests/airflow_provider/test_lineage.py): a DataFrame with
declared columns (cached), a file, and a task reading both."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import pandas as pd
from airflow.sdk import DAG, task

from executors import Cache, File
from tests.airflow_provider.dagtest import recording_default_args

with DAG(
    dag_id="provider_test_lineage",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    default_args=recording_default_args(),
) as dag:

    @task.executor(poll_interval=0.2, cache=Cache(version="lineage-1"))
    def make_frame(n: int) -> Annotated[pd.DataFrame, {"a": int}]:
        import pandas

        return pandas.DataFrame({"a": list(range(n))})

    @task.executor(poll_interval=0.2)
    def write_report(title: str) -> File:
        with open("report.txt", "w") as out:
            out.write(title)
        return File("report.txt")

    @task.executor(poll_interval=0.2)
    def summarize(report: File, frame: pd.DataFrame) -> str:
        return f"{report.read_text()}: {int(frame['a'].sum())}"

    summarize(write_report("total"), make_frame(4))
