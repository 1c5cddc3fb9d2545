"""Operator-test DAG for what Flyte tasks do that ours rarely did (see tests/airflow_provider/test_outputs.py):
an ``error.pb`` next to exit 0, a ``None`` output read downstream by key, a retry resuming from the
previous try's checkpoint. Real local executor, real task runner (``dag.test()``)."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, task

from airflow_provider.operators import ExecutorOperator
from tests.airflow_provider.dagtest import recording_default_args

ARGS = ["{{.input}}", "{{.outputPrefix}}", "{{.taskTemplatePath}}"]

# Writes error.pb and exits 0, as flytekit's pyflyte-execute does for a user exception.
ERROR_EXIT_0 = """
import os, sys
from executors import task_io
attempt = int(os.environ["FLYTE_ATTEMPT_NUMBER"])
if attempt == 0 or sys.argv[4] == "always":
    task_io.write_error(sys.argv[2], f"boom on attempt {attempt}", code="ValueError",
                        recoverable=sys.argv[4] == "recoverable")
    sys.exit(0)
"""

OPTIONAL_NONE = """
import sys
from executors import task_io
task_io.write_outputs(sys.argv[2], {"maybe": None, "count": 3}, sys.argv[3])
"""

# Attempt 0 saves a checkpoint and fails retryably; attempt 1 returns what it finds in the previous
# attempt's checkpoint folder ({{.prevCheckpointPrefix}}, the fifth argument).
CHECKPOINTED = """
import os, sys
from executors import task_io
out_ckpt, prev_ckpt = sys.argv[4], sys.argv[5]
if int(os.environ["FLYTE_ATTEMPT_NUMBER"]) == 0:
    os.makedirs(out_ckpt, exist_ok=True)
    with open(os.path.join(out_ckpt, "progress"), "w") as fh:
        fh.write("epoch 7")
    task_io.write_error(sys.argv[2], "preempted", recoverable=True)
    sys.exit(1)
with open(os.path.join(prev_ckpt, "progress")) as fh:
    task_io.write_outputs(sys.argv[2], {"resumed_from": fh.read(), "prev": prev_ckpt}, sys.argv[3])
"""

with DAG(
    dag_id="provider_test_outputs",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    default_args=recording_default_args(),
) as dag:
    for task_id, mode, retries in (
        ("error_pb_no_outputs", "always", 2),
        ("error_pb_with_outputs", "always", 2),
        ("error_pb_recoverable", "recoverable", 1),
    ):
        ExecutorOperator(
            task_id=task_id,
            command=["python", "-c", ERROR_EXIT_0, *ARGS, mode],
            input_types={},
            output_types={"y": int} if task_id == "error_pb_with_outputs" else {},
            poll_interval=0.2,
            retries=retries,
        )

    @task
    def after_error_pb() -> str:
        return "must not run"

    after_error_pb.override(task_id="after_error_pb")().set_upstream(dag.get_task("error_pb_no_outputs"))

    optional = ExecutorOperator(
        task_id="optional_none",
        command=["python", "-c", OPTIONAL_NONE, *ARGS],
        output_types={"maybe": int | None, "count": int},
        poll_interval=0.2,
    )

    @task
    def read_by_key(maybe: int | None, count: int) -> str:
        return f"maybe={maybe!r} count={count!r}"

    read_by_key(optional.output["maybe"], optional.output["count"])

    ExecutorOperator(
        task_id="checkpointed",
        command=[
            "python",
            "-c",
            CHECKPOINTED,
            *ARGS,
            "{{.checkpointOutputPrefix}}",
            "{{.prevCheckpointPrefix}}",
        ],
        output_types={"resumed_from": str, "prev": str},
        poll_interval=0.2,
        retries=1,
    )
