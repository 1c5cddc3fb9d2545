"""DAGs of the end-to-end suite (tests/e2e/test_local_stack.py): the local executor, real stack.

Every task command is plain Python run by the provider's local executor. Its working directory is
``<execution folder>/work``, where the execution folder is ``<data_dir>/<dag>/<run>/<task>/<try>``;
the commands leave evidence for the tests next to it:

- ``<try folder>/pids.txt``: one pid per line, written by each process of the task's tree;
- ``<task folder>/starts.txt``: one line per start of the command, across tries and restarts.

Small and fast on purpose: poll_interval=1 and sleeps of a few seconds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider.operators import ExecutorOperator
from executors import Cache

PLACEHOLDERS = ["{{.input}}", "{{.outputPrefix}}", "{{.taskTemplatePath}}"]
START = dt.datetime(2026, 1, 1)
COMMON: dict[str, Any] = {"schedule": None, "start_date": START, "catchup": False, "tags": ["e2e"]}

# a. outputs: runs a few seconds (long enough to be seen deferred), then writes typed outputs.
PRODUCE = """
import sys, time
from executors import task_io
inputs = task_io.read_inputs(sys.argv[1], sys.argv[3])
time.sleep(inputs["seconds"])
greeting = f"Hello, {inputs['name']}!"
squares = [i * i for i in range(inputs["n"])]
print(greeting, squares)
task_io.write_outputs(sys.argv[2], {"greeting": greeting, "squares": squares}, sys.argv[3])
"""

# b. a process tree: this process, a Python child and that child's `sleep`; each records its pid.
TREE = """
import os, subprocess, sys
PIDS = os.path.join(os.path.dirname(os.getcwd()), "pids.txt")
CHILD = '''
import os, subprocess, sys
sleeper = subprocess.Popen(["sleep", "300"])
with open(sys.argv[1], "a") as fh:
    fh.write(f"{os.getpid()}\\\\n{sleeper.pid}\\\\n")
sleeper.wait()
'''
with open(PIDS, "a") as fh:
    fh.write(f"{os.getpid()}\\n")
child = subprocess.Popen([sys.executable, "-c", CHILD, PIDS])
sys.exit(child.wait())
"""

# c. counts its starts (a restart of the triggerer must not start it again), then runs a while.
STEADY = """
import os, sys, time
from executors import task_io
with open(os.path.join(os.getcwd(), "..", "..", "starts.txt"), "a") as fh:
    fh.write(f"{os.getpid()} attempt={os.environ.get('FLYTE_ATTEMPT_NUMBER')}\\n")
time.sleep(float(sys.argv[4]))
task_io.write_outputs(sys.argv[2], {"pid": os.getpid()}, sys.argv[3])
"""

# b'. ignores SIGTERM: only the SIGKILL that follows kill_grace_period can end it.
STUBBORN = """
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
with open(os.path.join(os.path.dirname(os.getcwd()), "pids.txt"), "a") as fh:
    fh.write(f"{os.getpid()}\\n")
time.sleep(300)
"""

# d. fails with a RECOVERABLE error on its first attempt, succeeds on the next one. Both d tasks
# run a few seconds first: see apache/airflow#72716 in harness/airflow_stack.py (a trigger that
# fires right after the deferral can race the worker's exit).
FLAKY = """
import os, sys, time
from executors import task_io
time.sleep(2)
attempt = int(os.environ["FLYTE_ATTEMPT_NUMBER"])  # Airflow try_number - 1
if attempt == 0:
    task_io.write_error(sys.argv[2], "transient trouble on the first attempt", recoverable=True)
    sys.exit(1)
task_io.write_outputs(sys.argv[2], {"attempt": attempt}, sys.argv[3])
"""

# d. always fails with a NON_RECOVERABLE error: Airflow must not retry it, whatever retries says.
BROKEN = """
import sys, time
from executors import task_io
time.sleep(2)
task_io.write_error(sys.argv[2], "the input can never work", recoverable=False)
sys.exit(1)
"""


with DAG(dag_id="e2e_outputs", **COMMON):
    produce = ExecutorOperator(
        task_id="produce",
        executor_id="local",
        command=["python", "-c", PRODUCE, *PLACEHOLDERS],
        input_types={"name": str, "n": int, "seconds": float},
        output_types={"greeting": str, "squares": list[int]},
        inputs={"name": "e2e", "n": 4, "seconds": 6.0},
        poll_interval=1,
    )

    @task
    def consume(greeting: str, squares: list[int], everything: dict[str, Any]) -> str:
        assert everything == {"greeting": greeting, "squares": squares}, everything
        return f"{greeting} sum={sum(squares)}"

    # op.output["key"] is the XCom the operator pushed under that key.
    consume(produce.output["greeting"], produce.output["squares"], produce.output)  # type: ignore[index, arg-type]


with DAG(dag_id="e2e_mark_failed", **COMMON):
    # Two identical trees: the test marks one failed (which warms the triggerer up), then the other.
    for name in ("tree_1", "tree_2"):
        ExecutorOperator(
            task_id=name,
            executor_id="local",
            command=["python", "-c", TREE],
            poll_interval=1,
        )


with DAG(dag_id="e2e_single_tree", **COMMON):
    ExecutorOperator(
        task_id="tree",
        executor_id="local",
        command=["python", "-c", TREE],
        poll_interval=1,
    )


with DAG(dag_id="e2e_stubborn", **COMMON):
    ExecutorOperator(
        task_id="stubborn",
        executor_id="local",
        command=["python", "-c", STUBBORN],
        executor_options={"kill_grace_period": 3},
        poll_interval=1,
    )


with DAG(dag_id="e2e_triggerer_restart", **COMMON):
    ExecutorOperator(
        task_id="steady",
        executor_id="local",
        command=["python", "-c", STEADY, *PLACEHOLDERS, "20"],
        output_types={"pid": int},
        poll_interval=1,
    )


# e. live output: a tick a line every 0.3 s (a warning on stderr every fifth) until ``release``
# appears in the working directory, then a last line.
TICKER = """
import os, sys, time
i = 0
while not os.path.exists("release"):
    print(f"tick {i:03d}", flush=True)
    if i % 5 == 4:
        print(f"warn {i:03d}", file=sys.stderr, flush=True)
    i += 1
    time.sleep(0.3)
print("released", flush=True)
"""

with DAG(dag_id="e2e_live_output", **COMMON):
    ExecutorOperator(
        task_id="ticker",
        executor_id="local",
        command=["python", "-c", TICKER],
        poll_interval=1,
    )


with DAG(dag_id="e2e_failures", **COMMON):
    ExecutorOperator(
        task_id="flaky",
        executor_id="local",
        command=["python", "-c", FLAKY, *PLACEHOLDERS],
        output_types={"attempt": int},
        poll_interval=1,
        retries=1,
        retry_delay=dt.timedelta(seconds=3),
    )
    ExecutorOperator(
        task_id="broken",
        executor_id="local",
        command=["python", "-c", BROKEN, *PLACEHOLDERS],
        poll_interval=1,
        retries=3,
        retry_delay=dt.timedelta(seconds=1),
    )


# e. ten overlapping mapped instances of ONE serialized, cached task: one computes, nine wait
# (deferred, NOT_READY) and finish from the catalog. Each start appends a line to a shared file.
CACHED_SERIAL = """
import os, sys, time
from executors import task_io
marker = os.environ["E2E_CACHE_MARKER"]
with open(marker, "a") as fh:
    fh.write(f"{os.getpid()}\\n")
time.sleep(4)
x = task_io.read_inputs(sys.argv[1], sys.argv[3])["x"]
task_io.write_outputs(sys.argv[2], {"y": x * 7}, sys.argv[3])
"""

with DAG(dag_id="e2e_cache_serialized", **COMMON):
    ExecutorOperator.partial(
        task_id="same",
        command=["python", "-c", CACHED_SERIAL, *PLACEHOLDERS],
        input_types={"x": int},
        output_types={"y": int},
        cache=Cache(version="1", serialize=True),
        environment={"E2E_CACHE_MARKER": "{{ dag_run.conf['marker'] }}"},
        poll_interval=1,
    ).expand(inputs=[{"x": 6}] * 10)


# f. what the Execution view shows (tests/e2e/test_execution_view.py): a typed, cached task that
# prints until "release" appears in its working directory, then returns what it counted.
COUNTER = """
import os, sys, time
from executors import task_io
step = task_io.read_inputs(sys.argv[1], sys.argv[3])["step"]
i = 0
while not os.path.exists("release"):
    print(f"count {i * step:04d}", flush=True)
    i += 1
    time.sleep(0.3)
task_io.write_outputs(sys.argv[2], {"counted": i, "label": "<i>done</i>"}, sys.argv[3])
"""

with DAG(dag_id="e2e_execution_view", **COMMON):
    ExecutorOperator(
        task_id="counter",
        executor_id="local",
        command=["python", "-c", COUNTER, *PLACEHOLDERS],
        input_types={"step": int},
        output_types={"counted": int, "label": str},
        inputs={"step": 5},
        cache=Cache(version="1"),
        poll_interval=1,
    )


# j. records: a dataclass (nested, an int Enum, a date) from one @task.executor to the next, one
# written in the DAG file as an argument (the scheduler serializes it, the worker re-parses it), and
# the plain dict a @task downstream sees.
class Grade(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass
class Sample:
    name: str
    value: float


@dataclasses.dataclass
class Batch:
    day: dt.date
    grade: Grade
    samples: list[Sample]
    note: str | None = None


with DAG(dag_id="e2e_records", **COMMON):

    @task.executor(executor_id="local", poll_interval=1)
    def make_batch(day: dt.date, first: Sample) -> Batch:
        return Batch(day, Grade.HIGH, [first, Sample("b", 2.5)])

    @task.executor(executor_id="local", poll_interval=1)
    def weigh(batch: Batch) -> str:
        import datetime

        assert type(batch.day) is datetime.date and batch.grade is Grade.HIGH, (batch.day, batch.grade)
        assert all(type(s).__name__ == "Sample" for s in batch.samples), batch.samples
        total = sum(s.value for s in batch.samples)
        return f"{batch.day.isoformat()} {batch.grade.name} {total}"

    @task
    def as_seen(batch: Any) -> str:
        return f"{type(batch).__name__} {sorted(batch)}"

    batch = make_batch(dt.date(2026, 4, 5), Sample("a", 1.5))
    weigh(batch)
    as_seen(batch)
