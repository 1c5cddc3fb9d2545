"""DAGs of the reliability suite (tests/reliability): one real Airflow stack on PostgreSQL.

Every task runs ``WAITER`` (plain Python, through the provider). It leaves evidence in the folder
the test passes as ``dag_run.conf["dir"]`` (environment ``REL_DIR``):

- ``starts.txt``: one line per start of the command, across tries, restarts and map indexes:
  ``<key> <pid> <child pid or 0> <epoch seconds> attempt=<Flyte attempt>``;
- it waits for a ``release`` file in that folder when ``REL_GATE=1`` (so that every execution is
  still running when the test acts, however slow the machine), then sleeps ``REL_SLEEP`` seconds;
- it prints ``started <key>`` once it has started and ``released`` once released (its output);
- with ``REL_CHILD=1`` it starts a ``sleep`` child first: a process tree, as real tasks have.

Its outputs are ``{"key": <its input>, "pid": <its pid>}``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG

from airflow_provider.operators import ExecutorOperator

PLACEHOLDERS = ["{{.input}}", "{{.outputPrefix}}", "{{.taskTemplatePath}}"]
COMMON: dict[str, Any] = {
    "schedule": None,
    "start_date": dt.datetime(2026, 1, 1),
    "catchup": False,
    "tags": ["reliability"],
}
FANOUT = 50
RAY_CONN_ID = "reliability_ray"

WAITER = """
import os, subprocess, sys, time
from executors import task_io
inputs = task_io.read_inputs(sys.argv[1], sys.argv[3])
folder = os.environ["REL_DIR"]
child = subprocess.Popen(["sleep", "900"]) if os.environ.get("REL_CHILD") == "1" else None
line = "%s %d %d %.3f attempt=%s" % (
    inputs["key"], os.getpid(), child.pid if child else 0, time.time(), os.environ.get("FLYTE_ATTEMPT_NUMBER")
)
with open(os.path.join(folder, "starts.txt"), "a") as fh:
    fh.write(line + "\\n")
print("started", inputs["key"], flush=True)
deadline = time.time() + 900
while os.environ.get("REL_GATE") == "1" and not os.path.exists(os.path.join(folder, "release")):
    if time.time() > deadline:
        sys.exit("never released")
    time.sleep(0.2)
print("released", flush=True)
time.sleep(float(os.environ.get("REL_SLEEP", "0")))
if child is not None:
    child.kill()
    child.wait()
task_io.write_outputs(sys.argv[2], {"key": inputs["key"], "pid": os.getpid()}, sys.argv[3])
"""


def waiter(**env: str) -> dict[str, Any]:
    """The ExecutorOperator arguments of a WAITER task (``env``: its REL_* settings)."""
    return {
        "command": ["python", "-c", WAITER, *PLACEHOLDERS],
        "input_types": {"key": str},
        "output_types": {"key": str, "pid": int},
        "environment": {"REL_DIR": "{{ dag_run.conf['dir'] }}", **env},
        "poll_interval": 1,
    }


# 1. Fifty deferred executions, then the triggerer is SIGKILLed: fifty successes, fifty starts.
with DAG(dag_id="rel_fanout", max_active_tasks=2 * FANOUT, **COMMON):
    ExecutorOperator.partial(
        task_id="sleeper",
        executor_id="local",
        **waiter(REL_GATE="1", REL_SLEEP="{{ dag_run.conf.get('sleep', '20') }}"),
    ).expand(inputs=[{"key": f"m{i:02d}"} for i in range(FANOUT)])


# 2. The worker dies (SIGKILL) right after start_task, before the deferral: try 2 adopts. Started
# in a worker on purpose (start_from_trigger=False): that worker is what dies.
with DAG(dag_id="rel_worker_crash", **COMMON):
    ExecutorOperator(
        task_id="crashy",
        executor_id="crashy-local",
        inputs={"key": "crashy"},
        start_from_trigger=False,
        retries=1,
        retry_delay=dt.timedelta(seconds=1),
        **waiter(REL_GATE="1", REL_SLEEP="1"),
    )


# 3. User actions on a deferred task (one run per action) and a triggerer restart, local executor.
with DAG(dag_id="rel_kill_local", **COMMON):
    ExecutorOperator(
        task_id="victim",
        executor_id="local",
        inputs={"key": "{{ run_id }}"},
        **waiter(REL_GATE="1", REL_CHILD="1"),  # never released: runs until killed
    )

with DAG(dag_id="rel_restart_local", **COMMON):
    ExecutorOperator(
        task_id="survivor",
        executor_id="local",
        inputs={"key": "survivor"},
        **waiter(REL_GATE="1", REL_CHILD="1", REL_SLEEP="1"),
    )


# 4. The same user actions on Ray (the dashboard address is in the connection the test creates).
with DAG(dag_id="rel_kill_ray", **COMMON):
    ExecutorOperator(
        task_id="victim",
        executor_id="ray",
        inputs={"key": "{{ run_id }}"},
        executor_options={"conn_id": RAY_CONN_ID},
        **waiter(REL_GATE="1"),
    )


# 5. The container executor (the engine's address, the image and a mount of the evidence folder are
# in the connection the test creates): ten deferred containers across a triggerer SIGKILL, and a
# user action on a running one.
DOCKER_CONN_ID = "reliability_docker"
DOCKER_FANOUT = 10

with DAG(dag_id="rel_docker_fanout", max_active_tasks=2 * DOCKER_FANOUT, **COMMON):
    ExecutorOperator.partial(
        task_id="sleeper",
        executor_id="docker",
        executor_options={"conn_id": DOCKER_CONN_ID},
        **waiter(REL_GATE="1", REL_SLEEP="15"),
    ).expand(inputs=[{"key": f"c{i:02d}"} for i in range(DOCKER_FANOUT)])

with DAG(dag_id="rel_kill_docker", **COMMON):
    ExecutorOperator(
        task_id="victim",
        executor_id="docker",
        inputs={"key": "{{ run_id }}"},
        executor_options={"conn_id": DOCKER_CONN_ID},
        **waiter(REL_GATE="1"),  # never released: runs until killed
    )

# The worker dies right after the container started (as in 2, on the container executor): try 2
# re-attaches to try 1's container by name.
with DAG(dag_id="rel_docker_worker_crash", **COMMON):
    ExecutorOperator(
        task_id="crashy",
        executor_id="crashy-docker",
        inputs={"key": "crashy"},
        executor_options={"conn_id": DOCKER_CONN_ID},
        start_from_trigger=False,
        retries=1,
        retry_delay=dt.timedelta(seconds=1),
        **waiter(REL_GATE="1", REL_SLEEP="1"),
    )


# 6. Two triggerers (HA) hold a hundred deferred executions; the one holding most is SIGKILLed and
# the other, already running, takes them over. Then twenty deferred executions across a scheduler
# SIGKILL and restart and a PostgreSQL restart.
HA_FANOUT = 100
RESTART_FANOUT = 20

with DAG(dag_id="rel_ha_triggerers", max_active_tasks=2 * HA_FANOUT, **COMMON):
    ExecutorOperator.partial(
        task_id="sleeper",
        executor_id="local",
        **waiter(REL_GATE="1", REL_SLEEP="{{ dag_run.conf.get('sleep', '10') }}"),
    ).expand(inputs=[{"key": f"h{i:03d}"} for i in range(HA_FANOUT)])

with DAG(dag_id="rel_restarts", max_active_tasks=2 * RESTART_FANOUT, **COMMON):
    ExecutorOperator.partial(
        task_id="sleeper",
        executor_id="local",
        **waiter(REL_GATE="1", REL_SLEEP="2"),
    ).expand(inputs=[{"key": f"r{i:02d}"} for i in range(RESTART_FANOUT)])


# 7. Two triggerers (HA) hold ten deferred Ray jobs; the one holding most is SIGKILLed and the
# other takes them over (the dashboard address is in the connection the test creates).
RAY_HA_FANOUT = 10

with DAG(dag_id="rel_ray_ha", max_active_tasks=2 * RAY_HA_FANOUT, **COMMON):
    ExecutorOperator.partial(
        task_id="sleeper",
        executor_id="ray",
        executor_options={"conn_id": RAY_CONN_ID},
        **waiter(REL_GATE="1", REL_SLEEP="15"),
    ).expand(inputs=[{"key": f"y{i:02d}"} for i in range(RAY_HA_FANOUT)])
