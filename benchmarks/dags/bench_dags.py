"""DAGs of the benchmarks that need a real Airflow stack (benchmarks/stack.py points its dags folder here).

Sizes come from environment variables that the benchmark sets on every component of its stack,
so one file serves quick and full runs:

- ``bench_triggerer_load``: ``BENCH_LOAD_CHUNK`` ExecutorOperator tasks (unmapped, static arguments,
  ``start_from_trigger`` and ``end_from_trigger``: the scheduler defers them straight into the
  triggerer) on the local executor, each running ``sleep BENCH_LOAD_SLEEP``: load for a real
  triggerer, which triggers as many runs of it as it needs tasks.
- ``bench_triggerer_sleep`` / ``bench_triggerer_sleep_more``: the baseline for the same triggerer,
  ``BENCH_LOAD_TASKS`` / ``BENCH_LOAD_MORE`` mapped instances of a tiny operator that waits on
  Airflow's own bare sleeping trigger (``DateTimeTrigger``, what ``TimeDeltaSensor`` defers on)
  until 2100. It starts from the triggerer (``start_from_trigger``): the scheduler defers it
  without a worker, so its ramp costs no task process.
- ``bench_deferrable_trigger`` / ``bench_deferrable_end_trigger`` / ``bench_deferrable_worker`` /
  ``bench_blocking``: ``BENCH_DVB_TASKS`` unmapped tasks ``sleep_<i>`` of ``sleep BENCH_DVB_SLEEP``:
  deferrable, starting and ending in the triggerer; deferrable, starting in a worker and ending in
  the triggerer; deferrable, start and resume in a worker; blocking (``deferrable=False`` waits in
  the worker slot). Per-task arguments, not the global config.
- ``bench_docker_ours`` / ``bench_docker_operator`` (only when ``BENCH_DOCKER_HOST`` names an engine):
  ``BENCH_DOCKER_TASKS`` containers of ``sleep BENCH_DOCKER_SLEEP`` in the image
  ``BENCH_DOCKER_IMAGE``: on the provider's container executor (deferrable, started and ended in
  the triggerer), and on Airflow's own ``DockerOperator`` (it waits in its worker slot). Both keep
  their containers (the benchmark reads their start and end times, then removes them): ours carry
  the executor's owner labels, DockerOperator's the label ``bench.dag=bench_docker_operator``.
- ``bench_deferrable_airflow``: Airflow's own floor for the same run, with no provider code:
  ``BENCH_DVB_TASKS`` tasks of a tiny operator that starts from the triggerer on Airflow's
  ``TimeDeltaTrigger`` (``BENCH_DVB_SLEEP`` s) with ``end_from_trigger``: the scheduler's deferral,
  the triggerer's pick-up and its end of the task, around a bare wait.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
from typing import Any

from airflow.sdk import DAG, BaseOperator
from airflow.triggers.base import StartTriggerArgs

from airflow_provider.operators import ExecutorOperator

START = dt.datetime(2026, 1, 1)


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


LOAD_TASKS = _int("BENCH_LOAD_TASKS", 200)
LOAD_SLEEP = _int("BENCH_LOAD_SLEEP", 600)
LOAD_MORE = _int("BENCH_LOAD_MORE", 0)
LOAD_CHUNK = _int("BENCH_LOAD_CHUNK", 10)
DVB_TASKS = _int("BENCH_DVB_TASKS", 32)
DVB_SLEEP = _int("BENCH_DVB_SLEEP", 20)

# Far ahead, and fixed (a moment computed at parse time would change the DAG at every parse): the
# bare triggers never fire during a benchmark.
SLEEP_UNTIL = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)

END_IN_TRIGGERER = True
"""``end_from_trigger=True`` (also the config default), said explicitly."""


class BareDeferral(BaseOperator):
    """Defers on one of Airflow's own triggers straight from the scheduler (``start_from_trigger``):
    no provider code. A subclass names the trigger in its ``start_trigger_args``."""

    start_from_trigger = True

    def __init__(self, *, i: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.i = i

    def execute(self, context: Any) -> None:  # only if the scheduler did not defer it itself
        args = self.start_trigger_args
        assert args is not None
        module, _, name = args.trigger_cls.rpartition(".")
        trigger = getattr(importlib.import_module(module), name)(**(args.trigger_kwargs or {}))
        self.defer(trigger=trigger, method_name="execute_complete")

    def execute_complete(self, context: Any, event: Any = None) -> None:
        return None


class BareSleep(BareDeferral):
    """Sleeps on ``DateTimeTrigger`` until 2100 (it never fires during a benchmark)."""

    start_trigger_args = StartTriggerArgs(
        trigger_cls="airflow.providers.standard.triggers.temporal.DateTimeTrigger",
        trigger_kwargs={"moment": SLEEP_UNTIL, "end_from_trigger": False},
        next_method="execute_complete",
        next_kwargs=None,
        timeout=None,
    )


class BareWait(BareDeferral):
    """Waits ``DVB_SLEEP`` s on ``TimeDeltaTrigger``, started and ended in the triggerer."""

    start_trigger_args = StartTriggerArgs(
        trigger_cls="airflow.providers.standard.triggers.temporal.TimeDeltaTrigger",
        trigger_kwargs={"delta": dt.timedelta(seconds=DVB_SLEEP), "end_from_trigger": True},
        next_method="execute_complete",
        next_kwargs=None,
        timeout=None,
    )


with DAG(
    "bench_deferrable_airflow",
    schedule=None,
    start_date=START,
    catchup=False,
    max_active_tasks=max(16, DVB_TASKS),
    tags=["benchmark"],
):
    for i in range(DVB_TASKS):
        BareWait(task_id=f"sleep_{i}", i=i)

if LOAD_CHUNK > 0:
    with DAG(
        "bench_triggerer_load",
        schedule=None,
        start_date=START,
        catchup=False,
        max_active_runs=100_000,
        max_active_tasks=max(16, LOAD_CHUNK),
        tags=["benchmark"],
    ):
        # One task per instance, not .expand(): a mapped task starts in a worker (its arguments
        # differ per map index), an unmapped one with static arguments starts in the triggerer.
        # A small DAG run many times, not one DAG of thousands of tasks: Airflow's triggerer sends
        # the whole serialized DAG with each trigger that starts a task (``RunTrigger.dag_data``),
        # 2.8 MB per trigger for a 1,000-task DAG.
        for i in range(LOAD_CHUNK):
            ExecutorOperator(
                task_id=f"sleep_{i}",
                command=["sleep", str(LOAD_SLEEP)],
                input_types={"i": int},
                inputs={"i": i},
                deferrable=True,
                start_from_trigger=True,
                end_from_trigger=END_IN_TRIGGERER,
                # The provider's default poll interval (5 s; 30 s once the local executor's exit
                # watch watches the execution: its end wakes the trigger, the check is a safety net).
            )

for dag_id, count in (("bench_triggerer_sleep", LOAD_TASKS), ("bench_triggerer_sleep_more", LOAD_MORE)):
    if count <= 0:
        continue
    with DAG(
        dag_id,
        schedule=None,
        start_date=START,
        catchup=False,
        max_active_tasks=max(16, count),
        tags=["benchmark"],
    ):
        BareSleep.partial(task_id="sleep").expand(i=list(range(count)))


DVB_VARIANTS: dict[str, dict[str, Any]] = {
    # start and end in the triggerer: no worker turn at all
    "bench_deferrable_trigger": {
        "deferrable": True,
        "start_from_trigger": True,
        "end_from_trigger": END_IN_TRIGGERER,
    },
    # start in a worker, end in the triggerer
    "bench_deferrable_end_trigger": {
        "deferrable": True,
        "start_from_trigger": False,
        "end_from_trigger": END_IN_TRIGGERER,
    },
    # the worker path: a worker starts the execution and defers, a worker resumes
    "bench_deferrable_worker": {"deferrable": True, "start_from_trigger": False, "end_from_trigger": False},
    # the baseline: the worker waits in its slot
    "bench_blocking": {"deferrable": False, "start_from_trigger": False, "end_from_trigger": False},
}

for dag_id, arguments in DVB_VARIANTS.items():
    with DAG(
        dag_id,
        schedule=None,
        start_date=START,
        catchup=False,
        max_active_tasks=max(16, DVB_TASKS),
        tags=["benchmark"],
    ):
        # Unmapped tasks (static arguments): a mapped task always starts in a worker.
        for i in range(DVB_TASKS):
            ExecutorOperator(
                task_id=f"sleep_{i}",
                command=["sleep", str(DVB_SLEEP)],
                input_types={"i": int},
                inputs={"i": i},
                poll_interval=1.0,
                **arguments,
            )


DOCKER_HOST = os.environ.get("BENCH_DOCKER_HOST", "")
DOCKER_IMAGE = os.environ.get("BENCH_DOCKER_IMAGE", "")
DOCKER_TASKS = _int("BENCH_DOCKER_TASKS", 32)
DOCKER_SLEEP = _int("BENCH_DOCKER_SLEEP", 20)
DOCKER_LABEL = "bench.dag"

if DOCKER_HOST:
    from airflow.providers.docker.operators.docker import DockerOperator

    with DAG(
        "bench_docker_ours",
        schedule=None,
        start_date=START,
        catchup=False,
        max_active_tasks=max(16, DOCKER_TASKS),
        tags=["benchmark"],
    ):
        for i in range(DOCKER_TASKS):
            ExecutorOperator(
                task_id=f"sleep_{i}",
                executor_id="docker",
                executor_options={
                    "address": DOCKER_HOST,
                    "default_image": DOCKER_IMAGE,
                    "pull": "Never",
                    "on_finish": "keep",
                },
                command=["sleep", str(DOCKER_SLEEP)],
                input_types={"i": int},
                inputs={"i": i},
                poll_interval=1.0,
                deferrable=True,
                start_from_trigger=True,
                end_from_trigger=END_IN_TRIGGERER,
            )

    with DAG(
        "bench_docker_operator",
        schedule=None,
        start_date=START,
        catchup=False,
        max_active_tasks=max(16, DOCKER_TASKS),
        tags=["benchmark"],
    ):
        for i in range(DOCKER_TASKS):
            DockerOperator(
                task_id=f"sleep_{i}",
                docker_url=DOCKER_HOST,
                image=DOCKER_IMAGE,
                command=["sleep", str(DOCKER_SLEEP)],
                environment={"I": str(i)},
                labels={DOCKER_LABEL: "bench_docker_operator"},
                auto_remove="never",
            )
