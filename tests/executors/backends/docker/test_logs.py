"""The Engine API's multiplexed log frames and the cursor that reads them a piece at a time."""

from __future__ import annotations

import struct

import pytest

from executors.backends.docker.logs import (
    FrameDecoder,
    LogCursor,
    LogLine,
    LogSelection,
    blocks,
    parse_time,
    read_saved,
    saved_line,
)


def frame(stream: int, payload: str) -> bytes:
    data = payload.encode()
    return struct.pack(">BxxxI", stream, len(data)) + data


@pytest.mark.parametrize(
    ("stamp", "second"),
    [
        ("2026-12-06T22:35:45Z", 1796596545),
        ("2026-12-06T22:35:45.123456789Z", 1796596545),
        ("2026-12-06T23:35:45+01:00", 1796596545),
        ("2026-12-06T22:35:45", 1796596545),
    ],
)
def test_parse_time(stamp: str, second: int) -> None:
    assert parse_time(stamp) == second


def test_parse_time_refuses_what_is_not_a_time() -> None:
    assert parse_time("hello") is None


def test_frames_split_anywhere_decode_to_the_same_lines() -> None:
    """The stream arrives in pieces of any size: a header or a payload cut in two waits."""
    data = frame(1, "2026-12-06T22:35:45Z out one\n") + frame(2, "2026-12-06T22:35:46.5Z err\n")
    for cut in range(1, len(data)):
        decoder = FrameDecoder()
        lines = [*decoder.feed(data[:cut]), *decoder.feed(data[cut:])]
        assert lines == [
            LogLine("stdout", 1796596545, "2026-12-06T22:35:45Z", "out one"),
            LogLine("stderr", 1796596546, "2026-12-06T22:35:46.5Z", "err"),
        ], cut
        assert decoder.consumed == len(data)


def lines_at(second: int, count: int, stream: str = "stdout", start: int = 0) -> list[LogLine]:
    return [LogLine(stream, second, "", f"{stream} {second} {i}") for i in range(start, start + count)]


def read(
    sent: list[LogLine], cursor: LogCursor, max_bytes: int = 10_000
) -> tuple[list[str], LogCursor, bool]:
    """One read as the executor makes it: the engine sends the lines since ``cursor.second``."""
    selection = LogSelection(cursor, max_bytes)
    for line in sent:
        if cursor.since() is not None and line.second < cursor.since():  # type: ignore[operator]
            continue
        if not selection.take(line):
            break
    return [line.text for line in selection.lines], selection.next_cursor(), selection.full


def test_a_cursor_returns_each_line_once_across_reads_within_one_second() -> None:
    """Whole-second times (Podman 4): many lines share a second, and reads stop in the middle."""
    log = lines_at(100, 5) + lines_at(101, 7) + lines_at(102, 2)
    everything: list[str] = []
    cursor = LogCursor()
    for _ in range(20):
        got, cursor, _ = read(log, cursor, max_bytes=40)
        everything += got
    assert everything == [line.text for line in log]


def test_lines_printed_after_a_read_in_the_same_second_are_not_lost() -> None:
    first = lines_at(100, 3)
    got, cursor, _ = read(first, LogCursor())
    assert got == [line.text for line in first]
    later = first + lines_at(100, 2, start=3) + lines_at(101, 1)
    got, cursor, _ = read(later, cursor)
    assert got == ["stdout 100 3", "stdout 100 4", "stdout 101 0"]
    got, cursor, _ = read(later, cursor)
    assert got == []


def test_a_full_read_says_more_is_waiting() -> None:
    got, _, full = read(lines_at(100, 50), LogCursor(), max_bytes=100)
    assert full and 0 < len(got) < 50


def test_a_line_larger_than_a_read_still_comes_alone() -> None:
    big = [LogLine("stdout", 100, "", "x" * 500)]
    got, cursor, _ = read(big, LogCursor(), max_bytes=100)
    assert got == ["x" * 500] and cursor == LogCursor(100, 1)


def test_a_bad_cursor_reads_from_the_start() -> None:
    assert LogCursor.from_mapping({"second": "x"}) == LogCursor()
    assert LogCursor.from_mapping(None) == LogCursor()
    assert LogCursor.from_mapping(LogCursor(5, 2).to_mapping()) == LogCursor(5, 2)


def test_blocks_join_consecutive_lines_of_one_stream() -> None:
    lines = lines_at(1, 2) + lines_at(1, 1, "stderr") + lines_at(2, 1)
    assert blocks(lines) == [
        ("stdout", "stdout 1 0\nstdout 1 1"),
        ("stderr", "stderr 1 0"),
        ("stdout", "stdout 2 0"),
    ]


def test_the_saved_log_reads_back_the_same_lines() -> None:
    lines = [
        LogLine("stdout", 1796596545, "2026-12-06T22:35:45Z", "a line with a \\ and a\nnewline"),
        LogLine("stderr", 0, "", "no time"),
    ]
    text = "".join(map(saved_line, lines))
    assert list(read_saved(text)) == lines
