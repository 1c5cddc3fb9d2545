"""ExecutionDriver and PollPolicy: the phase-table rules, with a scripted executor and the real local one."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from flyteidl.core import execution_pb2, literals_pb2
from flyteidl.event import event_pb2

from executors import (
    DataStore,
    ErrorOrigin,
    ExecutionDriver,
    ExecutorInitializationParameters,
    PollPolicy,
    TaskContext,
    TaskError,
    TaskPhase,
    TaskStatus,
)
from executors.backends.local import LocalExecutor
from executors.data.literals import from_literal_map, to_literal_map
from executors.engine.events import DataStoreEventRecorder
from executors.engine.waking import Waker
from tests.conftest import DOUBLER, INT, python_template
from tests.executors.engine.support import (
    INPUTS,
    NOT_READY,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    TEMPLATE,
    UNKNOWN,
    BrokenRecorder,
    Entry,
    ListRecorder,
    Loader,
    ScriptedExecutor,
    fast,
    make_driver,
    never_load,
    run,
    wait_until,
)

# -- start / check ------------------------------------------------------------------------------


async def test_not_ready_start_is_asked_again_until_accepted(
    make_ctx: Callable[..., TaskContext],
) -> None:
    ex = ScriptedExecutor(starts=[NOT_READY, NOT_READY, QUEUED], checks=[RUNNING, SUCCEEDED])
    loader = Loader()
    driver = make_driver(ex, make_ctx(), loader=loader)

    first = await driver.step()
    assert first.phase is TaskPhase.NOT_READY
    assert first.err == NOT_READY.err
    assert (driver.accepted, driver.streak) == (False, 1)
    assert driver.ctx.phase is TaskPhase.NOT_READY

    final = await run(driver)
    assert final.phase is TaskPhase.SUCCEEDED
    assert ex.kinds == ["start", "start", "start", "check", "check"]
    assert loader.calls == 1  # small inputs are read once for all the starts, never for a check
    assert all(seen == INPUTS for seen in ex.inputs_seen) and len(ex.inputs_seen) == 3
    assert driver.accepted is True
    assert driver.streak == 0


async def test_large_inputs_are_read_again_for_each_start_attempt(
    make_ctx: Callable[..., TaskContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    from executors.engine import driver as driver_module

    monkeypatch.setattr(driver_module, "KEEP_INPUTS_BYTES", INPUTS.ByteSize() - 1)
    ex = ScriptedExecutor(starts=[NOT_READY, NOT_READY, QUEUED], checks=[SUCCEEDED])
    loader = Loader()
    assert (await run(make_driver(ex, make_ctx(), loader=loader))).phase is TaskPhase.SUCCEEDED
    assert loader.calls == 3  # not kept in memory while the start waits


async def test_start_answering_unknown_is_not_an_acceptance(make_ctx: Callable[..., TaskContext]) -> None:
    ex = ScriptedExecutor(starts=[UNKNOWN, RUNNING], checks=[SUCCEEDED])
    driver = make_driver(ex, make_ctx())
    assert (await driver.step()).phase is TaskPhase.UNKNOWN
    assert driver.accepted is False
    assert (await run(driver)).phase is TaskPhase.SUCCEEDED
    assert ex.kinds == ["start", "start", "check"]


async def test_start_raising_is_unknown_and_start_is_retried(make_ctx: Callable[..., TaskContext]) -> None:
    ex = ScriptedExecutor(starts=[ConnectionError("backend down"), RUNNING], checks=[SUCCEEDED])
    driver = make_driver(ex, make_ctx())

    status = await driver.step()
    assert status.phase is TaskPhase.UNKNOWN
    assert status.err is not None
    assert status.err.code == "ConnectionError"
    assert "'scripted'" in status.err.message and "backend down" in status.err.message
    assert status.err.origin is ErrorOrigin.SYSTEM
    assert driver.accepted is False

    assert (await driver.step()).phase is TaskPhase.RUNNING
    assert driver.accepted is True
    assert (await run(driver)).phase is TaskPhase.SUCCEEDED
    assert ex.kinds == ["start", "start", "check"]


async def test_inputs_loader_failure_is_unknown_and_start_is_retried(
    make_ctx: Callable[..., TaskContext],
) -> None:
    attempts = 0

    async def flaky_loader() -> literals_pb2.LiteralMap:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise FileNotFoundError("inputs.pb not there yet")
        return INPUTS

    ex = ScriptedExecutor(starts=[RUNNING], checks=[SUCCEEDED])
    driver = make_driver(ex, make_ctx(), loader=flaky_loader)
    first = await driver.step()
    assert first.phase is TaskPhase.UNKNOWN
    assert first.err is not None and "inputs.pb not there yet" in first.err.message
    assert ex.kinds == []  # the executor was not called without inputs
    assert (await run(driver)).phase is TaskPhase.SUCCEEDED
    assert ex.kinds == ["start", "check"]


async def test_check_raising_is_unknown_and_polling_goes_on(make_ctx: Callable[..., TaskContext]) -> None:
    ex = ScriptedExecutor(starts=[RUNNING], checks=[RuntimeError("flaky"), RUNNING, SUCCEEDED])
    changes: list[TaskStatus] = []
    driver = make_driver(ex, make_ctx(), on_change=lambda ctx, st: changes.append(st))

    final = await run(driver)
    assert final.phase is TaskPhase.SUCCEEDED
    assert ex.kinds == ["start", "check", "check", "check"]
    assert [c.phase for c in changes] == [
        TaskPhase.RUNNING,
        TaskPhase.UNKNOWN,
        TaskPhase.RUNNING,
        TaskPhase.SUCCEEDED,
    ]
    unknown = changes[1]
    assert unknown.err is not None
    assert unknown.err.code == "RuntimeError"
    assert "'scripted'" in unknown.err.message and "flaky" in unknown.err.message


async def test_unknown_limit_ends_as_retryable_failure_naming_the_executor(
    make_ctx: Callable[..., TaskContext],
) -> None:
    ex = ScriptedExecutor(starts=[RUNNING], checks=[UNKNOWN, UNKNOWN, UNKNOWN, SUCCEEDED])
    driver = make_driver(ex, make_ctx(), policy=fast(unknown_limit=3))

    final = await run(driver)
    assert final.phase is TaskPhase.RETRYABLE_FAILURE
    assert final.err is not None
    assert final.err.code == "StatusUnknown"
    assert final.err.origin is ErrorOrigin.SYSTEM
    assert "'scripted'" in final.err.message
    assert "3 times" in final.err.message
    assert "api answered 503" in final.err.message  # the last UNKNOWN's detail
    assert ex.kinds == ["start", "check", "check", "check"]  # stopped at the limit
    assert ex.checks == [SUCCEEDED]


async def test_unknown_streak_is_reset_by_a_real_answer(make_ctx: Callable[..., TaskContext]) -> None:
    checks: list[Entry] = [UNKNOWN, UNKNOWN, RUNNING, UNKNOWN, OSError("x"), SUCCEEDED]
    ex = ScriptedExecutor(starts=[RUNNING], checks=checks)
    driver = make_driver(ex, make_ctx(), policy=fast(unknown_limit=3))
    final = await run(driver)
    assert final.phase is TaskPhase.SUCCEEDED
    assert ex.kinds == ["start"] + ["check"] * 6


async def test_not_ready_answers_do_not_count_toward_the_unknown_limit(
    make_ctx: Callable[..., TaskContext],
) -> None:
    ex = ScriptedExecutor(starts=[NOT_READY, NOT_READY, ConnectionError("blip"), RUNNING], checks=[SUCCEEDED])
    driver = make_driver(ex, make_ctx(), policy=fast(unknown_limit=3))
    await driver.step()
    await driver.step()
    third = await driver.step()  # the first UNKNOWN: 1 of 3, not 3 of 3
    assert third.phase is TaskPhase.UNKNOWN, third
    assert (await run(driver)).phase is TaskPhase.SUCCEEDED


async def test_undefined_check_is_retryable_failure_naming_the_executor(
    make_ctx: Callable[..., TaskContext],
) -> None:
    undefined = TaskStatus(TaskPhase.UNDEFINED, err=TaskError("NotStarted", "no execution named x"))
    ex = ScriptedExecutor(starts=[RUNNING], checks=[undefined, SUCCEEDED])
    driver = make_driver(ex, make_ctx())
    final = await run(driver)
    assert final.phase is TaskPhase.RETRYABLE_FAILURE
    assert final.err is not None
    assert final.err.code == "UndefinedPhase"
    assert final.err.origin is ErrorOrigin.SYSTEM
    assert "'scripted'" in final.err.message
    assert "no execution named x" in final.err.message
    assert ex.kinds == ["start", "check"]


async def test_undefined_start_without_detail(make_ctx: Callable[..., TaskContext]) -> None:
    ex = ScriptedExecutor(starts=[TaskStatus(TaskPhase.UNDEFINED)])
    driver = make_driver(ex, make_ctx())
    final = await run(driver)
    assert final.phase is TaskPhase.RETRYABLE_FAILURE
    assert final.err is not None and final.err.code == "UndefinedPhase"
    assert final.err.message == "executor 'scripted' reported an undefined phase"
    assert ex.kinds == ["start"]


@pytest.mark.parametrize(
    "final",
    [
        TaskStatus(TaskPhase.PERMANENT_FAILURE, err=TaskError("Bad", "bad input", ErrorOrigin.USER)),
        TaskStatus(TaskPhase.RETRYABLE_FAILURE, err=TaskError("Oom", "out of memory")),
    ],
)
async def test_failures_reported_by_the_executor_end_the_run_as_they_are(
    final: TaskStatus, make_ctx: Callable[..., TaskContext]
) -> None:
    ex = ScriptedExecutor(starts=[RUNNING], checks=[RUNNING, final, SUCCEEDED])
    driver = make_driver(ex, make_ctx())
    assert await run(driver) == final
    assert ex.kinds == ["start", "check", "check"]


async def test_hanging_check_times_out_as_unknown_without_blocking_the_loop(
    make_ctx: Callable[..., TaskContext],
) -> None:
    cancelled = asyncio.Event()

    async def hang() -> TaskStatus:
        try:
            await asyncio.sleep(100)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return SUCCEEDED

    ex = ScriptedExecutor(starts=[RUNNING], checks=[hang, SUCCEEDED])
    driver = make_driver(ex, make_ctx(), policy=fast(call_timeout=0.2))
    assert (await driver.step()).phase is TaskPhase.RUNNING

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    other = asyncio.create_task(ticker())
    try:
        t0 = time.monotonic()
        status = await asyncio.wait_for(driver.step(), timeout=10)  # fail fast if nothing times out
        elapsed = time.monotonic() - t0
    finally:
        other.cancel()
    assert status.phase is TaskPhase.UNKNOWN
    assert status.err is not None
    assert status.err.code == "CallTimeout"
    assert status.err.origin is ErrorOrigin.SYSTEM
    assert "'scripted'" in status.err.message and "0.2s" in status.err.message
    assert 0.15 < elapsed < 5
    assert ticks >= 5  # the other coroutine kept running while the check hung
    assert cancelled.is_set()  # the hanging call was abandoned, not left running
    assert (await run(driver)).phase is TaskPhase.SUCCEEDED
    assert ex.kinds == ["start", "check", "check"]


async def test_timeout_error_raised_by_the_executor_is_not_a_call_timeout(
    make_ctx: Callable[..., TaskContext],
) -> None:
    ex = ScriptedExecutor(starts=[RUNNING], checks=[TimeoutError("read timed out after 3s")])
    driver = make_driver(ex, make_ctx(), policy=fast(call_timeout=120))
    await driver.step()
    status = await driver.step()
    assert status.phase is TaskPhase.UNKNOWN
    assert status.err is not None
    assert "read timed out after 3s" in status.err.message, status.err
    assert status.err.code == "TimeoutError"


# -- events and on_change -----------------------------------------------------------------------


async def test_one_event_and_one_on_change_per_phase_or_version_change(
    make_ctx: Callable[..., TaskContext],
) -> None:
    checks: list[Entry] = [
        QUEUED,
        RUNNING,
        RUNNING,
        RUNNING.with_phase_version(1),
        RUNNING.with_phase_version(1),
        RUNNING.with_phase_version(2).with_state({"progress": 2}),
        SUCCEEDED,
    ]
    ex = ScriptedExecutor(starts=[QUEUED], checks=checks)
    recorder = ListRecorder()
    changes: list[tuple[TaskContext, TaskStatus, int]] = []

    def on_change(ctx: TaskContext, status: TaskStatus) -> None:
        changes.append((ctx, status, len(recorder.events)))

    driver = make_driver(ex, make_ctx(attempt=3), event_recorders=(recorder,), on_change=on_change)
    assert (await run(driver)).phase is TaskPhase.SUCCEEDED
    assert len(ex.calls) == 8

    expected = [
        (TaskPhase.QUEUED, 0),
        (TaskPhase.RUNNING, 0),
        (TaskPhase.RUNNING, 1),
        (TaskPhase.RUNNING, 2),
        (TaskPhase.SUCCEEDED, 0),
    ]
    assert [(s.phase, s.phase_version) for _, s, _ in changes] == expected
    assert [(c.phase, c.phase_version) for c, _, _ in changes] == expected  # ctx carries the status
    assert [n for _, _, n in changes] == [1, 2, 3, 4, 5]  # on_change comes after the event is recorded
    assert [(e.phase, e.phase_version) for e in recorder.events] == [
        (execution_pb2.TaskExecution.QUEUED, 0),
        (execution_pb2.TaskExecution.RUNNING, 0),
        (execution_pb2.TaskExecution.RUNNING, 1),
        (execution_pb2.TaskExecution.RUNNING, 2),
        (execution_pb2.TaskExecution.SUCCEEDED, 0),
    ]
    assert all(e.producer_id == "scripted" and e.task_type == "scripted-type" for e in recorder.events)
    assert all(e.retry_attempt == 3 for e in recorder.events)
    assert recorder.events[-1].output_uri == driver.ctx.outputs_file
    assert driver.ctx.custom_state == {"progress": 2}  # state=None (SUCCEEDED) keeps the last state


async def test_a_failing_recorder_does_not_fail_the_driver(
    make_ctx: Callable[..., TaskContext], caplog: pytest.LogCaptureFixture
) -> None:
    ex = ScriptedExecutor(starts=[RUNNING], checks=[RUNNING, SUCCEEDED])
    broken, good = BrokenRecorder(), ListRecorder()
    changes: list[TaskPhase] = []
    driver = make_driver(
        ex, make_ctx(), event_recorders=(broken, good), on_change=lambda c, s: changes.append(s.phase)
    )
    with caplog.at_level(logging.WARNING, logger="executors.engine.driver"):
        final = await run(driver)
    assert final.phase is TaskPhase.SUCCEEDED
    assert broken.attempts == 2
    assert [e.phase for e in good.events] == [
        execution_pb2.TaskExecution.RUNNING,
        execution_pb2.TaskExecution.SUCCEEDED,
    ]
    assert changes == [TaskPhase.RUNNING, TaskPhase.SUCCEEDED]
    assert sum("event recorder" in r.getMessage() for r in caplog.records) == 2


# -- snapshot and resume ------------------------------------------------------------------------


async def test_snapshot_is_json_safe_and_a_resumed_driver_only_checks(
    make_ctx: Callable[..., TaskContext],
) -> None:
    ex = ScriptedExecutor(starts=[RUNNING], checks=[RUNNING.with_phase_version(1).with_state({"pid": 7})])
    driver = make_driver(ex, make_ctx(), event_recorders=(ListRecorder(),))
    await driver.step()
    await driver.step()
    snap = driver.snapshot().to_dict()
    wire = json.loads(json.dumps(snap))
    assert wire == snap
    assert (wire["accepted"], wire["streak"]) == (True, 0)

    other = ScriptedExecutor(checks=[RUNNING.with_phase_version(1), SUCCEEDED])
    recorder = ListRecorder()
    resumed = ExecutionDriver(
        other,
        TEMPLATE,
        TaskContext.from_dict(wire["task_ctx"]),
        inputs_loader=never_load,
        policy=fast(),
        accepted=wire["accepted"],
        streak=wire["streak"],
        event_recorders=(recorder,),
    )
    assert (await run(resumed)).phase is TaskPhase.SUCCEEDED
    assert other.kinds == ["check", "check"]  # never a second start
    first_ctx = other.calls[0][1]
    assert (first_ctx.phase, first_ctx.phase_version) == (TaskPhase.RUNNING, 1)
    assert first_ctx.custom_state == {"pid": 7}
    assert first_ctx.generated_name == driver.ctx.generated_name
    # RUNNING v1 was already announced before the snapshot: only SUCCEEDED is new.
    assert [e.phase for e in recorder.events] == [execution_pb2.TaskExecution.SUCCEEDED]


async def test_snapshot_before_acceptance_keeps_the_streak_and_resumes_with_start(
    make_ctx: Callable[..., TaskContext],
) -> None:
    ex = ScriptedExecutor(starts=[NOT_READY, NOT_READY])
    driver = make_driver(ex, make_ctx())
    await driver.step()
    await driver.step()
    wire = json.loads(json.dumps(driver.snapshot().to_dict()))
    assert (wire["accepted"], wire["streak"]) == (False, 2)
    assert TaskContext.from_dict(wire["task_ctx"]).phase is TaskPhase.NOT_READY

    other = ScriptedExecutor(starts=[RUNNING], checks=[SUCCEEDED])
    resumed = ExecutionDriver(
        other,
        TEMPLATE,
        TaskContext.from_dict(wire["task_ctx"]),
        inputs_loader=Loader(),
        policy=fast(),
        accepted=wire["accepted"],
        streak=wire["streak"],
    )
    assert resumed.next_delay(NOT_READY) == pytest.approx(0.02)  # streak 2 survived the trip
    assert (await run(resumed)).phase is TaskPhase.SUCCEEDED
    assert other.kinds == ["start", "check"]


# -- PollPolicy ---------------------------------------------------------------------------------


@pytest.mark.parametrize("phase", [TaskPhase.NOT_READY, TaskPhase.UNKNOWN])
def test_delay_grows_exponentially_for_slow_phases_and_caps(phase: TaskPhase) -> None:
    policy = PollPolicy(interval=1.0, max_backoff=10.0, jitter=0.0)
    delays = [policy.delay(phase, streak) for streak in range(8)]
    assert delays == [1.0, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert policy.delay(phase, 10_000) == 10.0  # no overflow for endless streaks


@pytest.mark.parametrize("phase", [TaskPhase.RUNNING, TaskPhase.QUEUED])
def test_delay_stays_at_interval_for_progressing_phases(phase: TaskPhase) -> None:
    policy = PollPolicy(interval=1.5, max_backoff=60.0, jitter=0.0)
    assert {policy.delay(phase, streak) for streak in (0, 1, 5, 50)} == {1.5}


def test_a_watched_running_execution_waits_the_watched_interval_never_less_than_interval() -> None:
    policy = PollPolicy(interval=2.0, watched_interval=30.0, max_backoff=60.0, jitter=0.0)
    assert policy.delay(TaskPhase.RUNNING, 0, watched=True) == 30.0
    assert policy.delay(TaskPhase.RUNNING, 0) == 2.0
    assert policy.delay(TaskPhase.NOT_READY, 3, watched=True) == 8.0  # backoff rules slow phases
    slow = PollPolicy(interval=45.0, watched_interval=30.0, jitter=0.0)
    assert slow.delay(TaskPhase.RUNNING, 0, watched=True) == 45.0


def test_the_driver_waits_longer_after_a_watched_status(make_ctx: Callable[..., TaskContext]) -> None:
    policy = PollPolicy(interval=1.0, watched_interval=20.0, jitter=0.0)
    driver = make_driver(ScriptedExecutor(starts=[], checks=[]), make_ctx(), policy=policy)
    assert driver.next_delay(TaskStatus(TaskPhase.RUNNING).as_watched()) == 20.0
    assert driver.next_delay(TaskStatus(TaskPhase.RUNNING)) == 1.0
    assert TaskStatus(TaskPhase.RUNNING).as_watched() == TaskStatus(TaskPhase.RUNNING)
    assert "watched" not in TaskStatus(TaskPhase.RUNNING).as_watched().to_dict()


def test_jitter_keeps_delays_within_bounds_and_varies_them() -> None:
    policy = PollPolicy(interval=2.0, max_backoff=16.0, jitter=0.25)
    running = [policy.delay(TaskPhase.RUNNING, 0) for _ in range(300)]
    assert all(1.5 <= d <= 2.5 for d in running)
    assert len(set(running)) > 50  # not in lock step
    assert min(running) < 1.8 and max(running) > 2.2  # spread over the whole range
    backing_off = [policy.delay(TaskPhase.UNKNOWN, 3) for _ in range(300)]  # base 8
    assert all(6.0 <= d <= 10.0 for d in backing_off)
    capped = [policy.delay(TaskPhase.NOT_READY, 30) for _ in range(300)]  # base 16 (cap)
    assert all(12.0 <= d <= 20.0 for d in capped)


def test_jitter_larger_than_one_never_gives_a_negative_delay() -> None:
    policy = PollPolicy(interval=1.0, jitter=3.0)
    assert all(0.0 <= policy.delay(TaskPhase.RUNNING, 0) <= 4.0 for _ in range(200))


def test_policy_round_trips_through_a_dict() -> None:
    policy = PollPolicy(interval=0.5, max_backoff=7.0, jitter=0.1, unknown_limit=4, call_timeout=9.0)
    assert PollPolicy.from_dict(json.loads(json.dumps(policy.to_dict()))) == policy


async def test_next_delay_follows_the_streak(make_ctx: Callable[..., TaskContext]) -> None:
    ex = ScriptedExecutor(starts=[NOT_READY, NOT_READY, NOT_READY, RUNNING])
    driver = make_driver(ex, make_ctx(), policy=PollPolicy(interval=1.0, max_backoff=3.0, jitter=0.0))
    delays = [driver.next_delay(await driver.step()) for _ in range(4)]
    assert delays == [1.0, 2.0, 3.0, 1.0]


# -- run(wake) ----------------------------------------------------------------------------------


async def test_wake_cuts_the_wait_short(make_ctx: Callable[..., TaskContext]) -> None:
    ex = ScriptedExecutor(starts=[RUNNING], checks=[RUNNING, SUCCEEDED])
    driver = make_driver(ex, make_ctx(), policy=fast(interval=60.0, max_backoff=60.0))
    wake = Waker()
    task = asyncio.create_task(driver.run(wake))
    try:
        await wait_until(lambda: len(ex.calls) == 1)
        await asyncio.sleep(0.1)
        assert ex.kinds == ["start"]  # waiting out the 60 s interval
        wake.set()
        await wait_until(lambda: len(ex.calls) == 2)
        await asyncio.sleep(0.1)
        assert ex.kinds == ["start", "check"]  # the wake was consumed, not left set
        assert not task.done()
        wake.set()
        final = await asyncio.wait_for(task, timeout=5)
    finally:
        task.cancel()
    assert final.phase is TaskPhase.SUCCEEDED
    assert ex.kinds == ["start", "check", "check"]


async def test_wake_set_during_a_call_is_not_lost(make_ctx: Callable[..., TaskContext]) -> None:
    wake = Waker()

    async def running_and_notify() -> TaskStatus:
        wake.set()  # e.g. a backend notification arriving while the driver is inside check
        return RUNNING

    ex = ScriptedExecutor(starts=[RUNNING], checks=[running_and_notify, SUCCEEDED])
    driver = make_driver(ex, make_ctx(), policy=fast(interval=60.0, max_backoff=60.0))
    task = asyncio.create_task(driver.run(wake))
    try:
        await wait_until(lambda: len(ex.calls) == 1)
        wake.set()
        final = await asyncio.wait_for(task, timeout=5)
    finally:
        task.cancel()
    assert final.phase is TaskPhase.SUCCEEDED
    assert ex.kinds == ["start", "check", "check"]
    assert not wake.is_set()


# -- the real local executor, end to end ---------------------------------------------------------

DOUBLE = python_template(DOUBLER, "{{.input}}", "{{.outputPrefix}}", inputs={"x": INT}, outputs={"y": INT})


@pytest.fixture
async def local(tmp_path: Path, store: DataStore) -> LocalExecutor:
    ex = LocalExecutor(state_root=str(tmp_path / "state"), kill_grace_period=2)
    await ex.initialize(ExecutorInitializationParameters(data_store=store))
    return ex


def store_loader(store: DataStore, ctx: TaskContext) -> Callable[[], Awaitable[literals_pb2.LiteralMap]]:
    async def load() -> literals_pb2.LiteralMap:
        return await store.read_protobuf(ctx.inputs_file, literals_pb2.LiteralMap)

    return load


async def test_local_executor_end_to_end_with_events_on_disk(
    local: LocalExecutor, store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    ctx = make_ctx(attempt=1)
    await store.write_protobuf(ctx.inputs_file, to_literal_map({"x": 21}, DOUBLE.interface.inputs))
    changes: list[TaskStatus] = []
    driver = ExecutionDriver(
        local,
        DOUBLE,
        ctx,
        inputs_loader=store_loader(store, ctx),
        policy=PollPolicy(interval=0.01, max_backoff=0.1, call_timeout=30),
        event_recorders=(DataStoreEventRecorder(store),),
        on_change=lambda c, s: changes.append(s),
    )
    final = await run(driver, timeout=30)
    assert final.phase is TaskPhase.SUCCEEDED, final

    outputs = await local.resolve_outputs(driver.ctx, "y")
    out_map = literals_pb2.LiteralMap()
    for name, literal in outputs.items():
        out_map.literals[name].CopyFrom(literal)
    assert from_literal_map(out_map, DOUBLE.interface.outputs) == {"y": 42}
    assert Path(local.log_paths(ctx)[0]).read_text() == "doubled 21\n"

    events_dir = Path(ctx.data_dir, "events")
    names = sorted(os.listdir(events_dir))
    events = [event_pb2.TaskExecutionEvent.FromString((events_dir / n).read_bytes()) for n in names]
    assert [c.phase for c in changes] == [TaskPhase.RUNNING, TaskPhase.SUCCEEDED]
    assert len(events) == len(changes)  # one file per phase change, no more
    assert [e.phase for e in events] == [
        execution_pb2.TaskExecution.RUNNING,
        execution_pb2.TaskExecution.SUCCEEDED,
    ]
    assert names[0].endswith("-running-v0.pb") and names[1].endswith("-succeeded-v0.pb")
    assert all(e.producer_id == "local" and e.task_type == "container" for e in events)
    assert all(e.retry_attempt == 1 and e.input_uri == ctx.inputs_file for e in events)
    assert events[1].output_uri == ctx.outputs_file


async def test_local_executor_resumed_from_a_snapshot_is_not_launched_twice(
    tmp_path: Path, local: LocalExecutor, store: DataStore, make_ctx: Callable[..., TaskContext]
) -> None:
    marker = tmp_path / "starts.txt"
    script = "import sys, time\nopen(sys.argv[1], 'a').write('started\\n')\ntime.sleep(0.5)"
    template = python_template(script, str(marker))
    ctx = make_ctx()
    await store.write_protobuf(ctx.inputs_file, literals_pb2.LiteralMap())
    first = ExecutionDriver(
        local, template, ctx, inputs_loader=store_loader(store, ctx), policy=PollPolicy(interval=0.01)
    )
    assert (await first.step()).phase is TaskPhase.RUNNING
    wire = json.loads(json.dumps(first.snapshot().to_dict()))

    # Another process: a fresh executor over the same state root, a driver rebuilt from the snapshot.
    other = LocalExecutor(state_root=local.state_root)
    await other.initialize(ExecutorInitializationParameters(data_store=store))
    resumed = ExecutionDriver(
        other,
        template,
        TaskContext.from_dict(wire["task_ctx"]),
        inputs_loader=never_load,
        policy=PollPolicy(interval=0.01, max_backoff=0.1),
        accepted=wire["accepted"],
        streak=wire["streak"],
    )
    assert (await run(resumed, timeout=30)).phase is TaskPhase.SUCCEEDED
    assert marker.read_text() == "started\n"
