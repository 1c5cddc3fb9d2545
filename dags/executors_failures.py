"""Retry vs no retry: the task's own error document decides.

``flaky`` writes a RECOVERABLE error on its first try: Airflow retries it (a *new* execution) and
the second try succeeds. ``broken`` writes a NON_RECOVERABLE error: the task fails at once, whatever
``retries`` says. A plain crash (non-zero exit, no error document) counts as recoverable.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_provider.operators import ExecutorOperator

FLAKY = """
import os, sys
from executors import task_io
if os.environ["FLYTE_ATTEMPT_NUMBER"] == "0":
    task_io.write_error(sys.argv[2], "the service was busy, try again", code="Busy", recoverable=True)
    sys.exit(1)
task_io.write_outputs(sys.argv[2], {"attempt": int(os.environ["FLYTE_ATTEMPT_NUMBER"])}, sys.argv[3])
"""

BROKEN = """
import sys
from executors import task_io
task_io.write_error(sys.argv[2], "the input file is malformed", code="BadInput", recoverable=False)
sys.exit(1)
"""

ARGS = ["{{.input}}", "{{.outputPrefix}}", "{{.taskTemplatePath}}"]

with DAG(
    dag_id="executors_failures",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    tags=["executors", "example"],
) as dag:
    ExecutorOperator(
        task_id="flaky",
        command=["python", "-c", FLAKY, *ARGS],
        output_types={"attempt": int},
        retries=1,
        retry_delay=dt.timedelta(seconds=0),
        poll_interval=1,
    )
    ExecutorOperator(
        task_id="broken",
        command=["python", "-c", BROKEN, *ARGS],
        retries=3,
        retry_delay=dt.timedelta(seconds=0),
        poll_interval=1,
    )
