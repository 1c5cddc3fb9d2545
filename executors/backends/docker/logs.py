"""A container's output as the Engine API serves it, and the cursor that reads it a piece at a time.

``GET /containers/{id}/logs?timestamps=true`` answers with multiplexed frames (a container without
a TTY): an 8-byte header (stream 1 = stdout, 2 = stderr; three zero bytes; the payload length, 4
bytes big-endian) and the payload, one logged line each, starting with the time it was logged
(RFC 3339, ``2026-12-06T22:35:45.123456789Z``; Podman 4 gives whole seconds). A line longer than
the engine's log message size (16 KiB in Docker) arrives as several frames, each one a line here.

The cursor (:class:`LogCursor`) is the second of the last line returned and how many lines of that
second were returned: the next read asks the engine for the lines ``since`` that second (the
engine's filter is inclusive) and skips that many. Lines of one second always come back in the
same order, so no line is returned twice and none is skipped, whether the engine keeps
nanoseconds or whole seconds.

When the executor removes a finished container, it first saves the log in the execution's
folder (``logs/container.log``, :func:`saved_line`: one line each, ``<time> <stream> <text>``),
and reads go on from that file with the same cursor.
"""

from __future__ import annotations

import calendar
import dataclasses
import re
import struct
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

STREAMS = {1: "stdout", 2: "stderr"}
_HEADER = struct.Struct(">BxxxI")
_TIME = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?(Z|[+-]\d\d:?\d\d)?$")


@dataclasses.dataclass(frozen=True)
class LogLine:
    """One logged line: its stream, the second it was logged (Unix time), its text."""

    stream: str
    second: int
    stamp: str
    text: str


def parse_time(stamp: str) -> int | None:
    """The Unix second of an RFC 3339 time (fraction ignored), or ``None`` if it is not one."""
    match = _TIME.match(stamp)
    if match is None:
        return None
    year, month, day, hour, minute, sec = (int(g) for g in match.groups()[:6])
    seconds = calendar.timegm((year, month, day, hour, minute, sec, 0, 0, 0))
    zone = match.group(7)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        seconds -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return seconds


def _line(stream: str, payload: str) -> LogLine:
    stamp, _, text = payload.partition(" ")
    second = parse_time(stamp)
    if second is None:  # no time in front (an engine that ignored timestamps=true): keep the text
        return LogLine(stream, 0, "", payload.rstrip("\n"))
    return LogLine(stream, second, stamp, text[:-1] if text.endswith("\n") else text)


class FrameDecoder:
    """Turns the bytes of a multiplexed log stream, as they arrive, into :class:`LogLine` s."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.consumed = 0
        """Bytes of complete frames decoded so far."""

    def feed(self, data: bytes) -> Iterator[LogLine]:
        self._buffer += data
        while len(self._buffer) >= _HEADER.size:
            stream_id, size = _HEADER.unpack_from(self._buffer)
            end = _HEADER.size + size
            if len(self._buffer) < end:
                return
            payload = bytes(self._buffer[_HEADER.size : end]).decode("utf-8", errors="replace")
            del self._buffer[:end]
            self.consumed += end
            yield _line(STREAMS.get(stream_id, "stdout"), payload)


def saved_line(line: LogLine) -> str:
    """One line of ``logs/container.log`` (a newline in the text is kept as ``\\n``)."""
    text = line.text.replace("\\", "\\\\").replace("\n", "\\n")
    return f"{line.stamp or '-'} {line.stream} {text}\n"


def read_saved(text: str) -> Iterator[LogLine]:
    """The lines of a saved ``logs/container.log``."""
    for raw in text.splitlines():
        stamp, _, rest = raw.partition(" ")
        stream, _, body = rest.partition(" ")
        body = re.sub(r"\\(\\|n)", lambda m: "\n" if m.group(1) == "n" else "\\", body)
        second = parse_time(stamp) if stamp != "-" else None
        yield LogLine(stream or "stdout", second or 0, "" if stamp == "-" else stamp, body)


@dataclasses.dataclass(frozen=True)
class LogCursor:
    """Where a read stopped: the second of the last line returned, and how many lines of that
    second were returned (see the module docstring)."""

    second: int = -1
    seen: int = 0

    @classmethod
    def from_mapping(cls, cursor: Mapping[str, Any] | None) -> LogCursor:
        if not cursor:
            return cls()
        try:
            return cls(int(cursor.get("second", -1)), max(0, int(cursor.get("seen", 0))))
        except (TypeError, ValueError):
            return cls()

    def to_mapping(self) -> dict[str, int]:
        return {"second": self.second, "seen": self.seen}

    def since(self) -> int | None:
        """The ``since`` to ask the engine for (``None``: from the start)."""
        return self.second if self.second >= 0 else None


@dataclasses.dataclass
class LogSelection:
    """The lines one read returns, chosen from what the engine sent (:meth:`take`)."""

    cursor: LogCursor
    max_bytes: int
    lines: list[LogLine] = dataclasses.field(default_factory=list)
    used: int = 0
    full: bool = False
    _skipped: int = 0

    def take(self, line: LogLine) -> bool:
        """Consider the next line sent; ``False`` once the read is full (stop reading)."""
        if self.full:
            return False
        if line.second < self.cursor.second:
            return True  # older than asked for (an engine whose filter is coarser)
        if line.second == self.cursor.second and self._skipped < self.cursor.seen:
            self._skipped += 1
            return True
        size = len(line.text) + 1
        if self.lines and self.used + size > self.max_bytes:
            self.full = True
            return False
        self.lines.append(line)
        self.used += size
        return True

    def next_cursor(self) -> LogCursor:
        if not self.lines:
            return self.cursor
        last = self.lines[-1].second
        same = sum(1 for line in self.lines if line.second == last)
        if last == self.cursor.second:
            same += self.cursor.seen
        return LogCursor(last, same)


def blocks(lines: Iterable[LogLine]) -> list[tuple[str, str]]:
    """Consecutive lines of one stream joined: ``[(stream, text), ...]``."""
    out: list[tuple[str, list[str]]] = []
    for line in lines:
        if out and out[-1][0] == line.stream:
            out[-1][1].append(line.text)
        else:
            out.append((line.stream, [line.text]))
    return [(stream, "\n".join(texts)) for stream, texts in out]
