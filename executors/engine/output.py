"""Copying what an execution prints into a log while it runs: :class:`OutputCopier`.

The driver calls :meth:`OutputCopier.copy` every ``PollPolicy.output_interval`` seconds while the
execution runs and once with ``final=True`` when it is over (or was killed), so every caller (the
Airflow trigger, a worker with ``deferrable=False``, the CLI) streams output the same way. Each
copy asks the executor for the lines printed since the cursor
(:meth:`~executors.core.interface.Executor.read_output`), hands them to the sink, then keeps the
new cursor in ``cursor_file`` (a small JSON file in the execution's folder), so that a process
that resumes the execution (a restarted triggerer) goes on from there: no line is copied twice,
none is skipped. One exception: a process killed between handing lines to the sink and writing the
cursor copies those lines again (at most one copy's worth).

Bounded: one copy reads at most ``max_bytes`` (four reads of it when the executor says more is
waiting), the final one at most ``final_max_bytes``; beyond that a line says what was left out
and where the whole output is. Nothing here raises: a read that fails is logged once and tried
again at the next interval; the task is never failed over its output.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from executors.core.context import TaskContext
from executors.core.errors import DataNotFoundError
from executors.core.interface import Executor
from executors.core.output import OutputLine
from executors.data.storage import DataStore
from executors.engine.watchdog import call_with_limit

_log = logging.getLogger(__name__)

OutputSink = Callable[[Sequence[OutputLine]], None]
"""Where copied lines go (the Airflow task log, the CLI's stderr). Called on the event loop."""

BURST = 4
"""Reads one (non-final) copy may make in a row while the executor says more output is waiting."""

CURSOR_MAX_BYTES = 64 * 1024
"""The largest cursor file read back: the task can write into its folder."""


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
        log: Any = None,
    ) -> None:
        if cursor_file is not None and store is None:
            raise ValueError("OutputCopier: a cursor_file needs a store")
        self.executor = executor
        self.max_bytes = max_bytes
        self.final_max_bytes = final_max_bytes
        self.call_timeout = call_timeout
        self._sink = sink
        self._store = store
        self._cursor_file = cursor_file
        self._log = log or _log
        self._cursor: dict[str, Any] | None = None
        self._loaded = cursor_file is None
        self._warned = False
        self.supported: bool | None = None
        """Whether the executor reads output incrementally (``None``: not asked yet)."""
        self.copied_lines = 0

    async def copy(self, task_ctx: TaskContext, *, final: bool = False) -> None:
        """Copy the lines printed since the last copy (``final``: all that is left, up to
        ``final_max_bytes``). Never raises."""
        if self.supported is False:
            return
        if not self._loaded:
            self._cursor = await self._load(task_ctx)
            self._loaded = True
        budget = self.final_max_bytes if final else BURST * self.max_bytes
        used = 0
        more = False
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
                return
            if chunk is None:
                self.supported = False
                return
            self.supported = True
            if chunk.lines:
                self._sink(chunk.lines)
                self.copied_lines += len(chunk.lines)
                used += sum(len(line.text) + 1 for line in chunk.lines)
            new_cursor = dict(chunk.cursor)
            if new_cursor != self._cursor:
                self._cursor = new_cursor
                await self._save(task_ctx)
            more = chunk.more
            if not more or not chunk.lines:
                break
        if final and more:
            self._sink(
                [
                    OutputLine(
                        "note",
                        f"[more output than {self.final_max_bytes:,} bytes was left when "
                        f"{task_ctx.generated_name} ended; the execution's own logs keep it]",
                    )
                ]
            )

    async def _load(self, task_ctx: TaskContext) -> dict[str, Any] | None:
        assert self._store is not None and self._cursor_file is not None
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

    async def _save(self, task_ctx: TaskContext) -> None:
        if self._store is None or self._cursor_file is None:
            return
        record = {"executor": self.executor.get_id(), "cursor": self._cursor}
        try:
            await self._store.write_bytes(self._cursor_file, json.dumps(record).encode())
        except Exception as exc:
            self._warn(f"cannot keep where the copy of {task_ctx.generated_name}'s output stopped", exc)

    def _warn(self, what: str, exc: BaseException) -> None:
        if self._warned:  # once per execution: a backend that is down would repeat it every poll
            _log.debug("%s: %s", what, exc)
            return
        self._warned = True
        self._log.warning(
            "%s (tried again later; the task is not affected): %s: %s", what, type(exc).__name__, exc
        )
