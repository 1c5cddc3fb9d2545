"""Tasks in their own image: a command and a ``@task.executor`` function on the container executor.

Needs a Docker Engine API: Docker, or Podman's compatible service (``podman system service
--time=0 unix:///run/podman/podman.sock``), at ``DOCKER_HOST`` (default
``unix:///var/run/docker.sock``), and an image with Python and this project installed, named by
``EXECUTORS_DOCKER_IMAGE`` (the function's command is ``python -m executors.runtime.runner``). The
engine must run on this machine: the execution folders are bind-mounted into the containers (see
docs/docker.md).
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import DAG, task

from airflow_provider.operators import ExecutorOperator

IMAGE = os.environ.get("EXECUTORS_DOCKER_IMAGE", "localhost/executors-test:latest")
DOCKER = {"address": os.environ.get("DOCKER_HOST"), "default_image": IMAGE, "on_finish": "delete"}

RELEASE = """
import sys
from executors import task_io
release = dict(line.rstrip().split("=", 1) for line in open("/etc/os-release") if "=" in line)
print("running in", release["PRETTY_NAME"])
task_io.write_outputs(sys.argv[1], {"os": release["PRETTY_NAME"].strip('"')}, sys.argv[2])
"""

with DAG(
    dag_id="executors_docker",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    tags=["executors", "example", "docker"],
) as dag:
    where = ExecutorOperator(
        task_id="which_os",
        executor_id="docker",
        command=["python", "-c", RELEASE, "{{.outputPrefix}}", "{{.taskTemplatePath}}"],
        output_types={"os": str},
        limits={"cpu": "1", "memory": "256Mi"},
        executor_options=DOCKER,
        poll_interval=0.5,
    )

    @task.executor(executor_id="docker", executor_options=DOCKER, poll_interval=0.5)
    def greet(os_name: str) -> str:
        import platform

        return f"hello from Python {platform.python_version()} on {os_name}"

    greet(where.output["os"])
