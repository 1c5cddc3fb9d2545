"""Conformance DAG: a subset of the flytekit cases on the Ray executor (the session's private head).

The same ``task.pb`` files and inputs as ``conformance_local``; the dashboard address comes from
``$CONFORMANCE_RAY_ADDRESS`` and ``pyflyte-execute``'s PATH reaches the Ray job through
``environment=`` (the job's ``runtime_env``). Without both variables the DAG is empty.
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import DAG

from tests.airflow_provider.dagtest import recording_default_args
from tests.conformance.airflow_side import case_operator, load_index, selected
from tests.conformance.cases import RAY_ADDRESS_ENV, RAY_CASES, RAY_DAG_ID

with DAG(
    dag_id=RAY_DAG_ID,
    schedule=None,
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    default_args=recording_default_args(),
) as dag:
    index = load_index()
    address = os.environ.get(RAY_ADDRESS_ENV)
    if index and address:
        for name in filter(selected, RAY_CASES):
            case_operator(name, index[name], executor_id="ray", executor_options={"address": address})
