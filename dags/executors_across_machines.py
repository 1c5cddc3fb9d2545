"""Across machines: a task on a Ray worker node, the next one on the Airflow worker, no shared folder.

What must be in place (docs/across-machines.md says why each):

- ``[provider_executors] data_dir`` on an object store, e.g. ``s3://my-bucket/executions`` (the
  catalog goes beside it), with ``pip install "airflow-provider-executors[s3]"``;
- the store's credentials in every Airflow process (worker, triggerer, api-server) and in the Ray
  nodes' own environment, in the usual variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
  ``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL`` for a store other than AWS);
- a Ray cluster whose dashboard answers at ``RAY_DASHBOARD_ADDRESS`` and whose worker nodes carry
  the custom resource named by ``RAY_WORKER_RESOURCE`` (``ray start --address ... --resources
  '{"batch_node": 1}'``), with this project installed in the nodes' Python environment.

``partial_sums`` runs on a Ray worker node (placed there by the resource) and is cached in the
catalog on the store; ``report`` runs on the local executor of the Airflow worker and reads the Ray
task's outputs from XCom. Neither sees the other's disk: inputs, outputs and the catalog entry are
objects on the store.
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import DAG

from airflow_provider.operators import ExecutorOperator
from executors import Cache

RAY_ADDRESS = os.environ.get("RAY_DASHBOARD_ADDRESS", "http://127.0.0.1:8265")
WORKER_RESOURCE = os.environ.get("RAY_WORKER_RESOURCE", "batch_node")

PARTIAL_SUMS = """
import os, socket, sys
from executors import task_io
xs = task_io.read_inputs(sys.argv[1], sys.argv[3])["xs"]
sums = [sum(xs[: i + 1]) for i in range(len(xs))]
print("partial sums", sums, "on", os.environ.get("EXECUTORS_TEST_NODE") or socket.gethostname())
task_io.write_outputs(sys.argv[2], {"sums": sums, "total": sums[-1]}, sys.argv[3])
"""

REPORT = """
import sys
from executors import task_io
inputs = task_io.read_inputs(sys.argv[1], sys.argv[3])
line = f"{len(inputs['sums'])} sums, total {inputs['total']}"
task_io.write_outputs(sys.argv[2], {"line": line}, sys.argv[3])
"""
ARGS = ["{{.input}}", "{{.outputPrefix}}", "{{.taskTemplatePath}}"]

with DAG(
    dag_id="executors_across_machines",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    tags=["executors", "example", "ray"],
) as dag:
    sums = ExecutorOperator(
        task_id="partial_sums",
        executor_id="ray",
        command=["python", "-c", PARTIAL_SUMS, *ARGS],
        input_types={"xs": list[int]},
        output_types={"sums": list[int], "total": int},
        inputs={"xs": [3, 1, 4, 1, 5, 9, 2, 6]},
        cache=Cache(version="1"),
        executor_options={"address": RAY_ADDRESS, "entrypoint_resources": {WORKER_RESOURCE: 1}},
        poll_interval=1,
    )
    ExecutorOperator(
        task_id="report",
        command=["python", "-c", REPORT, *ARGS],
        input_types={"sums": list[int], "total": int},
        output_types={"line": str},
        inputs={"sums": sums.output["sums"], "total": sums.output["total"]},
        poll_interval=1,
    )
