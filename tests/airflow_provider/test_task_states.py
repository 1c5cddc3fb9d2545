"""Coalesced task-state reads: many triggers' reads of one moment, few ``get_task_states`` calls.

The injected call answers from a table of task instances the way Airflow's execution API does
(``GET /task-instances/states``: filter on dag_id, task_ids, run_ids and map_index when given; key
``task_id`` for an unmapped task instance, ``f"{task_id}_{map_index}"`` for a mapped one).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider import task_states
from airflow_provider.task_states import CHUNK, MAX_CELLS, TaskStateUnavailable, task_state
from airflow_provider.triggers import ExecutorTrigger


class FakeAirflow:
    """Task instances ``(dag_id, run_id, task_id, map_index) -> state`` and the calls made."""

    def __init__(self) -> None:
        self.tis: dict[tuple[str, str, str, int], str] = {}
        self.calls: list[dict[str, Any]] = []
        self.release: asyncio.Event | None = None  # set: calls wait for it
        self.error: Exception | None = None

    def add(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1, state: str = "") -> str:
        state = state or f"state-of-{dag_id}-{run_id}-{task_id}-{map_index}"
        self.tis[(dag_id, run_id, task_id, map_index)] = state
        return state

    async def __call__(
        self, *, dag_id: str, map_index: int | None, task_ids: list[str], run_ids: list[str]
    ) -> Mapping[str, Any]:
        self.calls.append(
            {"dag_id": dag_id, "map_index": map_index, "task_ids": task_ids, "run_ids": run_ids}
        )
        await asyncio.sleep(0)  # a round trip
        if self.release is not None:
            await self.release.wait()
        if self.error is not None:
            raise self.error
        states: dict[str, dict[str, str]] = collections.defaultdict(dict)
        for (dag, run, task, index), state in self.tis.items():
            if dag != dag_id or task not in task_ids or run not in run_ids:
                continue
            if map_index is not None and map_index >= 0 and index != map_index:
                continue
            states[run][task if index < 0 else f"{task}_{index}"] = state
        return states


@pytest.fixture
def airflow(monkeypatch: pytest.MonkeyPatch) -> FakeAirflow:
    fake = FakeAirflow()
    monkeypatch.setattr(task_states, "fetch_task_states", fake)
    return fake


async def test_100_reads_of_one_dag_run_are_one_call_each_caller_getting_its_own_state(
    airflow: FakeAirflow,
) -> None:
    expected = [airflow.add("d", "r", f"t{i}") for i in range(100)]
    got = await asyncio.gather(*(task_state("d", "r", f"t{i}", -1) for i in range(100)))
    assert got == expected
    assert len(airflow.calls) == 1
    assert sorted(airflow.calls[0]["task_ids"]) == sorted(f"t{i}" for i in range(100))
    assert airflow.calls[0]["run_ids"] == ["r"]


@pytest.mark.parametrize(("tasks", "runs"), [(450, 1), (1, 250), (10, 50)])
async def test_bigger_batches_are_split_into_bounded_calls(
    airflow: FakeAirflow, tasks: int, runs: int
) -> None:
    keys = [(f"r{r}", f"t{t}") for r in range(runs) for t in range(tasks)]
    expected = [airflow.add("d", run, task) for run, task in keys]
    got = await asyncio.gather(*(task_state("d", run, task, None) for run, task in keys))
    assert got == expected
    assert len(airflow.calls) == math.ceil(len(keys) / MAX_CELLS)
    for call in airflow.calls:
        assert len(call["task_ids"]) * len(call["run_ids"]) <= MAX_CELLS


async def test_two_dags_are_two_calls(airflow: FakeAirflow) -> None:
    a = [airflow.add("a", "r", f"t{i}") for i in range(5)]
    b = [airflow.add("b", "r", f"t{i}") for i in range(5)]
    got = await asyncio.gather(*(task_state(dag, "r", f"t{i}", -1) for dag in "ab" for i in range(5)))
    assert got == a + b
    assert sorted(call["dag_id"] for call in airflow.calls) == ["a", "b"]


async def test_mapped_task_instances_are_read_by_their_map_index_key(airflow: FakeAirflow) -> None:
    zero = airflow.add("d", "r", "m", 0)
    one = airflow.add("d", "r", "m", 1)
    other_zero = airflow.add("d", "r", "n", 0)
    plain = airflow.add("d", "r", "u")
    got = await asyncio.gather(
        task_state("d", "r", "m", 0),
        task_state("d", "r", "m", 1),
        task_state("d", "r", "n", 0),
        task_state("d", "r", "u", -1),
        task_state("d", "r", "u", None),  # None and -1: the same request (no map_index sent)
        task_state("d", "r", "gone", -1),  # no such task instance
    )
    assert list(got) == [zero, one, other_zero, plain, plain, None]
    assert sorted((c["map_index"] is None, c["map_index"], sorted(c["task_ids"])) for c in airflow.calls) == [
        (False, 0, ["m", "n"]),
        (False, 1, ["m"]),
        (True, None, ["gone", "u"]),
    ]


async def test_enum_states_are_handed_back_as_their_value(airflow: FakeAirflow) -> None:
    airflow.add("d", "r", "t", state=SimpleNamespace(value="deferred"))  # type: ignore[arg-type]
    assert await task_state("d", "r", "t", -1) == "deferred"


async def test_a_failed_call_fails_each_of_its_reads_and_the_next_batch_works(airflow: FakeAirflow) -> None:
    expected = [airflow.add("d", "r", f"t{i}") for i in range(20)]
    airflow.error = RuntimeError("supervisor gone")
    got = await asyncio.gather(
        *(task_state("d", "r", f"t{i}", -1) for i in range(20)), return_exceptions=True
    )
    assert all(isinstance(error, TaskStateUnavailable) for error in got), got
    assert {str(error) for error in got} == {"supervisor gone"}
    assert all(error.__cause__ is airflow.error for error in got)  # type: ignore[union-attr]
    assert len({id(error) for error in got}) == 20  # one error each: no shared traceback
    assert len(airflow.calls) == 1
    airflow.error = None
    assert await asyncio.gather(*(task_state("d", "r", f"t{i}", -1) for i in range(20))) == expected
    assert len(airflow.calls) == 2


async def test_the_trigger_logs_a_failed_read_as_before_and_takes_the_state_as_unknown(
    airflow: FakeAirflow, caplog: pytest.LogCaptureFixture
) -> None:
    airflow.error = RuntimeError("supervisor gone")
    triggers = [ExecutorTrigger(start={}) for _ in range(3)]
    for i, trigger in enumerate(triggers):
        trigger.task_instance = SimpleNamespace(dag_id="d", run_id="r", task_id=f"t{i}", map_index=-1)  # type: ignore[assignment]
        trigger._log = logging.getLogger("tests.task_states")  # type: ignore[assignment]  # not structlog: caplog sees it
    with caplog.at_level(logging.WARNING, logger="tests.task_states"):
        got = await asyncio.gather(*(trigger._task_state("starting") for trigger in triggers))
    assert got == [None, None, None]
    assert len(airflow.calls) == 1
    warnings = [r.getMessage() for r in caplog.records if "could not read" in r.getMessage()]
    assert warnings == ["could not read the task's state before starting (supervisor gone)"] * 3
    airflow.error = None
    airflow.add("d", "r", "t0", state="deferred")
    assert await triggers[0]._task_state("starting") == "deferred"


async def test_a_cancelled_caller_does_not_break_the_batch(airflow: FakeAirflow) -> None:
    expected = [airflow.add("d", "r", f"t{i}") for i in range(5)]
    airflow.release = asyncio.Event()
    callers = [asyncio.create_task(task_state("d", "r", f"t{i}", -1)) for i in range(5)]
    while not airflow.calls:  # the call is in flight
        await asyncio.sleep(0.001)
    callers[0].cancel()  # the one whose read started the round
    callers[2].cancel()
    airflow.release.set()
    await asyncio.wait(callers)
    assert callers[0].cancelled() and callers[2].cancelled()
    assert [callers[i].result() for i in (1, 3, 4)] == [expected[i] for i in (1, 3, 4)]
    assert len(airflow.calls) == 1


async def test_a_caller_cancelled_before_the_call_is_left_out_of_it(airflow: FakeAirflow) -> None:
    expected = [airflow.add("d", "r", f"t{i}") for i in range(3)]
    callers = [asyncio.create_task(task_state("d", "r", f"t{i}", -1)) for i in range(3)]
    await asyncio.sleep(0)  # all three are waiting, the call not made yet
    callers[1].cancel()
    await asyncio.wait(callers)
    assert [callers[0].result(), callers[2].result()] == [expected[0], expected[2]]
    assert [sorted(call["task_ids"]) for call in airflow.calls] == [["t0", "t2"]]


async def test_reads_that_arrive_while_a_call_is_in_flight_make_up_the_next_call(
    airflow: FakeAirflow,
) -> None:
    expected = [airflow.add("d", "r", f"t{i}") for i in range(11)]
    airflow.release = asyncio.Event()
    first = asyncio.create_task(task_state("d", "r", "t0", -1))
    while not airflow.calls:
        await asyncio.sleep(0.001)
    later = [asyncio.create_task(task_state("d", "r", f"t{i}", -1)) for i in range(1, 11)]
    await asyncio.sleep(0.02)  # longer than the gathering: still one call in flight
    assert len(airflow.calls) == 1
    airflow.release.set()
    assert [await first, *await asyncio.gather(*later)] == expected
    assert [len(call["task_ids"]) for call in airflow.calls] == [1, 10]


async def test_answers_are_handed_back_at_most_a_chunk_per_loop_iteration(airflow: FakeAirflow) -> None:
    """500 waiters answered by three calls: each records the loop iteration it resumed in."""
    loop = asyncio.get_running_loop()
    iteration = 0
    ticking = True

    def tick() -> None:  # runs once per loop iteration
        nonlocal iteration
        iteration += 1
        if ticking:
            loop.call_soon(tick)

    async def read(i: int) -> int:
        await task_state("d", "r", f"t{i}", -1)
        return iteration

    for i in range(500):
        airflow.add("d", "r", f"t{i}")
    loop.call_soon(tick)
    resumed_in = await asyncio.gather(*(read(i) for i in range(500)))
    ticking = False
    per_iteration = collections.Counter(resumed_in)
    assert len(airflow.calls) == 3
    assert max(per_iteration.values()) <= CHUNK, per_iteration
    assert len(per_iteration) >= 500 // CHUNK
