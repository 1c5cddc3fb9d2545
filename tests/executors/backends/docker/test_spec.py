"""The template becomes the container: the ``POST /containers/create`` body, without an engine."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from flyteidl.core import tasks_pb2

from executors import TaskContext
from executors.backends.docker.spec import MANAGED_LABEL, create_body, host_resources, local_folders
from executors.core.resources import resources_from_mapping


def resources(spec: dict[str, dict[str, str]]) -> tasks_pb2.Resources:
    made = resources_from_mapping(spec)
    assert made is not None
    return made


def test_requests_and_limits_become_host_config() -> None:
    config = host_resources(
        resources(
            {
                "requests": {"cpu": "500m", "memory": "64Mi"},
                "limits": {"cpu": "2", "memory": "1Gi", "gpu": "1"},
            }
        )
    )
    assert config == {
        "NanoCpus": 2_000_000_000,
        "CpuShares": 512,
        "Memory": 2**30,
        "MemoryReservation": 64 * 2**20,
        "DeviceRequests": [{"Driver": "", "Count": 1, "Capabilities": [["gpu"]]}],
    }


def test_no_resources_no_limits() -> None:
    assert host_resources(tasks_pb2.Resources()) == {}


def test_a_value_that_is_not_a_quantity_names_the_resource() -> None:
    bad = tasks_pb2.Resources(
        limits=[tasks_pb2.Resources.ResourceEntry(name=tasks_pb2.Resources.MEMORY, value="lots")]
    )
    with pytest.raises(ValueError, match="resources limits memory"):
        host_resources(bad)


def test_local_folders_are_the_outermost_ones(make_ctx: Callable[..., TaskContext], tmp_path: Path) -> None:
    ctx = make_ctx()
    previous = tmp_path / "elsewhere" / "checkpoint"
    previous.mkdir(parents=True)
    ctx = TaskContext(
        task_execution_id=ctx.task_execution_id,
        data_dir=ctx.data_dir,
        prev_checkpoint_prefix=str(previous),
        inputs_file=str(tmp_path / "shared-inputs" / "inputs.pb"),
    )
    assert local_folders(ctx) == sorted(
        [ctx.data_dir, str(tmp_path / "shared-inputs"), str(previous)], key=len
    )


def test_an_object_store_data_dir_mounts_nothing(make_ctx: Callable[..., TaskContext]) -> None:
    ctx = make_ctx()
    remote = TaskContext(task_execution_id=ctx.task_execution_id, data_dir="s3://bucket/executions/x")
    assert local_folders(remote) == []


def test_the_body_carries_command_env_labels_and_mounts(make_ctx: Callable[..., TaskContext]) -> None:
    ctx = make_ctx()
    ctx = TaskContext(task_execution_id=ctx.task_execution_id, data_dir=ctx.data_dir, labels={"team": "data"})
    task = tasks_pb2.TaskTemplate()
    body = create_body(
        ctx,
        task,
        image="localhost/x:1",
        command=["python", "-c", "print(1)"],
        env={"A": "1"},
        mounts=[(ctx.data_dir, ctx.data_dir, False)],
        network="host",
        user="1000:1000",
        working_dir="/work",
    )
    assert body["Image"] == "localhost/x:1"
    assert body["Entrypoint"] == [] and body["Cmd"] == ["python", "-c", "print(1)"]
    assert body["Env"] == ["A=1"]
    assert body["Labels"]["team"] == "data" and body["Labels"][MANAGED_LABEL] == "true"
    assert body["Labels"]["io.airflow-provider-executors.execution"] == ctx.generated_name
    assert body["HostConfig"]["Mounts"] == [
        {"Type": "bind", "Source": ctx.data_dir, "Target": ctx.data_dir, "ReadOnly": False}
    ]
    assert body["HostConfig"]["NetworkMode"] == "host"
    assert (body["User"], body["WorkingDir"]) == ("1000:1000", "/work")
    assert os.path.isabs(ctx.data_dir)


def test_local_input_files_are_found_in_collections_and_maps(tmp_path: Path) -> None:
    from flyteidl.core import literals_pb2

    from executors.backends.docker.spec import input_paths

    table, listed = tmp_path / "table", tmp_path / "listed.csv"
    table.mkdir()
    listed.write_text("a\n")
    inputs = literals_pb2.LiteralMap()
    inputs.literals["df"].scalar.structured_dataset.uri = str(table)
    item = inputs.literals["files"].collection.literals.add()
    item.scalar.blob.uri = f"file://{listed}"
    inputs.literals["remote"].scalar.blob.uri = "s3://bucket/x.csv"
    inputs.literals["gone"].map.literals["k"].scalar.blob.uri = str(tmp_path / "missing")
    inputs.literals["n"].scalar.primitive.integer = 1
    assert input_paths(inputs) == sorted([str(table), str(listed)])
