"""Conformance DAG: a subset of the flytekit cases on the container executor (a real Podman engine).

The same ``task.pb`` files and inputs as ``conformance_local``, run unchanged: each in the image
flytekit serialized it with (``cases.CONFORMANCE_IMAGE``), which has flytekit and the corpus inside,
as a Flyte task image does, so no ``environment=`` is given. The engine's address comes from
``$CONFORMANCE_DOCKER_ADDRESS``; without it the DAG is empty.
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import DAG

from tests.airflow_provider.dagtest import recording_default_args
from tests.conformance.airflow_side import case_operator, load_index, selected
from tests.conformance.cases import DOCKER_ADDRESS_ENV, DOCKER_CASES, DOCKER_DAG_ID

with DAG(
    dag_id=DOCKER_DAG_ID,
    schedule=None,
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    default_args=recording_default_args(),
) as dag:
    index = load_index()
    address = os.environ.get(DOCKER_ADDRESS_ENV)
    if index and address:
        for name in filter(selected, DOCKER_CASES):
            case_operator(
                name,
                index[name],
                executor_id="docker",
                executor_options={"address": address, "pull": "Never", "on_finish": "delete"},
                environment={},
            )
