"""Task-state reads of many triggers, coalesced into few ``get_task_states`` calls.

In the triggerer every ``sync_to_async(RuntimeTaskInstance.get_task_states)`` call runs on
asgiref's one thread-sensitive thread and blocks it for a whole round trip through the trigger
runner's supervisor to the execution API, so N triggers starting at once wait behind N round
trips. Here the reads made at about the same moment on one event loop that share ``(dag_id,
map_index)`` are answered by one call with the union of their task ids and run ids; each caller
picks its own ``(run_id, key)`` out of the answer.

- Gathering: a round waits ``GATHER_SECONDS`` (a few ms, not one loop iteration: the triggerer
  creates new triggers one at a time with two ``asyncio.sleep(0)`` each, so one iteration would
  catch about one trigger), and the reads that arrive while a call is in flight make up the next
  call, so batches grow with the load and a lone read waits only the gathering time.
- Bounded: one call covers at most ``MAX_CELLS`` task instances (``len(task_ids) *
  len(run_ids)``, the size of what the API may return); more reads make several calls.
- Handed back in chunks: at most ``CHUNK`` waiting callers are resumed per loop iteration (the
  rest on the following ones, through ``loop.call_soon``), so that a thousand triggers answered
  at once do not all run their next synchronous step in one iteration.
- A failed call: each of its callers gets its own :class:`TaskStateUnavailable`, carrying the
  error's message (its ``__cause__`` is the error).
- A cancelled caller is left out of what remains to do; the others are not affected.
"""

from __future__ import annotations

import asyncio
import collections
import weakref
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

GATHER_SECONDS = 0.005
"""How long a round gathers reads before its first call."""

MAX_CELLS = 200
"""Task instances (task ids x run ids) one call may cover."""

CHUNK = 50
"""Waiting callers resumed per loop iteration."""


class TaskStateUnavailable(Exception):
    """The task-state read failed; the message is the failing call's."""


class FetchTaskStates(Protocol):
    def __call__(
        self, *, dag_id: str, map_index: int | None, task_ids: list[str], run_ids: list[str]
    ) -> Awaitable[Mapping[str, Any]]: ...


async def fetch_task_states(
    *, dag_id: str, map_index: int | None, task_ids: list[str], run_ids: list[str]
) -> Mapping[str, Any]:
    """The real call: ``{run_id: {key: state}}`` from Airflow, through the trigger runner's comms."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
    from asgiref.sync import sync_to_async

    return await sync_to_async(RuntimeTaskInstance.get_task_states)(
        dag_id=dag_id, map_index=map_index, task_ids=task_ids, run_ids=run_ids
    )


def state_key(task_id: str, map_index: int | None) -> str:
    """The key of a task instance in a run's states (Airflow's execution API, ``/states``)."""
    return task_id if map_index is None or map_index < 0 else f"{task_id}_{map_index}"


@dataclass(frozen=True, eq=False)
class _Read:
    run_id: str
    task_id: str
    key: str
    future: asyncio.Future[str | None]


_Group = tuple[str, int | None]  # (dag_id, map_index or None when unmapped)
_Answer = tuple[asyncio.Future[str | None], str | BaseException | None]  # a state or the call's error


class TaskStateReader:
    """Coalesces the task-state reads of one event loop (use one reader per loop).

    ``fetch`` is the call that reads states; ``None`` means this module's ``fetch_task_states``,
    looked up at each call.
    """

    def __init__(self, fetch: FetchTaskStates | None = None) -> None:
        self._fetch = fetch
        self._pending: dict[_Group, list[_Read]] = {}
        self._pump: asyncio.Task[None] | None = None
        self._answers: collections.deque[_Answer] = collections.deque()
        self._handing_back = False

    async def read(self, dag_id: str, run_id: str, task_id: str, map_index: int | None) -> str | None:
        """The state of one task instance, or raises :class:`TaskStateUnavailable`."""
        loop = asyncio.get_running_loop()
        mapped = map_index if map_index is not None and map_index >= 0 else None
        # Unmapped: None and -1 are the same request (the client sends no map_index for either).
        read = _Read(run_id, task_id, state_key(task_id, mapped), loop.create_future())
        self._pending.setdefault((dag_id, mapped), []).append(read)
        if self._pump is None:
            self._pump = loop.create_task(self._run_rounds(), name="task-state reads")
        return await read.future  # cancelling the caller cancels only its own future

    async def _run_rounds(self) -> None:
        taken: list[_Read] = []
        try:
            await asyncio.sleep(GATHER_SECONDS)
            while self._pending:
                pending, self._pending = self._pending, {}
                taken = [read for reads in pending.values() for read in reads]
                for (dag_id, map_index), reads in pending.items():
                    for batch in _batches([read for read in reads if not read.future.done()]):
                        await self._answer(dag_id, map_index, batch)
                taken = []
                # Those that came meanwhile already waited (for the call): go on at once, letting
                # the loop run the hand-back and the triggers once.
                await asyncio.sleep(0)
        except BaseException:  # cancelled (loop shutting down) or a bug: no caller waits forever
            for read in [*taken, *(read for reads in self._pending.values() for read in reads)]:
                read.future.cancel()
            self._pending = {}
            raise
        finally:
            self._pump = None

    async def _answer(self, dag_id: str, map_index: int | None, batch: list[_Read]) -> None:
        fetch = self._fetch or fetch_task_states
        task_ids = sorted({read.task_id for read in batch})
        run_ids = sorted({read.run_id for read in batch})
        outcomes: list[str | BaseException | None]
        try:
            states = await fetch(dag_id=dag_id, map_index=map_index, task_ids=task_ids, run_ids=run_ids)
            outcomes = [_state_in(states, read) for read in batch]
        except Exception as exc:
            outcomes = [exc] * len(batch)
        self._answers.extend((read.future, outcome) for read, outcome in zip(batch, outcomes, strict=True))
        if not self._handing_back:
            self._handing_back = True
            self._hand_back()

    def _hand_back(self) -> None:
        """Resume up to CHUNK callers now (they run on the next iteration), the rest later."""
        resumed = 0
        while self._answers and resumed < CHUNK:
            future, outcome = self._answers.popleft()
            if future.done():  # its caller was cancelled
                continue
            if isinstance(outcome, BaseException):
                error = TaskStateUnavailable(str(outcome) or type(outcome).__name__)
                error.__cause__ = outcome
                future.set_exception(error)
            else:
                future.set_result(outcome)
            resumed += 1
        if self._answers:
            asyncio.get_running_loop().call_soon(self._hand_back)
        else:
            self._handing_back = False


def _batches(reads: list[_Read]) -> list[list[_Read]]:
    """Split reads into calls of at most MAX_CELLS task instances (task ids x run ids); reads
    sorted by run first, so that the reads of one run share calls."""
    batches: list[list[_Read]] = []
    batch: list[_Read] = []
    task_ids: set[str] = set()
    run_ids: set[str] = set()
    for read in sorted(reads, key=lambda read: (read.run_id, read.task_id)):
        tasks = len(task_ids) + (read.task_id not in task_ids)
        runs = len(run_ids) + (read.run_id not in run_ids)
        if batch and tasks * runs > MAX_CELLS:
            batches.append(batch)
            batch, task_ids, run_ids = [], set(), set()
        batch.append(read)
        task_ids.add(read.task_id)
        run_ids.add(read.run_id)
    if batch:
        batches.append(batch)
    return batches


def _state_in(states: Mapping[str, Any], read: _Read) -> str | None:
    state = (states.get(read.run_id) or {}).get(read.key)
    return None if state is None else str(getattr(state, "value", state))


_readers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, TaskStateReader]
_readers = weakref.WeakKeyDictionary()


async def task_state(dag_id: str, run_id: str, task_id: str, map_index: int | None) -> str | None:
    """The task instance's state as Airflow has it now (``None``: no such task instance), read
    together with the other reads of this event loop; raises :class:`TaskStateUnavailable`."""
    loop = asyncio.get_running_loop()
    reader = _readers.get(loop)
    if reader is None:
        reader = _readers[loop] = TaskStateReader()
    return await reader.read(dag_id, run_id, task_id, map_index)
