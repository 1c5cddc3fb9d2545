"""Operator-test DAG: bad input, one task per culprit. Each must fail at once despite retries=2.

The two template files live under ``$AIRFLOW_HOME/provider-test-templates/``: the test writes the
truncated one before running the DAG; the other one never exists.
"""

from __future__ import annotations

import datetime as dt
import os

import pandas as pd
from airflow.sdk import DAG

from airflow_provider.operators import ExecutorOperator
from tests.airflow_provider.dagtest import recording_default_args

TEMPLATES = os.path.join(os.environ.get("AIRFLOW_HOME", "/nonexistent"), "provider-test-templates")
MISSING_TEMPLATE = os.path.join(TEMPLATES, "does-not-exist.pb")
TRUNCATED_TEMPLATE = os.path.join(TEMPLATES, "truncated.pb")

with DAG(
    dag_id="provider_test_bad_inputs",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    default_args=recording_default_args(retries=2),
) as dag:
    typed = {"command": ["python", "-c", "pass"], "input_types": {"count": int, "label": str}}
    ExecutorOperator(task_id="wrong_type", inputs={"count": "seven", "label": "x"}, **typed)
    ExecutorOperator(task_id="missing_input", inputs={"count": 7}, **typed)
    ExecutorOperator(task_id="unknown_input", inputs={"count": 7, "label": "x", "colour": "red"}, **typed)
    ExecutorOperator(
        task_id="unknown_executor", executor_id="no-such-executor", inputs={"count": 7, "label": "x"}, **typed
    )
    ExecutorOperator(task_id="missing_template", task_template=MISSING_TEMPLATE)
    ExecutorOperator(task_id="truncated_template", task_template=TRUNCATED_TEMPLATE)
    # A dataset input (inside a list) whose URI holds nothing: refused before the start, no retry.
    ExecutorOperator(
        task_id="missing_dataset",
        command=["python", "-c", "pass"],
        input_types={"frames": list[pd.DataFrame]},
        inputs={"frames": [os.path.dirname(TEMPLATES), "/nonexistent/frames/second"]},
    )
