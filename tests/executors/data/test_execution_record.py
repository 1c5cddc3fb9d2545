"""Reading an execution folder back for a person (the Execution view's data), hostile folders included."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from pathlib import Path

import pytest
from flyteidl.core import errors_pb2, execution_pb2, literals_pb2, types_pb2

from executors import DataStore, TaskContext, TaskExecutionID, TaskPhase, TaskStatus
from executors.core.status import ErrorOrigin, TaskError
from executors.data import execution_record
from executors.data.execution_record import read_execution_record, read_log_tail
from executors.data.literals import to_literal_map
from executors.engine.events import DataStoreEventRecorder, build_task_event
from tests.conftest import INT, make_identifier, make_template

STR = types_pb2.LiteralType(simple=types_pb2.STRING)
CSV = types_pb2.LiteralType(blob=types_pb2.BlobType(format="csv"))


async def _folder(store: DataStore, root: Path, *, succeeded: bool = True) -> TaskContext:
    template = make_template(["python", "-c", "pass"], inputs={"x": INT, "data": CSV}, outputs={"y": STR})
    ctx = TaskContext(TaskExecutionID.create(make_identifier()), data_dir=str(root))
    await store.write_protobuf(ctx.task_template_file, template)
    inputs = literals_pb2.LiteralMap()
    inputs.literals["x"].scalar.primitive.integer = 3
    inputs.literals["data"].scalar.blob.uri = "s3://bucket/table.csv"
    await store.write_protobuf(ctx.inputs_file, inputs)
    recorder = DataStoreEventRecorder(store)
    start = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
    await recorder.record_task_event(
        build_task_event(ctx, TaskStatus(TaskPhase.RUNNING), producer_id="local", occurred_at=start)
    )
    if succeeded:
        outputs = to_literal_map({"y": "x" * 5_000}, template.interface.outputs)
        await store.write_protobuf(ctx.outputs_file, outputs)
        end = TaskStatus(TaskPhase.SUCCEEDED)
    else:
        document = errors_pb2.ErrorDocument()
        document.error.code, document.error.message = "ValueError", "boom"
        document.error.kind = errors_pb2.ContainerError.NON_RECOVERABLE
        document.error.origin = execution_pb2.ExecutionError.USER
        await store.write_protobuf(ctx.error_file, document)
        end = TaskStatus(TaskPhase.PERMANENT_FAILURE, err=TaskError("ValueError", "boom", ErrorOrigin.USER))
    await recorder.record_task_event(
        build_task_event(ctx, end, producer_id="local", occurred_at=start + dt.timedelta(seconds=2))
    )
    return ctx


async def test_a_succeeded_folder_reads_back_typed(store: DataStore, tmp_path: Path) -> None:
    await _folder(store, tmp_path)
    record = await read_execution_record(store, str(tmp_path))
    assert record.problems == []
    assert [e.phase for e in record.events] == ["RUNNING", "SUCCEEDED"] and record.executor == "local"
    assert record.events[1].occurred_at == dt.datetime(2026, 12, 1, 12, 0, 2, tzinfo=dt.UTC)
    inputs = {v.name: v for v in record.inputs}
    assert (inputs["x"].kind, inputs["x"].type, inputs["x"].text) == ("value", "integer", "3")
    assert (inputs["data"].kind, inputs["data"].text) == ("file", "s3://bucket/table.csv")  # never read
    [y] = record.outputs
    assert y.type == "string" and len(y.text) < 2_100 and y.text.endswith("(5,002 characters)")
    assert record.command == ["python", "-c", "pass"] and record.error is None


async def test_the_latest_phase_comes_from_the_newest_event_name(store: DataStore, tmp_path: Path) -> None:
    assert await execution_record.latest_phase(store, str(tmp_path)) == "UNKNOWN"  # no events/
    await _folder(store, tmp_path, succeeded=False)
    assert await execution_record.latest_phase(store, str(tmp_path)) == "FAILED"


async def test_a_failed_folder_shows_its_error_document(store: DataStore, tmp_path: Path) -> None:
    await _folder(store, tmp_path, succeeded=False)
    record = await read_execution_record(store, str(tmp_path))
    assert record.phase == "FAILED" and record.outputs == []
    assert record.error == {
        "code": "ValueError",
        "message": "boom",
        "kind": "NON_RECOVERABLE",
        "origin": "USER",
    }


async def test_an_empty_folder_says_what_is_missing(store: DataStore, tmp_path: Path) -> None:
    record = await read_execution_record(store, str(tmp_path))
    assert record.phase == "UNKNOWN" and record.events == []
    assert record.problems == ["task.pb: not there", "inputs.pb: not there"]


async def test_a_value_that_does_not_match_its_type_is_shown_as_such(
    store: DataStore, tmp_path: Path
) -> None:
    ctx = await _folder(store, tmp_path)
    wrong = literals_pb2.LiteralMap()
    wrong.literals["y"].scalar.primitive.integer = 1  # declared str
    await store.write_protobuf(ctx.outputs_file, wrong)
    [y] = (await read_execution_record(store, str(tmp_path))).outputs
    assert y.kind == "unreadable" and "output 'y'" in y.text


async def test_hostile_files_are_refused_quickly_and_the_rest_is_shown(
    store: DataStore, tmp_path: Path
) -> None:
    ctx = await _folder(store, tmp_path)
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    (outside / "events").mkdir(parents=True)
    os.unlink(ctx.outputs_file)
    os.mkfifo(ctx.outputs_file)  # a FIFO where outputs.pb should be: opening it must not wait
    os.rename(tmp_path / "events", tmp_path / "events-real")
    os.symlink(outside / "events", tmp_path / "events")  # events/ pointing out of the folder
    started = time.monotonic()
    record = await asyncio.wait_for(read_execution_record(store, str(tmp_path)), 10)
    assert time.monotonic() - started < 5
    assert any("outputs.pb" in p and "FIFO" in p for p in record.problems), record.problems
    assert any(p.startswith("events/:") and "out of the execution folder" in p for p in record.problems)
    assert record.events == [] and sorted(v.name for v in record.inputs) == ["data", "x"]


async def test_too_many_events_shows_the_newest(
    store: DataStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _folder(store, tmp_path)
    monkeypatch.setattr(execution_record, "MAX_EVENTS", 1)
    record = await read_execution_record(store, str(tmp_path))
    assert [e.phase for e in record.events] == ["SUCCEEDED"]
    assert record.problems == ["events/: 2 events, the 1 newest shown"]


async def test_a_log_tail_is_whole_lines_and_a_fifo_is_refused(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "stdout.log").write_text("".join(f"line {i}\n" for i in range(1000)))
    text, size = await read_log_tail(str(tmp_path), "stdout", max_bytes=100)
    assert size == (logs / "stdout.log").stat().st_size and text.endswith("line 999\n")
    assert text.startswith("line ") and len(text) <= 100
    assert await read_log_tail(str(tmp_path), "stderr") is None  # not written (yet)
    os.mkfifo(logs / "stderr.log")
    with pytest.raises(Exception, match="FIFO"):
        await asyncio.wait_for(read_log_tail(str(tmp_path), "stderr"), 10)
    with pytest.raises(ValueError, match="stream must be one of"):
        await read_log_tail(str(tmp_path), "../secrets")
