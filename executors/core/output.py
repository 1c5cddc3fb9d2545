"""What an execution printed, read a piece at a time: :class:`OutputChunk` and its lines.

An executor that can read its executions' output incrementally implements
:meth:`executors.core.interface.Executor.read_output`: each call returns the complete lines printed
since ``cursor`` (at most about ``max_bytes`` of them) and the cursor to pass next time. The cursor
is the executor's own JSON-safe mapping; the engine keeps it with the execution
(:mod:`executors.engine.output`) so that a restarted process goes on where the last one stopped.

Contract of a read:

* lines come in the order the execution printed them **within one stream**; a backend that keeps
  stdout and stderr apart cannot order lines across the two, and returns one stream's new lines
  before the other's;
* a line is returned once: a cursor handed back again returns nothing already returned from it;
* a line still being written (no newline yet) is held back until it is complete, unless ``final``
  (the execution is over) or the line alone fills ``max_bytes``;
* output that the backend dropped before it could be read (a log rotated away between two reads)
  is reported by a line saying so, in its stream, never silently.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class OutputLine:
    """One line an execution printed, without its line ending."""

    stream: str
    """Where it was printed: ``"stdout"``, ``"stderr"``, or ``"output"`` for a backend that merges
    the two."""
    text: str


@dataclasses.dataclass(frozen=True)
class OutputChunk:
    """The lines printed since a cursor, and the cursor that follows them."""

    lines: tuple[OutputLine, ...]
    cursor: Mapping[str, Any]
    """JSON-safe; hand it to the next :meth:`~executors.core.interface.Executor.read_output`."""
    more: bool = False
    """Whether more output was already there than ``max_bytes`` allowed: read again at once."""


def split_lines(data: bytes, *, final: bool, full: bool) -> tuple[list[str], int]:
    """The complete lines in ``data`` (decoded as UTF-8, invalid bytes replaced, ``\\r\\n`` and
    ``\\n`` endings removed) and how many bytes they took.

    A trailing piece without a newline is left out (its bytes are not counted, so the next read
    starts with it) unless ``final`` or ``full`` (``data`` filled the whole read: a line that long
    would otherwise never come out).
    """
    end = len(data) if final else data.rfind(b"\n") + 1
    if end == 0 and full:
        end = len(data)
    if end == 0:
        return [], 0
    text = data[:end].decode("utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines], end
