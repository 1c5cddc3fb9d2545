"""identity: Airflow task attempts as Flyte identifiers, and execution folders that stay put."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from flyteidl.core import identifier_pb2, tasks_pb2

from airflow_provider.identity import (
    execution_folder,
    node_id,
    path_segment,
    task_execution_identifier,
)

HOSTILE = [
    "..",
    ".",
    "...",
    "/",
    "//",
    "../..",
    "../../etc/passwd",
    "/etc/passwd",
    "a/b",
    "a\\b",
    "a/../b",
    "%2E%2E",
    "%2F",
    "~",
    "",
    " ",
    "name with spaces",
    "manual__2026-01-01T00:00:00+00:00",
    "scheduled__2026-01-01T00:00:00.123456+00:00",
    "ünïcödé",
    "日本語のタスク",
    "emoji-🚀",
    "x" * 300,
    "x" * 299 + "y",
    "é" * 200,
    "é" * 199 + "è",
    "a" * 119,
    "a" * 120,
    "a" * 121,
    ".hidden",
    "trailing.",
    "null\x00byte",
    "new\nline",
]


def assert_safe_segment(segment: str) -> None:
    assert segment, "empty segment"
    assert "/" not in segment and "\\" not in segment and "\x00" not in segment and "\n" not in segment
    assert segment not in (".", "..")
    assert segment.isascii()
    assert len(segment) <= 120


@pytest.mark.parametrize("name", HOSTILE, ids=lambda n: repr(n)[:40])
def test_path_segment_is_one_safe_segment(name: str) -> None:
    segment = path_segment(name)
    assert_safe_segment(segment)
    assert path_segment(name) == segment  # deterministic


def test_path_segment_keeps_distinct_names_distinct() -> None:
    names = [n for n in HOSTILE if n != ""]  # "" has no meaning as an Airflow id
    segments = [path_segment(n) for n in names]
    assert len(set(segments)) == len(names), sorted(segments)


def test_path_segment_keeps_plain_ids_readable() -> None:
    assert path_segment("extract_orders") == "extract_orders"
    # Upper case keeps its readable form, plus a short hash so that case-insensitive filesystems
    # (macOS) cannot fold two names into one folder.
    run = path_segment("manual__2026-01-01T00:00:00+00:00")
    assert (
        run.startswith("manual__2026-01-01T00:00:00+00:00~")
        and len(run) == len("manual__2026-01-01T00:00:00+00:00") + 9
    )
    assert path_segment("Load").lower() != path_segment("load").lower()
    long = path_segment("report_" * 40)
    assert long.startswith("report_report_") and "~" in long


@pytest.mark.parametrize("dag_id", ["..", "/", "../../outside", "日本"])
@pytest.mark.parametrize("task_id", ["..", ".", "/etc", "a/../../b", "t" * 250])
def test_execution_folder_never_escapes_the_base(tmp_path: Path, dag_id: str, task_id: str) -> None:
    base = str(tmp_path / "executions")
    for run_id in ("..", "../..", "/", "manual__2026-01-01T00:00:00+00:00"):
        folder = execution_folder(
            base, dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=-1, try_number=1
        )
        resolved = os.path.normpath(folder)
        assert resolved.startswith(base + os.sep), folder
        relative = os.path.relpath(resolved, base).split(os.sep)
        assert len(relative) == 4, relative  # dag / run / task / try: nothing collapsed
        for segment in relative:
            assert_safe_segment(segment)


def test_execution_folders_stay_distinct(tmp_path: Path) -> None:
    base = str(tmp_path)
    names = [n for n in HOSTILE if n != ""]
    folders = set()
    for name in names:
        folders.add(execution_folder(base, dag_id=name, run_id="r", task_id="t", map_index=-1, try_number=1))
        folders.add(execution_folder(base, dag_id="d", run_id=name, task_id="t", map_index=-1, try_number=1))
        folders.add(execution_folder(base, dag_id="d", run_id="r", task_id=name, map_index=-1, try_number=1))
    assert len(folders) == 3 * len(names)


def test_execution_folder_layout(tmp_path: Path) -> None:
    base = str(tmp_path)
    plain = execution_folder(base, dag_id="d", run_id="r", task_id="t", map_index=-1, try_number=2)
    mapped = execution_folder(base, dag_id="d", run_id="r", task_id="t", map_index=3, try_number=2)
    assert plain == f"{base}/d/r/t/2"
    assert mapped == f"{base}/d/r/t/3/2"
    retried = execution_folder(base, dag_id="d", run_id="r", task_id="t", map_index=-1, try_number=3)
    assert retried != plain
    url = execution_folder(
        "s3://bucket/prefix/", dag_id="..", run_id="r", task_id="t", map_index=0, try_number=1
    )
    assert url == "s3://bucket/prefix/%2E%2E/r/t/0/1"


def unnamed_template() -> tasks_pb2.TaskTemplate:
    return tasks_pb2.TaskTemplate(type="container")


@pytest.mark.parametrize(("try_number", "attempt"), [(1, 0), (2, 1), (5, 4), (0, 0)])
def test_try_number_maps_to_retry_attempt(try_number: int, attempt: int) -> None:
    ident = task_execution_identifier(
        unnamed_template(), dag_id="d", task_id="t", run_id="r", map_index=-1, try_number=try_number
    )
    assert ident.retry_attempt == attempt


def test_identifier_without_template_id() -> None:
    ident = task_execution_identifier(
        unnamed_template(), dag_id="etl", task_id="load", run_id="manual__x", map_index=4, try_number=1
    )
    assert ident.task_id == identifier_pb2.Identifier(
        resource_type=identifier_pb2.TASK, project="airflow", domain="etl", name="etl.load"
    )
    assert ident.node_execution_id.node_id == "load[4]"
    execution = ident.node_execution_id.execution_id
    assert (execution.project, execution.domain, execution.name) == ("airflow", "etl", "manual__x")


def test_identifier_keeps_the_templates_own_id() -> None:
    template = unnamed_template()
    template.id.CopyFrom(
        identifier_pb2.Identifier(
            resource_type=identifier_pb2.TASK,
            project="flytesnacks",
            domain="production",
            name="workflows.example.say_hello",
            version="v42",
        )
    )
    ident = task_execution_identifier(
        template, dag_id="etl", task_id="hello", run_id="r1", map_index=-1, try_number=3
    )
    assert ident.task_id == template.id
    assert ident.retry_attempt == 2
    assert ident.node_execution_id.node_id == "hello"
    assert ident.node_execution_id.execution_id.domain == "etl"  # the run is still Airflow's


def test_node_id() -> None:
    assert node_id("t", -1) == "t"
    assert node_id("t", 0) == "t[0]"
    assert node_id("t", 12) == "t[12]"
