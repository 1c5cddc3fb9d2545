"""What an execution printed, read a piece at a time: :class:`OutputChunk` and its pieces.

An executor that can read its executions' output incrementally implements
:meth:`executors.core.interface.Executor.read_output`: each call returns the complete lines printed
since ``cursor`` (at most about ``max_bytes`` of them) and the cursor to pass next time. The cursor
is the executor's own JSON-safe mapping; the engine keeps it with the execution
(:mod:`executors.engine.output`) so that a restarted process goes on where the last one stopped.

Lines travel in blocks (:class:`OutputLines`: consecutive lines of one stream, one string), never
one object per line: a triggerer copying the output of thousands of executions handles them with
a few string operations per block, whatever the number of lines.

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
class OutputLines:
    """Consecutive lines an execution printed to one stream."""

    stream: str
    """Where they were printed: ``"stdout"``, ``"stderr"``, ``"output"`` for a backend that merges
    the two, ``"note"`` for what the engine says about the copy itself."""
    text: str
    """The lines, joined by ``"\\n"``, without a final line ending (``"\\r\\n"`` is ``"\\n"``)."""

    def lines(self) -> list[str]:
        return self.text.split("\n")

    def count(self) -> int:
        return self.text.count("\n") + 1

    def tagged(self, prefix: str) -> str:
        """The lines with ``prefix`` before each one (one ``str.replace``, however many lines)."""
        return prefix + self.text.replace("\n", "\n" + prefix)


@dataclasses.dataclass(frozen=True)
class OutputChunk:
    """The lines printed since a cursor, and the cursor that follows them."""

    pieces: tuple[OutputLines, ...]
    cursor: Mapping[str, Any]
    """JSON-safe; hand it to the next :meth:`~executors.core.interface.Executor.read_output`."""
    more: bool = False
    """Whether more output was already there than ``max_bytes`` allowed: read again at once."""

    def lines(self) -> list[tuple[str, str]]:
        """Every line, as ``(stream, text)`` (for tests and small consumers)."""
        return [(piece.stream, line) for piece in self.pieces for line in piece.lines()]


def split_lines(data: bytes, *, final: bool, full: bool) -> tuple[str | None, int]:
    """The complete lines in ``data`` as one string (decoded as UTF-8, invalid bytes replaced,
    line endings between them ``"\\n"``, none at the end; ``None`` when there is no complete line)
    and how many bytes they took.

    A trailing piece without a newline is left out (its bytes are not counted, so the next read
    starts with it) unless ``final`` or ``full`` (``data`` filled the whole read: a line that long
    would otherwise never come out).
    """
    end = len(data) if final else data.rfind(b"\n") + 1
    if end == 0 and full:
        end = len(data)
    if end == 0:
        return None, 0
    text = data[:end].decode("utf-8", errors="replace").replace("\r\n", "\n")
    if text.endswith("\n"):
        text = text[:-1]
    return text, end
