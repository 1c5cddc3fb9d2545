"""start_from_trigger and end_from_trigger: which tasks qualify, and the trigger doing a worker's
turns itself (real local executor underneath; the real stack is in tests/e2e).

The trigger is built from the very kwargs the operator gives Airflow (``start_trigger_args``), and
what it ends with is compared with what the worker path pushes for the same task.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DAG, task
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred
from airflow.triggers.base import DiscrimatedTriggerEvent, TaskFailedEvent, TaskSuccessEvent, TriggerEvent
from pydantic import TypeAdapter

from airflow_provider import ending
from airflow_provider.decorators import executor_task
from airflow_provider.execution import ExecutionHandle
from airflow_provider.identity import Attempt
from airflow_provider.links import RUN_URL_XCOM_KEY
from airflow_provider.operators import ExecutorOperator
from airflow_provider.start import handle_of_trigger_start
from airflow_provider.triggers import ExecutorTrigger, ResumeEvent
from executors import Cache, DataStore
from harness.fake_ti import FakeTI
from tests.airflow_provider.test_operators import ARGS, SHOUT, context_for

ENV = "AIRFLOW__PROVIDER_EXECUTORS__"
START = dt.datetime(2026, 1, 1)


@pytest.fixture(autouse=True)
def nothing_needs_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """This test process may carry Airflow's example listener plugin: the tests that want one say so."""
    monkeypatch.setattr(ending, "_blockers", [])


@pytest.fixture(autouse=True)
def pushed(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What the trigger pushes through the triggerer's XCom API (no triggerer here: recorded; the
    real push is tested on a real stack in tests/e2e)."""
    recorded: dict[str, Any] = {}

    async def push(ti: Any, xcoms: dict[str, Any]) -> None:
        json.dumps(xcoms)  # what Airflow's serde would get: plain values here
        recorded.update(xcoms)

    monkeypatch.setattr(ending, "push_xcoms", push)
    return recorded


def shout_operator(tmp_path: Path, **overrides: Any) -> ExecutorOperator:
    """The task of test_operators.py: y = 2x and the words upper-cased."""
    arguments: dict[str, Any] = {
        "task_id": "shout",
        "command": ["python", "-c", SHOUT, *ARGS],
        "input_types": {"x": int, "words": list[str]},
        "output_types": {"y": int, "shout": list[str]},
        "inputs": {"x": 21, "words": ["a", "b"]},
        "data_dir": str(tmp_path / "data"),
        "poll_interval": 0.1,
    }
    return ExecutorOperator(**{**arguments, **overrides})


def in_dag(make: Any, **dag_kwargs: Any) -> Any:
    with DAG("sft_dag", schedule=None, start_date=START, **dag_kwargs):
        return make()


def trigger_of(op: ExecutorOperator, ti: FakeTI, *, in_triggerer: bool = True) -> ExecutorTrigger:
    """The trigger Airflow builds from the operator's start_trigger_args, as a triggerer would."""
    args = op.start_trigger_args
    assert op.start_from_trigger and args is not None
    assert args.trigger_cls == "airflow_provider.triggers.ExecutorTrigger"
    assert args.next_method == "execute_complete"
    trigger = ExecutorTrigger(**args.trigger_kwargs)  # type: ignore[arg-type]
    ti.task = op  # type: ignore[attr-defined]  # a triggerer's RuntimeTaskInstance has its task
    trigger.task_instance = ti  # type: ignore[assignment]
    if in_triggerer:
        trigger.trigger_id = 7  # a real triggerer sets it; dag.test()'s inline run does not
    return trigger


async def first_event(trigger: ExecutorTrigger, timeout: float = 60) -> TriggerEvent:
    async def first() -> TriggerEvent:
        async for event in trigger.run():
            return event
        raise AssertionError("no event")

    return await asyncio.wait_for(first(), timeout)


# -- which tasks qualify -------------------------------------------------------------------------


def test_a_task_with_static_arguments_starts_in_the_triggerer(tmp_path: Path) -> None:
    op = in_dag(lambda: shout_operator(tmp_path))
    assert op.start_from_trigger is True
    kwargs = op.start_trigger_args.trigger_kwargs
    # The templated fields travel under the operator's names: the triggerer renders those.
    assert kwargs["inputs"] == {"x": 21, "words": ["a", "b"]}
    assert kwargs["data_dir"] == str(tmp_path / "data")
    # The template's JSON is kept away from Jinja ({{.input}} is Flyte's, not Jinja's).
    assert "task_template" not in kwargs
    assert "{{.input}}" in kwargs["start"]["template"]["container"]["command"]
    assert kwargs["end_from_trigger"] is True


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: shout_operator(p, deferrable=False), "deferrable=False"),
        (lambda p: shout_operator(p, start_from_trigger=False), "start_from_trigger is off"),
        (lambda p: shout_operator(p, on_execute_callback=lambda ctx: None), "on_execute_callback"),
    ],
)
def test_tasks_that_need_a_worker_start_there(tmp_path: Path, make: Any, reason: str) -> None:
    op = in_dag(lambda: make(tmp_path))
    assert op.start_from_trigger is False and op.start_trigger_args is None
    assert reason in op._start_in_worker


def test_an_input_from_an_upstream_task_starts_in_a_worker(tmp_path: Path) -> None:
    def make() -> ExecutorOperator:
        @task
        def upstream() -> int:
            return 1

        return shout_operator(tmp_path, inputs={"x": upstream(), "words": []})

    op = in_dag(make)
    assert op.start_from_trigger is False
    assert "XComArg" in op._start_in_worker


def test_native_rendering_dags_start_in_a_worker(tmp_path: Path) -> None:
    op = in_dag(lambda: shout_operator(tmp_path), render_template_as_native_obj=True)
    assert op.start_from_trigger is False
    assert "native" in op._start_in_worker


def test_the_config_option_turns_it_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV + "START_FROM_TRIGGER", "False")
    assert in_dag(lambda: shout_operator(tmp_path)).start_from_trigger is False
    # ... and the operator's argument wins over it.
    assert in_dag(lambda: shout_operator(tmp_path, start_from_trigger=True)).start_from_trigger is True


def test_mapped_tasks_start_in_a_worker(tmp_path: Path) -> None:
    def make() -> Any:
        return ExecutorOperator.partial(
            task_id="mapped", command=["true"], input_types={"x": int}, data_dir=str(tmp_path)
        ).expand(inputs=[{"x": 1}, {"x": 2}])

    mapped = in_dag(make)
    assert mapped.start_from_trigger is False


def test_a_decorated_function_with_static_arguments_qualifies_and_one_fed_by_xcom_does_not() -> None:
    def make() -> tuple[Any, Any]:
        @executor_task
        def double(x: int) -> int:
            return 2 * x

        fixed = double(4)
        fed = double(fixed)
        return fixed.operator, fed.operator

    fixed, fed = in_dag(make)
    assert fixed.start_from_trigger is True
    assert fixed.start_trigger_args.trigger_kwargs["inputs"] == {"x": 4}
    assert fixed.start_trigger_args.trigger_kwargs["returns"] == {"single": "o0", "multiple_outputs": False}
    assert fed.start_from_trigger is False


def test_start_trigger_args_survive_dag_serialization(tmp_path: Path) -> None:
    from airflow.serialization.decoders import smart_decode_trigger_kwargs
    from airflow.serialization.serialized_objects import DagSerialization

    dag = DAG("sft_serialized", schedule=None, start_date=START)
    with dag:
        op = shout_operator(tmp_path)
    restored = DagSerialization.from_dict(DagSerialization.to_dict(dag)).get_task("shout")
    assert restored.start_from_trigger is True
    # What the triggerer hands the trigger: the scheduler's trigger row, decoded.
    kwargs = smart_decode_trigger_kwargs(restored.start_trigger_args.trigger_kwargs)
    assert ExecutorTrigger(**kwargs).start == op.start_trigger_args.trigger_kwargs["start"]
    assert kwargs["inputs"] == {"x": 21, "words": ["a", "b"]}
    assert kwargs["start"]["template"]["container"]["command"][-3:] == [
        "{{.input}}",
        "{{.outputPrefix}}",
        "{{.taskTemplatePath}}",
    ]


# -- the trigger starts and ends the task --------------------------------------------------------


async def test_the_trigger_starts_and_ends_a_task_with_the_xcoms_a_worker_pushes(
    tmp_path: Path, pushed: dict[str, Any]
) -> None:
    op = in_dag(lambda: shout_operator(tmp_path))
    event = await first_event(trigger_of(op, FakeTI(task_id="shout", dag_id="sft_dag")))
    assert isinstance(event, TaskSuccessEvent), event
    assert event.xcoms is None  # pushed beforehand: Airflow 3.3.2 double-encodes the event's own
    # The worker path on the same task, another run: the same XComs, key for key.
    worker = in_dag(lambda: shout_operator(tmp_path, start_from_trigger=False, deferrable=False))
    context = context_for(worker, dag_id="sft_dag", run_id="worker-run")
    returned = worker.execute(context)
    by_worker = {**context["ti"].xcoms, "return_value": returned, **returned}
    assert set(pushed) == set(by_worker)
    assert pushed["return_value"] == by_worker["return_value"] == {"y": 42, "shout": ["A", "B"]}
    assert pushed["y"] == 42 and pushed["shout"] == ["A", "B"]
    assert pushed[RUN_URL_XCOM_KEY].startswith("/executors/ti/sft_dag/")  # the Execution view


async def test_the_run_link_is_pushed_once_as_soon_as_the_execution_is_submitted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[set[str]] = []
    failing = {"start": True}

    async def push(ti: Any, xcoms: dict[str, Any]) -> None:
        if failing["start"] and xcoms.keys() == {RUN_URL_XCOM_KEY}:
            failing["start"] = False
            raise ConnectionError("execution API busy")
        calls.append(set(xcoms))

    monkeypatch.setattr(ending, "push_xcoms", push)
    op = in_dag(lambda: shout_operator(tmp_path))
    # The first task's push at the start fails: its end pushes the link then.
    assert isinstance(
        await first_event(trigger_of(op, FakeTI(task_id="shout", dag_id="sft_dag"))), TaskSuccessEvent
    )
    assert len(calls) == 1 and RUN_URL_XCOM_KEY in calls[0] and "return_value" in calls[0]
    calls.clear()
    other = FakeTI(task_id="shout", dag_id="sft_dag", run_id="second")
    assert isinstance(await first_event(trigger_of(op, other)), TaskSuccessEvent)
    assert calls[0] == {RUN_URL_XCOM_KEY}, "the link is pushed first, on its own, at the start"
    assert len(calls) == 2 and RUN_URL_XCOM_KEY not in calls[1] and "return_value" in calls[1]


async def test_the_launch_does_not_wait_for_the_run_links_push(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Many tasks starting at once queue their pushes on the triggerer's one channel to Airflow:
    # the push of the link waits here until the command runs, which it never would if the
    # launch came after the push.
    marker = tmp_path / "started"
    seen: list[bool] = []

    async def push(ti: Any, xcoms: dict[str, Any]) -> None:
        if xcoms.keys() == {RUN_URL_XCOM_KEY}:
            for _ in range(100):
                if marker.exists():
                    break
                await asyncio.sleep(0.05)
            seen.append(marker.exists())

    monkeypatch.setattr(ending, "push_xcoms", push)
    command = ["sh", "-c", f'touch {marker} && exec python -c "$0" "$@"', SHOUT, *ARGS]
    op = in_dag(lambda: shout_operator(tmp_path, command=command))
    event = await first_event(trigger_of(op, FakeTI(task_id="shout", dag_id="sft_dag")))
    assert isinstance(event, TaskSuccessEvent)
    assert seen == [True], "the execution was launched only after the run link's push"


async def test_a_decorated_task_ends_with_its_single_value(tmp_path: Path, pushed: dict[str, Any]) -> None:
    def make() -> Any:
        @executor_task(data_dir=str(tmp_path / "data"), poll_interval=0.1)
        def double(x: int) -> int:
            return 2 * x

        return double(21).operator

    op = in_dag(make)
    event = await first_event(trigger_of(op, FakeTI(task_id="double", dag_id="sft_dag")))
    assert isinstance(event, TaskSuccessEvent), event
    assert pushed["return_value"] == 42
    assert "o0" not in pushed  # not multiple_outputs: no per-key XCom


async def test_the_trigger_answers_a_cache_hit_without_running_anything(
    tmp_path: Path, pushed: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV + "CATALOG_URL", str(tmp_path / "catalog"))
    runs = tmp_path / "runs.txt"
    op = in_dag(
        lambda: shout_operator(
            tmp_path,
            command=["sh", "-c", f'echo run >> {runs} && exec python -c "$0" "$@"', SHOUT, *ARGS],
            cache=Cache(version="1"),
        )
    )
    first = await first_event(trigger_of(op, FakeTI(task_id="shout", dag_id="sft_dag", run_id="one")))
    assert isinstance(first, TaskSuccessEvent) and pushed["cache_status"] == "CACHE_POPULATED"
    pushed.clear()
    second = await first_event(trigger_of(op, FakeTI(task_id="shout", dag_id="sft_dag", run_id="two")))
    assert isinstance(second, TaskSuccessEvent)
    assert pushed["cache_status"] == "CACHE_HIT"
    assert pushed["return_value"] == {"y": 42, "shout": ["A", "B"]}
    assert runs.read_text().splitlines() == ["run"]  # the second one ran nothing
    assert pushed[RUN_URL_XCOM_KEY] == ""  # no link to an execution folder that was never made


async def test_bad_input_fails_in_a_worker_without_retry_naming_the_input(tmp_path: Path) -> None:
    op = in_dag(lambda: shout_operator(tmp_path, inputs={"x": "not a number", "words": []}))
    event = await first_event(trigger_of(op, FakeTI(task_id="shout", dag_id="sft_dag")))
    # A TaskFailedEvent would be retried: the worker fails the task for good instead.
    assert type(event) is ResumeEvent and event.payload["handle"] is None
    with pytest.raises(AirflowFailException, match=r"shout: .*\bx\b"):
        op.execute_complete(context_for(op, dag_id="sft_dag"), event.payload)
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").rglob("task.pb"))


async def test_a_retryable_failure_ends_in_the_triggerer_as_a_failed_event(tmp_path: Path) -> None:
    op = in_dag(lambda: shout_operator(tmp_path, command=["python", "-c", "import sys; sys.exit(3)"]))
    event = await first_event(trigger_of(op, FakeTI(task_id="shout", dag_id="sft_dag")))
    assert isinstance(event, TaskFailedEvent), event  # Airflow retries it while tries remain


async def test_xcoms_that_cannot_be_pushed_end_the_task_in_a_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(ti: Any, xcoms: dict[str, Any]) -> None:
        raise ConnectionError("execution API down")

    monkeypatch.setattr(ending, "push_xcoms", refuse)
    op = in_dag(lambda: shout_operator(tmp_path))
    event = await first_event(trigger_of(op, FakeTI(task_id="shout", dag_id="sft_dag")))
    assert type(event) is ResumeEvent
    assert op.execute_complete(context_for(op, dag_id="sft_dag"), event.payload) == {
        "y": 42,
        "shout": ["A", "B"],
    }


async def test_a_permanent_failure_goes_to_a_worker_with_its_conclusion(tmp_path: Path) -> None:
    script = "from executors import task_io; import sys; task_io.write_error(sys.argv[2], 'bad', recoverable=False); sys.exit(1)"
    op = in_dag(
        lambda: shout_operator(tmp_path, command=["python", "-c", script, "{{.input}}", "{{.outputPrefix}}"])
    )
    event = await first_event(trigger_of(op, FakeTI(task_id="shout", dag_id="sft_dag")))
    assert type(event) is ResumeEvent and event.payload["conclusion"]["permanent"] is True
    context = context_for(op, dag_id="sft_dag")
    with pytest.raises(AirflowFailException, match="bad"):
        op.execute_complete(context, event.payload)


async def test_outside_a_triggerer_the_task_ends_in_a_worker(tmp_path: Path) -> None:
    op = in_dag(lambda: shout_operator(tmp_path))
    trigger = trigger_of(op, FakeTI(task_id="shout", dag_id="sft_dag"), in_triggerer=False)
    event = await first_event(trigger)
    assert type(event) is ResumeEvent  # dag.test() runs triggers inline and resumes the task
    assert op.execute_complete(context_for(op, dag_id="sft_dag"), event.payload) == {
        "y": 42,
        "shout": ["A", "B"],
    }


async def test_a_custom_xcom_backend_or_a_listener_keeps_the_worker_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ending, "_blockers", ["a listener (tests.some_listener)"])
    op = in_dag(lambda: shout_operator(tmp_path))
    event = await first_event(trigger_of(op, FakeTI(task_id="shout", dag_id="sft_dag")))
    assert type(event) is ResumeEvent and event.payload["handle"] is not None
    # The triggerer logs the event's repr: a line that says what happened, not the whole handle.
    name = ExecutionHandle.from_dict(event.payload["handle"]).task_ctx.generated_name
    assert repr(event) == f"TriggerEvent<SUCCEEDED: execution {name}; the task resumes in a worker>"
    # On the wire (the trigger runner to its supervisor) it is an ordinary event, payload and all.
    wire = TypeAdapter(DiscrimatedTriggerEvent)
    received = wire.validate_json(wire.dump_json(wire.validate_python(event)))
    assert type(received) is TriggerEvent and received.payload == event.payload


class SomeListener:
    """A listener of another plugin (OpenLineage's, say)."""


def test_what_needs_a_worker_is_read_from_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.listeners.listener import get_listener_manager

    assert not any("XCom" in b or "SomeListener" in b for b in ending._process_blockers())
    monkeypatch.setenv("AIRFLOW__CORE__XCOM_BACKEND", "my.CustomXCom")
    assert "a custom XCom backend (my.CustomXCom)" in ending._process_blockers()
    manager, listener = get_listener_manager(), SomeListener()
    manager.add_listener(listener)
    try:
        assert f"a listener ({__name__})" in ending._process_blockers()
    finally:
        manager.pm.unregister(listener)
    # The provider's own listener (it stops executions on user actions) is not one of them.
    assert not any("airflow_provider" in b for b in ending._process_blockers())


def test_a_worker_ends_a_task_whose_output_a_downstream_task_maps_over(tmp_path: Path) -> None:
    def make() -> ExecutorOperator:
        op = shout_operator(tmp_path)

        @task
        def each(y: int) -> int:
            return y

        each.expand(y=op.output)
        return op

    op = in_dag(make)
    assert op._ends_in_triggerer(check_dependants=True) is False
    assert in_dag(lambda: shout_operator(tmp_path, task_id="alone"))._ends_in_triggerer(check_dependants=True)


async def test_a_deferring_worker_passes_end_from_trigger_to_its_trigger(
    tmp_path: Path, pushed: dict[str, Any]
) -> None:
    op = in_dag(lambda: shout_operator(tmp_path, start_from_trigger=False))
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context_for(op, dag_id="sft_dag"))
    trigger = deferred.value.trigger
    assert isinstance(trigger, ExecutorTrigger) and trigger.end_from_trigger is True
    trigger.trigger_id = 3
    event = await first_event(trigger)
    assert isinstance(event, TaskSuccessEvent)
    assert pushed["y"] == 42


async def test_the_listener_finds_the_execution_a_starting_trigger_made(tmp_path: Path) -> None:
    op = in_dag(lambda: shout_operator(tmp_path))
    ti = FakeTI(task_id="shout", dag_id="sft_dag", try_number=2)
    trigger = trigger_of(op, ti)
    await first_event(trigger)
    kwargs = op.start_trigger_args.trigger_kwargs
    found = await handle_of_trigger_start(kwargs["start"], kwargs, Attempt.of(ti), DataStore())
    assert found is not None and trigger.handle is not None
    assert found.task_ctx.generated_name == trigger.handle.task_ctx.generated_name
    assert found.task_ctx.data_dir == trigger.handle.task_ctx.data_dir
    templated = {**kwargs, "data_dir": "{{ var.value.where }}"}
    assert await handle_of_trigger_start(kwargs["start"], templated, Attempt.of(ti), DataStore()) is None


async def test_a_new_try_started_in_the_triggerer_stops_the_previous_trys_execution(tmp_path: Path) -> None:
    sleeper = ["python", "-c", "import time; time.sleep(120)"]
    op = in_dag(lambda: shout_operator(tmp_path, command=sleeper, input_types={}, output_types={}, inputs={}))
    first = trigger_of(op, FakeTI(task_id="shout", dag_id="sft_dag", try_number=1))
    running = asyncio.ensure_future(first_event(first))
    await wait_for_file(lambda: first.handle, "the first try's execution")
    task_pb = Path(first.handle.task_ctx.task_template_file)  # type: ignore[union-attr]
    await wait_for_file(lambda: task_pb.exists(), "its task.pb")
    await asyncio.sleep(1.0)  # its process runs
    # The task is cleared: try 2's trigger starts; the first trigger sees the task deferred again
    # and leaves its execution alone, so try 2 must stop it.
    second = trigger_of(op, FakeTI(task_id="shout", dag_id="sft_dag", try_number=2))
    started = asyncio.ensure_future(first_event(second))
    event = await asyncio.wait_for(running, 30)
    assert type(event) is ResumeEvent
    status = event.payload["status"]
    assert "superseded by a new try" in status["err"]["message"], status
    started.cancel()
    await second.on_kill()


async def wait_for_file(probe: Any, what: str, timeout: float = 30) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while (found := probe()) is None or found is False:
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return found


def test_a_task_without_a_status_event_says_so(tmp_path: Path) -> None:
    op = in_dag(lambda: shout_operator(tmp_path))
    with pytest.raises(AirflowException, match="without a status event"):
        op.execute_complete(context_for(op), "success")  # type: ignore[arg-type]


async def test_an_event_meant_for_another_task_makes_the_task_wait_again(tmp_path: Path) -> None:
    # On SQLite Airflow reuses a deleted trigger row's id: a stale trigger then fires into the
    # task now deferred under that id. Seen on the real stack (tests/e2e), made here directly.
    other = in_dag(lambda: shout_operator(tmp_path, task_id="other"))
    stray = await first_event(
        trigger_of(other, FakeTI(task_id="other", dag_id="sft_dag"), in_triggerer=False)
    )
    assert stray.payload["owner"]["task_id"] == "other"
    op = in_dag(lambda: shout_operator(tmp_path))
    with pytest.raises(TaskDeferred) as deferred:
        op.execute_complete(context_for(op, dag_id="sft_dag"), stray.payload)
    again = deferred.value.trigger
    assert isinstance(again, ExecutorTrigger) and again.start is not None  # starts (or re-attaches) itself
    event = await first_event(_attach(again, op))
    assert op.execute_complete(context_for(op, dag_id="sft_dag"), event.payload) == {
        "y": 42,
        "shout": ["A", "B"],
    }


def _attach(trigger: ExecutorTrigger, op: ExecutorOperator) -> ExecutorTrigger:
    ti = FakeTI(task_id=op.task_id, dag_id="sft_dag")
    ti.task = op  # type: ignore[attr-defined]
    trigger.task_instance = ti  # type: ignore[assignment]
    return trigger


async def test_a_stray_event_on_the_worker_path_waits_again_on_the_recorded_execution(tmp_path: Path) -> None:
    from tests.reliability_units.support import MemoryTaskStateStore

    op = in_dag(lambda: shout_operator(tmp_path, start_from_trigger=False))
    store = MemoryTaskStateStore()
    context = {**context_for(op, dag_id="sft_dag"), "task_state_store": store}
    with pytest.raises(TaskDeferred) as first:
        op.execute(context)
    mine = first.value.trigger
    stray = {
        "status": {"phase": 4},
        "handle": None,
        "owner": {**vars(Attempt.of(context["ti"])), "task_id": "x"},
    }
    with pytest.raises(TaskDeferred) as again:
        op.execute_complete(context, stray)
    assert isinstance(again.value.trigger, ExecutorTrigger) and again.value.trigger.handle is not None
    assert again.value.trigger.handle.task_ctx.generated_name == mine.handle.task_ctx.generated_name  # type: ignore[attr-defined]
    event = await first_event(again.value.trigger)
    assert op.execute_complete(context, event.payload) == {"y": 42, "shout": ["A", "B"]}


async def test_an_unexpected_error_at_start_fails_the_try_not_the_triggerer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider import start

    async def broken(*args: Any) -> Any:
        raise KeyError("a bug")

    monkeypatch.setattr(start, "prepare", broken)
    op = in_dag(lambda: shout_operator(tmp_path))
    event = await first_event(trigger_of(op, FakeTI(task_id="shout", dag_id="sft_dag")))
    assert isinstance(event, TaskFailedEvent), event  # retried while tries remain
    outside = await first_event(trigger_of(op, FakeTI(task_id="shout", dag_id="sft_dag"), in_triggerer=False))
    with pytest.raises(AirflowException, match="start failed: 'a bug'") as raised:
        op.execute_complete(context_for(op, dag_id="sft_dag"), outside.payload)
    assert not isinstance(raised.value, AirflowFailException)


def test_a_dag_asking_for_end_from_trigger_parses_with_listeners_installed(tmp_path: Path) -> None:
    # Airflow's DagBag refuses a task whose `end_from_trigger` attribute is true while any listener
    # is installed, and the provider's own plugin always installs one.
    from airflow.dag_processing.dagbag import DagBag
    from airflow.listeners.listener import get_listener_manager

    assert get_listener_manager().has_listeners
    (tmp_path / "asks.py").write_text(
        "import datetime as dt\n"
        "from airflow.sdk import DAG\n"
        "from airflow_provider.operators import ExecutorOperator\n"
        "with DAG('asks', schedule=None, start_date=dt.datetime(2026, 1, 1)):\n"
        "    ExecutorOperator(task_id='t', command=['true'], end_from_trigger=True)\n"
    )
    bag = DagBag(dag_folder=str(tmp_path))
    assert bag.import_errors == {} and "asks" in bag.dags
    assert bag.dags["asks"].get_task("t").start_trigger_args.trigger_kwargs["end_from_trigger"] is True
