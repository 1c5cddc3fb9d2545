"""Copying what an execution prints into a log while it runs: :class:`OutputCopier`.

The driver calls :meth:`OutputCopier.copy` every ``PollPolicy.output_interval`` seconds while the
execution runs and once with ``final=True`` when it is over (or was killed), so every caller (the
Airflow trigger, a worker with ``deferrable=False``, the CLI) streams output the same way. Each
copy asks the executor for the lines printed since the cursor
(:meth:`~executors.core.interface.Executor.read_output`), hands them to the sink, then keeps the
new cursor in ``cursor_file`` (a small JSON file in the execution's folder), so that a process
that resumes the execution (a restarted triggerer) goes on from there: no line is copied twice,
none is skipped. The file is written at most every ``save_every`` seconds (a write per copy of
thousands of executions costs the triggerer more than the copies), at the end, and when the copy
is stopped (:meth:`OutputCopier.flush`: the driver calls it when it is cancelled, as a triggerer
that shuts down cancels its triggers). So only a process killed outright (SIGKILL, a crash)
copies again what it copied in its last ``save_every`` seconds; nothing is ever skipped.

Bounded: one copy reads at most ``max_bytes`` (four reads of it when the executor says more is
waiting), the final one at most ``final_max_bytes``; beyond that a line says what was left out
and where the whole output is. Nothing here raises: a read that fails is logged once and tried
again at the next interval; the task is never failed over its output.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import os
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from executors.core.context import TaskContext
from executors.core.errors import DataNotFoundError, DataStoreError
from executors.core.interface import Executor
from executors.core.output import OutputLines
from executors.data.storage import DataStore, is_local, local_path
from executors.engine.background import detach
from executors.engine.watchdog import call_with_limit

_log = logging.getLogger(__name__)

OutputSink = Callable[[Sequence[OutputLines]], None]
"""Where copied lines go (the Airflow task log, the CLI's stderr). Called on the event loop."""

BURST = 4
"""Reads one (non-final) copy may make in a row while the executor says more output is waiting."""

CURSOR_MAX_BYTES = 64 * 1024
"""The largest cursor file read back: the task can write into its folder."""


class _CursorWrites:
    """The cursor writes of one event loop, made together: a write is queued, and a moment later
    every queued write goes in one :meth:`DataStore.write_many` per store (one thread hop for all
    the local ones). Thousands of copiers each writing their own cursor would cost a thread hop
    apiece. A write someone waits for (the end of an execution) goes at once, with whatever else
    is queued by then."""

    GATHER_SECONDS = 0.2

    def __init__(self) -> None:
        self._queued: dict[str, tuple[DataStore, bytes, asyncio.Future[DataStoreError | None]]] = {}
        self._later: asyncio.Task[None] | None = None

    def put(
        self, store: DataStore, reference: str, data: bytes, *, at_once: bool = False
    ) -> asyncio.Future[DataStoreError | None]:
        """Queue a write (a later one of the same file replaces it); the future says how it went."""
        loop = asyncio.get_running_loop()
        earlier = self._queued.get(reference)
        if earlier is not None and not earlier[2].done():
            earlier[2].set_result(None)  # superseded: what it would have written is older
        future: asyncio.Future[DataStoreError | None] = loop.create_future()
        self._queued[reference] = (store, data, future)
        if at_once:
            detach(self._write_queued())  # next loop iteration: the ends of that moment together
        elif self._later is None:
            self._later = loop.create_task(self._write_later(), name="output cursor writes")
        return future

    async def _write_later(self) -> None:
        try:
            await asyncio.sleep(self.GATHER_SECONDS)
        finally:  # written even when the loop's tasks are being cancelled (a triggerer stopping)
            self._later = None
            await self._write_queued()

    async def _write_queued(self) -> None:
        queued, self._queued = self._queued, {}
        by_store: dict[int, list[tuple[str, tuple[DataStore, bytes, asyncio.Future[Any]]]]] = {}
        for reference, entry in queued.items():
            by_store.setdefault(id(entry[0]), []).append((reference, entry))
        for entries in by_store.values():
            store = entries[0][1][0]
            try:
                results = await store.write_many([(ref, entry[1]) for ref, entry in entries])
            except BaseException as exc:  # cancelled meanwhile: say so to whoever waits
                for _, entry in entries:
                    if not entry[2].done():
                        entry[2].set_exception(exc)
                raise
            for (_, entry), result in zip(entries, results, strict=True):
                if not entry[2].done():
                    entry[2].set_result(result)


_writes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _CursorWrites] = weakref.WeakKeyDictionary()


def _cursor_writes() -> _CursorWrites:
    loop = asyncio.get_running_loop()
    writes = _writes.get(loop)
    if writes is None:
        writes = _writes[loop] = _CursorWrites()
    return writes


def reads_output(executor: Executor) -> bool:
    """Whether ``executor`` (or the executor a wrapper such as the catalog gate holds as
    ``inner``) implements ``read_output``: without it there is nothing to ask, or to load."""
    inner = getattr(executor, "inner", None)
    if isinstance(inner, Executor):
        return reads_output(inner)
    return type(executor).read_output is not Executor.read_output


def _missing_locally(reference: str) -> bool:
    """Whether ``reference`` is a local path where nothing is: the common case of a try's first
    copy, answered by one ``lstat`` on the loop (as the local executor's unchanged-output check
    is) instead of a thread hop for each of the thousands of triggers that start together."""
    return is_local(reference) and not os.path.lexists(local_path(reference))


class OutputCopier:
    """Copies one execution's output to ``sink``, a piece per call (see the module docstring).

    ``cursor_file``: where the cursor is kept between processes (``None``: in memory only).
    ``call_timeout`` bounds each executor call. When to copy is the driver's business
    (``PollPolicy.output_interval``).
    """

    def __init__(
        self,
        executor: Executor,
        sink: OutputSink,
        *,
        store: DataStore | None = None,
        cursor_file: str | None = None,
        max_bytes: int = 64_000,
        final_max_bytes: int = 1_000_000,
        call_timeout: float = 120.0,
        save_every: float = 30.0,
        log: Any = None,
    ) -> None:
        if cursor_file is not None and store is None:
            raise ValueError("OutputCopier: a cursor_file needs a store")
        self.executor = executor
        self.max_bytes = max_bytes
        self.final_max_bytes = final_max_bytes
        self.call_timeout = call_timeout
        self.save_every = save_every
        self._sink = sink
        self._store = store
        self._cursor_file = cursor_file
        self._log = log or _log
        self._cursor: dict[str, Any] | None = None
        self._loaded = cursor_file is None
        self._unsaved = False
        self._saved_at = -math.inf
        self._writing: asyncio.Future[DataStoreError | None] | None = None
        self._warned = False
        self.supported: bool | None = None if reads_output(executor) else False
        """Whether the executor reads output incrementally (``None``: not asked yet)."""
        self.copied_lines = 0

    async def copy(self, task_ctx: TaskContext, *, final: bool = False) -> int:
        """Copy the lines printed since the last copy (``final``: all that is left, up to
        ``final_max_bytes``); returns how many. Never raises."""
        if self.supported is False:
            return 0
        if not self._loaded:
            self._cursor = await self._load(task_ctx)
            self._loaded = True
        budget = self.final_max_bytes if final else BURST * self.max_bytes
        used = 0
        more = False
        copied = self.copied_lines
        while used < budget:
            read = functools.partial(
                self.executor.read_output,
                task_ctx,
                self._cursor,
                max_bytes=min(self.max_bytes, budget - used),
                final=final,
            )
            try:
                chunk = await call_with_limit(read, self.call_timeout)
            except Exception as exc:
                self._warn(f"cannot copy the output of {task_ctx.generated_name}", exc)
                return self.copied_lines - copied
            if chunk is None:
                self.supported = False
                return 0
            self.supported = True
            if chunk.pieces:
                self._sink(chunk.pieces)
                self.copied_lines += sum(piece.count() for piece in chunk.pieces)
                used += sum(len(piece.text) + 1 for piece in chunk.pieces)
            new_cursor = dict(chunk.cursor)
            if new_cursor != self._cursor:
                self._cursor = new_cursor
                self._unsaved = True
            more = chunk.more
            if not more or not chunk.pieces:
                break
        if final:  # on disk before anyone reads it again (the end of the task reads it at once)
            await self.flush(task_ctx)
        elif self._unsaved and time.monotonic() - self._saved_at >= self.save_every:
            await self.flush(task_ctx, wait=False)
        if final and more:
            self._sink(
                [
                    OutputLines(
                        "note",
                        f"[more output than {self.final_max_bytes:,} bytes was left when "
                        f"{task_ctx.generated_name} ended; the execution's own logs keep it]",
                    )
                ]
            )
        return self.copied_lines - copied

    async def _load(self, task_ctx: TaskContext) -> dict[str, Any] | None:
        assert self._store is not None and self._cursor_file is not None
        if _missing_locally(self._cursor_file):
            return None
        try:
            data = await self._store.read_bytes(
                self._cursor_file, within=task_ctx.data_dir, max_bytes=CURSOR_MAX_BYTES
            )
            record = json.loads(data)
            cursor = record["cursor"] if isinstance(record, Mapping) else None
            return dict(cursor) if isinstance(cursor, Mapping) else None
        except DataNotFoundError:
            return None
        except Exception as exc:  # unreadable: copy from the start rather than lose lines
            self._log.warning(
                "output of %s: cannot read where the last copy stopped (%s); copying from the start",
                task_ctx.generated_name,
                exc,
            )
            return None

    async def flush(self, task_ctx: TaskContext, *, wait: bool = True) -> None:
        """Write where the copy stands if that changed since the last write, and (``wait``) see it
        on disk, a write already queued included; without ``wait`` it goes with the other
        copiers' writes a moment later. Never raises."""
        what = f"cannot keep where the copy of {task_ctx.generated_name}'s output stopped"
        if self._unsaved and self._store is not None and self._cursor_file is not None:
            self._unsaved = False
            self._saved_at = time.monotonic()
            record = {"executor": self.executor.get_id(), "cursor": self._cursor}
            data = json.dumps(record).encode()
            self._writing = _cursor_writes().put(self._store, self._cursor_file, data, at_once=wait)
            self._writing.add_done_callback(lambda done: self._written(done, what))
        if wait and self._writing is not None and not self._writing.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(self._writing)  # its outcome is said by _written

    def _written(self, done: asyncio.Future[DataStoreError | None], what: str) -> None:
        if done.cancelled():
            return
        error = done.exception() or done.result()
        if error is not None:
            self._warn(what, error)

    def _warn(self, what: str, exc: BaseException) -> None:
        if self._warned:  # once per execution: a backend that is down would repeat it every poll
            _log.debug("%s: %s", what, exc)
            return
        self._warned = True
        self._log.warning(
            "%s (tried again later; the task is not affected): %s: %s", what, type(exc).__name__, exc
        )
