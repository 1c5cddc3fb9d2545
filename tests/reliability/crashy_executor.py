"""Test-only executors whose first try kills its own Airflow worker: the local and the container one.

``CrashyLocalExecutor`` (id ``crashy-local``) and ``CrashyDockerExecutor`` (id ``crashy-docker``)
start the task like the executor they extend, then, on the first try only (Flyte
``retry_attempt == 0``, Airflow try 1) and once the execution runs, they SIGKILL the process they
run in: the Airflow task process, between ``start_task`` and the deferral, the worst moment for a
lost worker. Just before, they append one line to ``<task folder>/crashes.txt`` (``<epoch seconds>
<pid> <generated name>``) so the test can time how long Airflow takes to notice.

The stack's processes find them through entry points (``airflow_provider_executors.executors``)
of a tiny ``*.dist-info`` the suite puts on their ``PYTHONPATH`` (see conftest.py): the worker
(which starts and later adopts the execution) and the triggerer (which resumes the trigger, and
imports trigger classes, never DAG files) both need the ids.
"""

from __future__ import annotations

import os
import signal
import time

from flyteidl.core import literals_pb2, tasks_pb2

from executors import TaskContext, TaskPhase, TaskStatus
from executors.backends.docker import DockerExecutor
from executors.backends.local import LocalExecutor
from executors.data.storage import local_path

CRASH_LOG = "crashes.txt"


def crash_after_first_start(task_ctx: TaskContext, status: TaskStatus) -> None:
    """SIGKILL this process if this is try 1 and its execution runs (a no-op otherwise)."""
    if task_ctx.task_execution_id.id.retry_attempt != 0 or status.phase is not TaskPhase.RUNNING:
        return
    # <data_dir>/<dag>/<run>/<task>/<try>: the crash log goes beside the try folders.
    task_folder = os.path.dirname(local_path(task_ctx.data_dir).rstrip("/"))
    with open(os.path.join(task_folder, CRASH_LOG), "a") as fh:
        fh.write(f"{time.time():.3f} {os.getpid()} {task_ctx.generated_name}\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.kill(os.getpid(), signal.SIGKILL)


class CrashyLocalExecutor(LocalExecutor):
    id = "crashy-local"

    async def start_task(
        self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate, inputs: literals_pb2.LiteralMap
    ) -> TaskStatus:
        status = await super().start_task(task_ctx, task, inputs)
        crash_after_first_start(task_ctx, status)
        return status


class CrashyDockerExecutor(DockerExecutor):
    id = "crashy-docker"

    async def start_task(
        self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate, inputs: literals_pb2.LiteralMap
    ) -> TaskStatus:
        status = await super().start_task(task_ctx, task, inputs)
        crash_after_first_start(task_ctx, status)
        return status
