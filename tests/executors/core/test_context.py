from __future__ import annotations

import json
import re

import pytest
from flyteidl.core import tasks_pb2

from executors import OwnerReference, TaskContext, TaskExecutionID, TaskOverrides, TaskPhase
from executors.core.context import generated_name_for
from tests.conftest import make_identifier

DNS_1123 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def full_context() -> TaskContext:
    resources = tasks_pb2.Resources()
    resources.requests.add(name=tasks_pb2.Resources.CPU, value="2")
    resources.limits.add(name=tasks_pb2.Resources.MEMORY, value="1Gi")
    return TaskContext(
        task_execution_id=TaskExecutionID.create(make_identifier(attempt=3)),
        data_dir="s3://bucket/dag/run/task/3",
        namespace="team-a",
        owner_id="team-a/dag.task",
        owner_reference=OwnerReference(kind="TaskInstance", name="dag.task", uid="u-1", api_version="v1"),
        overrides=TaskOverrides(resources=resources, config={"k": "v"}, environment={"E": "1"}),
        labels={"team": "a"},
        annotations={"note": "x"},
        custom_state={"pid": 12, "nested": {"l": [1, 2.5, None, True]}},
        service_account="runner",
        phase=TaskPhase.RUNNING,
        phase_version=7,
        prev_checkpoint_prefix="s3://bucket/prev",
    )


def test_round_trip_through_json_loses_nothing() -> None:
    ctx = full_context()
    data = json.loads(json.dumps(ctx.to_dict()))
    back = TaskContext.from_dict(data)
    assert back == ctx
    assert back.task_execution_id.id == ctx.task_execution_id.id
    assert back.overrides.resources == ctx.overrides.resources
    assert back.to_dict() == ctx.to_dict()


def test_default_file_references_follow_flyte_names() -> None:
    ctx = full_context()
    assert ctx.inputs_file == "s3://bucket/dag/run/task/3/inputs.pb"
    assert ctx.input_prefix == "s3://bucket/dag/run/task/3"
    assert ctx.task_template_file == "s3://bucket/dag/run/task/3/task.pb"
    # The output prefix is a folder of its own (as on Flyte): a task that empties it cannot delete
    # task.pb, inputs.pb, events/ or logs/.
    assert ctx.output_prefix == "s3://bucket/dag/run/task/3/outputs"
    assert ctx.outputs_file == "s3://bucket/dag/run/task/3/outputs/outputs.pb"
    assert ctx.error_file == "s3://bucket/dag/run/task/3/outputs/error.pb"
    assert ctx.raw_output_prefix == "s3://bucket/dag/run/task/3/raw"
    assert ctx.checkpoint_prefix == "s3://bucket/dag/run/task/3/checkpoint"


def test_an_explicit_outputs_file_gets_its_error_file_next_to_it() -> None:
    ctx = TaskContext(
        TaskExecutionID.create(make_identifier()), "/data/x", outputs_file="/elsewhere/out/outputs.pb"
    )
    assert ctx.output_prefix == "/elsewhere/out"
    assert ctx.error_file == "/elsewhere/out/error.pb"


def test_a_context_serialized_with_the_old_layout_keeps_its_paths() -> None:
    """A handle written before the output prefix became ``outputs/`` (trigger kwargs, a running
    execution's XCom) stored its file references explicitly: they come back unchanged, so the
    execution it describes is still found where it writes."""
    data = json.loads(json.dumps(full_context().to_dict()))
    folder = data["data_dir"]
    data.update(outputs_file=f"{folder}/outputs.pb", error_file=f"{folder}/error.pb")
    old = TaskContext.from_dict(data)
    assert old.outputs_file == "s3://bucket/dag/run/task/3/outputs.pb"
    assert old.error_file == "s3://bucket/dag/run/task/3/error.pb"
    assert old.output_prefix == "s3://bucket/dag/run/task/3"
    assert old.inputs_file == "s3://bucket/dag/run/task/3/inputs.pb"
    assert TaskContext.from_dict(old.to_dict()) == old
    assert old.to_dict() == data
    # A dict without file references (none is ever written, but it parses) gets today's defaults.
    for key in ("inputs_file", "outputs_file", "error_file", "raw_output_prefix", "checkpoint_prefix"):
        del data[key]
    assert TaskContext.from_dict(data).outputs_file == "s3://bucket/dag/run/task/3/outputs/outputs.pb"


def test_custom_state_must_be_json_safe() -> None:
    with pytest.raises(TypeError, match="custom_state must be JSON-safe"):
        TaskContext(TaskExecutionID.create(make_identifier()), "/tmp/x", custom_state={"o": object()})


def test_with_status_carries_phase_and_state() -> None:
    ctx = full_context().with_status(TaskPhase.SUCCEEDED, 2, None)
    assert (ctx.phase, ctx.phase_version, ctx.custom_state["pid"]) == (TaskPhase.SUCCEEDED, 2, 12)
    assert ctx.with_status(TaskPhase.RUNNING, 0, {"x": 1}).custom_state == {"x": 1}


@pytest.mark.parametrize(
    "node",
    ["double", "UPPER_case.task", "a" * 300, "9starts-with-digit", "--", "ünïcödé/../x", "task[3]", ""],
)
def test_generated_name_is_a_dns_label(node: str) -> None:
    name = generated_name_for(make_identifier(node=node, run="manual__2026-01-01T00:00:00+00:00"))
    assert len(name) <= 63
    assert DNS_1123.match(name), name


def test_generated_name_is_deterministic_and_unique_per_attempt() -> None:
    a0 = generated_name_for(make_identifier(attempt=0))
    assert a0 == generated_name_for(make_identifier(attempt=0))
    assert a0 != generated_name_for(make_identifier(attempt=1))
    assert a0 != generated_name_for(make_identifier(run="run-2"))
    # Long names that truncate to the same prefix still differ by their hash.
    long_a = generated_name_for(make_identifier(node="x" * 100 + "a"))
    long_b = generated_name_for(make_identifier(node="x" * 100 + "b"))
    assert long_a != long_b
