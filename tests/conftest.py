"""Fixtures shared by the whole suite: real data stores, real protobufs, real processes."""

from __future__ import annotations

# --- Airflow test environment: Airflow reads its config when first imported, so this must run
# before anything imports airflow. A fresh AIRFLOW_HOME per session (SQLite DB, executions, local
# executor state), unless EXECUTORS_TEST_KEEP_AIRFLOW_HOME says to keep the one in the environment.
# ruff: noqa: E402
import json
import os
import pathlib
import tempfile

if not (os.environ.get("EXECUTORS_TEST_KEEP_AIRFLOW_HOME") and os.environ.get("AIRFLOW_HOME")):
    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="airflow-test-home-")
_AIRFLOW_HOME = os.environ["AIRFLOW_HOME"]
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(pathlib.Path(__file__).resolve().parents[1] / "dags")
os.environ["AIRFLOW__PROVIDER_EXECUTORS__DATA_DIR"] = os.path.join(_AIRFLOW_HOME, "executions")
os.environ["AIRFLOW__PROVIDER_EXECUTORS__EXECUTOR_CONFIG"] = json.dumps(
    {"local": {"state_root": os.path.join(_AIRFLOW_HOME, "local-state")}}
)
os.environ["AIRFLOW__PROVIDER_EXECUTORS__POLL_INTERVAL"] = "0.5"
# --- end of the Airflow test environment

import sys
from collections.abc import Callable, Iterator, Sequence

import pytest
from flyteidl.core import identifier_pb2, interface_pb2, tasks_pb2, types_pb2

from executors import DataStore, TaskContext, TaskExecutionID
from harness.s3_server import S3Server, environment_of

INT = types_pb2.LiteralType(simple=types_pb2.INTEGER)

# Reads inputs.pb, writes outputs.pb with y = 2 * x, using only flyteidl (like a real task would).
DOUBLER = """
import sys
from flyteidl.core import literals_pb2
inputs = literals_pb2.LiteralMap()
with open(sys.argv[1], "rb") as fh:
    inputs.ParseFromString(fh.read())
x = inputs.literals["x"].scalar.primitive.integer
out = literals_pb2.LiteralMap()
out.literals["y"].scalar.primitive.integer = 2 * x
with open(sys.argv[2] + "/outputs.pb", "wb") as fh:
    fh.write(out.SerializeToString())
print("doubled", x)
"""


def make_identifier(
    node: str = "double", run: str = "run-1", attempt: int = 0, task_name: str = "tests.double"
) -> identifier_pb2.TaskExecutionIdentifier:
    ident = identifier_pb2.TaskExecutionIdentifier(retry_attempt=attempt)
    ident.task_id.resource_type = identifier_pb2.TASK
    ident.task_id.project = "tests"
    ident.task_id.domain = "development"
    ident.task_id.name = task_name
    ident.task_id.version = "1"
    ident.node_execution_id.node_id = node
    ident.node_execution_id.execution_id.project = "tests"
    ident.node_execution_id.execution_id.domain = "development"
    ident.node_execution_id.execution_id.name = run
    return ident


def make_template(
    command: Sequence[str],
    inputs: dict[str, types_pb2.LiteralType] | None = None,
    outputs: dict[str, types_pb2.LiteralType] | None = None,
    env: dict[str, str] | None = None,
) -> tasks_pb2.TaskTemplate:
    template = tasks_pb2.TaskTemplate(type="container")
    template.id.resource_type = 1
    template.id.name = "tests.task"
    for name, lt in (inputs or {}).items():
        template.interface.inputs.variables[name].CopyFrom(interface_pb2.Variable(type=lt))
    for name, lt in (outputs or {}).items():
        template.interface.outputs.variables[name].CopyFrom(interface_pb2.Variable(type=lt))
    template.container.image = "ignored"
    template.container.command.extend(command)
    for k, v in (env or {}).items():
        template.container.env.add(key=k, value=v)
    return template


def python_template(script: str, *extra_args: str, **kwargs: object) -> tasks_pb2.TaskTemplate:
    return make_template(["python", "-c", script, *extra_args], **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def store() -> DataStore:
    return DataStore()


@pytest.fixture
def make_ctx(tmp_path: os.PathLike[str]) -> Callable[..., TaskContext]:
    """A TaskContext whose data dir is a fresh local folder; kwargs go to make_identifier."""

    def make(**kwargs: object) -> TaskContext:
        ident = make_identifier(**kwargs)  # type: ignore[arg-type]
        exec_id = TaskExecutionID.create(ident)
        return TaskContext(
            task_execution_id=exec_id, data_dir=os.path.join(str(tmp_path), exec_id.generated_name)
        )

    return make


@pytest.fixture
def python_exe() -> str:
    return sys.executable


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One real S3-compatible server (moto's, harness/s3_server.py) for the session, with this
    process's ``AWS_*`` variables pointing at it (and so every task process a test starts)."""
    with S3Server() as server, environment_of(server):
        yield server


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A new, empty bucket on the session's S3 server: ``s3://<bucket>``."""
    return f"s3://{s3_server.new_bucket()}"
