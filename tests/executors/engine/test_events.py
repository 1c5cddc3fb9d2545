"""build_task_event and DataStoreEventRecorder: real flyteidl events in a real data store."""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from flyteidl.core import execution_pb2
from flyteidl.event import event_pb2

from executors import DataStore, ErrorOrigin, TaskContext, TaskError, TaskExecutionID, TaskPhase, TaskStatus
from executors.engine.events import DataStoreEventRecorder, build_task_event, event_phase
from tests.conftest import make_identifier

Phase = execution_pb2.TaskExecution

EXPECTED_PHASES = [
    (TaskPhase.QUEUED, Phase.QUEUED),
    (TaskPhase.RUNNING, Phase.RUNNING),
    (TaskPhase.SUCCEEDED, Phase.SUCCEEDED),
    (TaskPhase.PERMANENT_FAILURE, Phase.FAILED),
    (TaskPhase.RETRYABLE_FAILURE, Phase.RETRYABLE_FAILED),
    (TaskPhase.NOT_READY, Phase.WAITING_FOR_RESOURCES),
    (TaskPhase.UNDEFINED, Phase.UNDEFINED),
    (TaskPhase.UNKNOWN, Phase.UNDEFINED),
]

WHEN = dt.datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=dt.UTC)


def test_every_task_phase_is_mapped() -> None:
    assert {phase for phase, _ in EXPECTED_PHASES} == set(TaskPhase)


@pytest.mark.parametrize(("phase", "expected"), EXPECTED_PHASES)
def test_event_phase_mapping_and_identifiers(
    phase: TaskPhase, expected: int, make_ctx: Callable[..., TaskContext]
) -> None:
    ctx = make_ctx(node="n7", run="run-42", attempt=2)
    status = TaskStatus(phase, phase_version=3)
    event = build_task_event(ctx, status, producer_id="ray", task_type="python-task", occurred_at=WHEN)

    assert event_phase(phase) == expected
    assert event.phase == expected
    assert event.phase_version == 3
    ident = ctx.task_execution_id.id
    assert event.task_id == ident.task_id
    assert event.task_id.name == "tests.double"
    assert event.parent_node_execution_id == ident.node_execution_id
    assert event.parent_node_execution_id.node_id == "n7"
    assert event.parent_node_execution_id.execution_id.name == "run-42"
    assert event.retry_attempt == 2
    assert event.producer_id == "ray"
    assert event.task_type == "python-task"
    assert event.input_uri == ctx.inputs_file
    assert event.occurred_at.ToDatetime(tzinfo=dt.UTC) == WHEN
    assert event.reported_at.seconds > 0
    assert event.reason == ""
    assert not event.HasField("error")
    if phase is TaskPhase.SUCCEEDED:
        assert event.output_uri == ctx.outputs_file
    else:
        assert event.WhichOneof("output_result") is None


def test_succeeded_event_carries_the_outputs_file(make_ctx: Callable[..., TaskContext]) -> None:
    ctx = make_ctx()
    event = build_task_event(ctx, TaskStatus(TaskPhase.SUCCEEDED), producer_id="local")
    assert event.phase == Phase.SUCCEEDED
    assert event.output_uri == ctx.outputs_file
    assert event.output_uri.endswith("/outputs.pb")


@pytest.mark.parametrize(
    ("phase", "origin", "event_phase_", "kind"),
    [
        (TaskPhase.PERMANENT_FAILURE, ErrorOrigin.USER, Phase.FAILED, execution_pb2.ExecutionError.USER),
        (
            TaskPhase.RETRYABLE_FAILURE,
            ErrorOrigin.SYSTEM,
            Phase.RETRYABLE_FAILED,
            execution_pb2.ExecutionError.SYSTEM,
        ),
        (
            TaskPhase.PERMANENT_FAILURE,
            ErrorOrigin.UNKNOWN,
            Phase.FAILED,
            execution_pb2.ExecutionError.UNKNOWN,
        ),
        (TaskPhase.UNDEFINED, ErrorOrigin.SYSTEM, Phase.UNDEFINED, execution_pb2.ExecutionError.SYSTEM),
    ],
)
def test_failure_event_carries_the_error(
    phase: TaskPhase,
    origin: ErrorOrigin,
    event_phase_: int,
    kind: int,
    make_ctx: Callable[..., TaskContext],
) -> None:
    ctx = make_ctx()
    status = TaskStatus(phase, err=TaskError("BadThing", "the input was odd", origin))
    event = build_task_event(ctx, status, producer_id="local")
    assert event.phase == event_phase_
    assert event.HasField("error")
    assert event.error.code == "BadThing"
    assert event.error.message == "the input was odd"
    assert event.error.kind == kind
    assert event.error.error_uri == ctx.error_file
    assert event.reason == "the input was odd"
    assert event.output_uri == ""


def test_unknown_with_an_error_gives_a_reason_but_no_error(make_ctx: Callable[..., TaskContext]) -> None:
    status = TaskStatus(TaskPhase.UNKNOWN, err=TaskError("ApiDown", "api answered 503"))
    event = build_task_event(make_ctx(), status, producer_id="ray")
    assert event.phase == Phase.UNDEFINED
    assert event.reason == "api answered 503"
    assert not event.HasField("error")  # the execution did not fail


def test_not_ready_reason_is_carried(make_ctx: Callable[..., TaskContext]) -> None:
    status = TaskStatus(TaskPhase.NOT_READY, err=TaskError("ConcurrencyLimit", "2 local executions run"))
    event = build_task_event(make_ctx(), status, producer_id="local")
    assert event.phase == Phase.WAITING_FOR_RESOURCES
    assert event.reason == "2 local executions run"
    assert not event.HasField("error")


def test_occurred_at_comes_from_the_argument_then_the_status_then_now(
    make_ctx: Callable[..., TaskContext],
) -> None:
    ctx = make_ctx()
    paris = dt.timezone(dt.timedelta(hours=2))
    in_paris = dt.datetime(2025, 3, 4, 7, 6, 7, 123456, tzinfo=paris)  # == WHEN
    status = TaskStatus(TaskPhase.RUNNING, occurred_at=in_paris)
    assert build_task_event(ctx, status, producer_id="x").occurred_at.ToDatetime(tzinfo=dt.UTC) == WHEN
    other = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    explicit = build_task_event(ctx, status, producer_id="x", occurred_at=other)
    assert explicit.occurred_at.ToDatetime(tzinfo=dt.UTC) == other
    before = dt.datetime.now(dt.UTC)
    now_event = build_task_event(ctx, TaskStatus(TaskPhase.RUNNING), producer_id="x")
    after = dt.datetime.now(dt.UTC)
    assert before <= now_event.occurred_at.ToDatetime(tzinfo=dt.UTC) <= after


# -- DataStoreEventRecorder ---------------------------------------------------------------------

NAME = re.compile(r"^(\d{20})-([a-z_]+)-v(\d+)\.pb$")


async def test_recorder_writes_under_the_data_dir_events_folder(
    store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    ctx = make_ctx()
    recorder = DataStoreEventRecorder(store)
    event = build_task_event(
        ctx, TaskStatus(TaskPhase.NOT_READY, phase_version=4), producer_id="local", occurred_at=WHEN
    )
    await recorder.record_task_event(event)

    events_dir = Path(ctx.data_dir, "events")
    names = os.listdir(events_dir)
    assert len(names) == 1
    match = NAME.match(names[0])
    assert match is not None, names[0]
    assert int(match.group(1)) == int(WHEN.timestamp() * 1_000_000)
    assert match.group(2) == "waiting_for_resources"
    assert match.group(3) == "4"
    stored = event_pb2.TaskExecutionEvent.FromString((events_dir / names[0]).read_bytes())
    assert stored == event


async def test_re_recording_the_same_event_does_not_duplicate(
    store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    ctx = make_ctx()
    recorder = DataStoreEventRecorder(store)
    event = build_task_event(ctx, TaskStatus(TaskPhase.RUNNING), producer_id="local", occurred_at=WHEN)
    await recorder.record_task_event(event)
    await recorder.record_task_event(event)
    # A restarted process rebuilds the same event (same status, same time): still one file.
    again = build_task_event(ctx, TaskStatus(TaskPhase.RUNNING), producer_id="local", occurred_at=WHEN)
    await recorder.record_task_event(again)
    assert len(os.listdir(Path(ctx.data_dir, "events"))) == 1


async def test_distinct_events_are_distinct_files_in_time_order(
    store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    ctx = make_ctx()
    recorder = DataStoreEventRecorder(store)
    statuses = [
        (TaskStatus(TaskPhase.RUNNING, phase_version=1), WHEN + dt.timedelta(seconds=10)),
        (TaskStatus(TaskPhase.QUEUED), WHEN),
        (TaskStatus(TaskPhase.RUNNING), WHEN + dt.timedelta(microseconds=1)),
        (TaskStatus(TaskPhase.SUCCEEDED), WHEN + dt.timedelta(days=400)),
    ]
    for status, when in statuses:
        await recorder.record_task_event(build_task_event(ctx, status, producer_id="p", occurred_at=when))
    names = sorted(os.listdir(Path(ctx.data_dir, "events")))
    assert [NAME.match(n).group(2, 3) for n in names] == [  # type: ignore[union-attr]
        ("queued", "0"),
        ("running", "0"),
        ("running", "1"),
        ("succeeded", "0"),
    ]


async def test_recorder_works_on_an_object_store_url(store: DataStore) -> None:
    data_dir = f"memory://events-tests/{uuid.uuid4().hex}/exec"
    ctx = TaskContext(task_execution_id=TaskExecutionID.create(make_identifier()), data_dir=data_dir)
    event = build_task_event(ctx, TaskStatus(TaskPhase.SUCCEEDED), producer_id="p", occurred_at=WHEN)
    await DataStoreEventRecorder(store).record_task_event(event)
    await DataStoreEventRecorder(store).record_task_event(event)
    fs, path = store.filesystem(f"{data_dir}/events")
    files = fs.ls(path, detail=False)
    assert len(files) == 1
    assert files[0].endswith("-succeeded-v0.pb")
    stored = await store.read_protobuf(f"{data_dir}/events/{files[0].rsplit('/', 1)[1]}", type(event))
    assert stored == event
    fs.rm(f"{data_dir}".split("://", 1)[1], recursive=True)
