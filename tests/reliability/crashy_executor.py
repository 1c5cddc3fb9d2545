"""A test-only executor: the local executor whose first try kills its own Airflow worker.

``CrashyLocalExecutor`` (id ``crashy-local``) starts the task like the local executor, then, on the
first try only (Flyte ``retry_attempt == 0``, Airflow try 1) and once the local process runs, it
SIGKILLs the process it runs in: the Airflow task process, between ``start_task`` and the
deferral, the worst moment for a lost worker. Just before, it appends one line to
``<task folder>/crashes.txt`` (``<epoch seconds> <pid> <generated name>``) so the test can time how
long Airflow takes to notice.

The stack's processes find it through an entry point (``airflow_provider_executors.executors``)
of a tiny ``*.dist-info`` the suite puts on their ``PYTHONPATH`` (see conftest.py): the worker
(which starts and later adopts the execution) and the triggerer (which resumes the trigger, and
imports trigger classes, never DAG files) both need the id.
"""

from __future__ import annotations

import os
import signal
import time

from flyteidl.core import literals_pb2, tasks_pb2

from executors import TaskContext, TaskPhase, TaskStatus
from executors.backends.local import LocalExecutor

CRASH_LOG = "crashes.txt"


class CrashyLocalExecutor(LocalExecutor):
    id = "crashy-local"

    async def start_task(
        self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate, inputs: literals_pb2.LiteralMap
    ) -> TaskStatus:
        status = await super().start_task(task_ctx, task, inputs)
        if task_ctx.task_execution_id.id.retry_attempt == 0 and status.phase is TaskPhase.RUNNING:
            # <data_dir>/<dag>/<run>/<task>/<try>: the crash log goes beside the try folders.
            task_folder = os.path.dirname(self.execution_dir(task_ctx).rstrip("/"))
            with open(os.path.join(task_folder, CRASH_LOG), "a") as fh:
                fh.write(f"{time.time():.3f} {os.getpid()} {task_ctx.generated_name}\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.kill(os.getpid(), signal.SIGKILL)
        return status
