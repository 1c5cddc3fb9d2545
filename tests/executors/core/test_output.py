"""split_lines: complete lines only, unless the execution is over or one line fills the read."""

from __future__ import annotations

import pytest

from executors.core.output import split_lines


@pytest.mark.parametrize(
    ("data", "final", "full", "text", "used"),
    [
        (b"a\nb\n", False, False, "a\nb", 4),
        (b"a\nb", False, False, "a", 2),  # "b" is still being written: held back
        (b"a\nb", True, False, "a\nb", 3),  # the execution is over: nothing more will come
        (b"abc", False, False, None, 0),
        (b"abc", False, True, "abc", 3),  # a line as long as the read: out, or never
        (b"a\r\nb\r\n", False, False, "a\nb", 6),
        (b"\n\n", False, False, "\n", 2),  # two empty lines are output too
        (b"caf\xc3\xa9 \xff\n", False, False, "caf\u00e9 \ufffd", 8),
        (b"", True, True, None, 0),
    ],
)
def test_split_lines(data: bytes, final: bool, full: bool, text: str | None, used: int) -> None:
    assert split_lines(data, final=final, full=full) == (text, used)
