"""``read_output`` for the local executor: the new lines of ``logs/stdout.log`` and ``stderr.log``.

The supervisor appends each stream to its own file and, once a file holds ``max_log_bytes``,
renames it ``<log>.1`` and starts a new one. A cursor therefore names, per stream, the file it was
reading by inode and how far it got: when the inode under the log's name changed, the rest of the
old file is read from ``<log>.1`` (if that is still the same inode) before the new file from its
start; when the old file was rotated away twice between two reads, a line says part of the output
was lost, and the later ``<log>.1`` is read from its start. A file truncated in
place (the supervisor's fallback when it cannot rename) is read again from its start.

The task controls these files, so they are opened by the guarded opener
(:func:`executors.data.task_files.open_task_file`): a FIFO, a device or a symlink out of the
execution folder is never read; the chunk then carries one line saying so, once per stream.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from executors.core.output import OutputChunk, OutputLines, split_lines
from executors.data.task_files import RefusedDataError, open_task_file

ROTATED_AWAY = (
    "[local executor: part of {name} was rotated away before it could be copied here; "
    "the task printed more than max_log_bytes twice over between two reads]"
)


def unchanged(paths: Mapping[str, str], cursor: Mapping[str, Any] | None) -> bool:
    """Whether neither log changed since ``cursor`` (same inode, same size): two ``lstat`` calls,
    cheap enough to make on the event loop before deciding to read in a thread."""
    if not cursor:
        return all(_size(path) in (None, 0) for path in paths.values())
    for stream, path in paths.items():
        at = cursor.get(stream) or {}
        try:
            info = os.lstat(path)
        except OSError:
            if at:
                return False
            continue
        if info.st_ino != at.get("ino") or info.st_size != at.get("pos"):
            return False
    return True


def _size(path: str) -> int | None:
    try:
        return os.lstat(path).st_size
    except OSError:
        return None


HEAD_BYTES = 32
"""Bytes at the start of a file kept in the cursor: with the inode, they tell the file apart from a
later one that reuses a freed inode (a log rotated away twice)."""


class _Stream:
    """Reads one stream's new bytes from where its cursor stands (blocking: runs in a thread).

    A file is the one the cursor was reading when it has the same inode *and* starts with the
    same bytes (``head``): filesystems reuse the inode of a deleted file at once.
    """

    def __init__(self, name: str, path: str, within: str, at: Mapping[str, Any] | None) -> None:
        self.name = name
        self.path = path
        self.within = within
        at = at or {}
        self.ino: int | None = at.get("ino")
        self.head: str = str(at.get("head", ""))
        self.pos: int = int(at.get("pos", 0))
        self.refused: str | None = at.get("refused")
        self.more = False

    def cursor(self) -> dict[str, Any]:
        at: dict[str, Any] = {"ino": self.ino, "pos": self.pos, "head": self.head}
        if self.refused:
            at["refused"] = self.refused
        return at

    def read(self, budget: int, final: bool) -> list[OutputLines]:
        lines: list[OutputLines] = []
        current = self._open(self.path, lines)
        if current is None:
            return lines
        try:
            if self.ino is not None and not self._is_ours(current):
                # Rotated since the last read. Once: the rest of the file we were reading is
                # <log>.1 now (complete: nothing is appended to it any more). More often: it is
                # gone, and <log>.1 is a later file, not read yet.
                older = self._open(self.path + ".1", lines)
                if older is not None:
                    try:
                        if not self._is_ours(older):
                            lines.append(
                                OutputLines(self.name, ROTATED_AWAY.format(name=os.path.basename(self.path)))
                            )
                            self.pos = 0
                        more, used, at_end = self._read(older, budget, True)
                        lines.extend(more)
                        budget -= used
                        if not at_end:
                            return lines
                    finally:
                        os.close(older)
                self.ino, self.head, self.pos = None, "", 0
            if budget > 0:
                lines.extend(self._read(current, budget, final)[0])
        finally:
            os.close(current)
        return lines

    def _open(self, path: str, notes: list[OutputLines]) -> int | None:
        try:
            return open_task_file(path, within=self.within)
        except RefusedDataError as exc:
            if self.refused != str(exc):  # said once, not at every read
                self.refused = str(exc)
                notes.append(OutputLines(self.name, f"[output not shown: {exc}]"))
            return None
        except OSError:
            return None

    def _is_ours(self, fd: int) -> bool:
        if os.fstat(fd).st_ino != self.ino:
            return False
        return os.pread(fd, len(self.head) // 2, 0).hex() == self.head

    def _read(self, fd: int, budget: int, final: bool) -> tuple[list[OutputLines], int, bool]:
        """New lines from ``self.pos``: (lines, bytes used, whether the file's end was reached)."""
        info = os.fstat(fd)
        if self.ino is None:
            self.ino = info.st_ino
            self.head = os.pread(fd, HEAD_BYTES, 0).hex()
        elif len(self.head) < 2 * HEAD_BYTES and info.st_size > len(self.head) // 2:
            self.head = os.pread(fd, HEAD_BYTES, 0).hex()  # the file was shorter than HEAD_BYTES
        if info.st_size < self.pos:  # truncated in place: start again
            self.pos = 0
        start = self.pos
        data = os.pread(fd, budget, start)
        full = len(data) >= budget
        reached = start + len(data) >= info.st_size  # a line still being written counts as read
        # A last line without a newline is complete only at the end of a file nobody writes to.
        text, used = split_lines(data, final=final and reached, full=full)
        self.pos = start + used
        at_end = reached and not full
        if not at_end:
            self.more = True
        return ([] if text is None else [OutputLines(self.name, text)]), used, at_end


def read_new_output(
    paths: Mapping[str, str], within: str, cursor: Mapping[str, Any] | None, max_bytes: int, final: bool
) -> OutputChunk:
    """The new lines of each stream's log (stdout's before stderr's), at most ``max_bytes`` in all
    (blocking: call it in a thread)."""
    budget = max(1, max_bytes // len(paths))
    lines: list[OutputLines] = []
    new_cursor: dict[str, Any] = {}
    more = False
    for name, path in paths.items():
        stream = _Stream(name, path, within, (cursor or {}).get(name))
        lines.extend(stream.read(budget, final))
        new_cursor[name] = stream.cursor()
        more = more or stream.more
    return OutputChunk(tuple(lines), new_cursor, more=more)
