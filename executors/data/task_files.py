"""The one guarded reader for files a task wrote on a local path (``outputs.pb``, ``error.pb``, log tails).

A task controls what it leaves in its execution folder: it can make ``error.pb`` a FIFO (a plain
``open()`` + ``read()`` then blocks a thread forever, and a handful of those exhaust the event
loop's default thread pool), a symlink to ``/dev/zero`` (an unbounded read fills memory), a
symlink to a file outside its folder (someone else's outputs would be published as its own), a
directory, or a huge file. Every read here:

* resolves the path and requires the real path of the file to be inside the execution folder
  (``within``). A symlink whose target is inside the folder is **accepted** (it is the task's own
  file, e.g. ``outputs.pb -> raw/outputs.pb``); one whose target is outside is refused;
* then opens the resolved path one component at a time from the folder, with ``O_NOFOLLOW`` (a
  symlink swapped in after the resolution makes the open fail instead of escaping),
  ``O_NONBLOCK`` (opening a FIFO never waits for a writer), ``O_NOCTTY`` and ``O_CLOEXEC``;
* checks the file type before opening it (``lstat`` relative to its folder, so a FIFO or device is
  never even opened) and again on the open descriptor (``fstat``): anything but a regular file
  (FIFO, character or block device, socket, directory) is refused before any read;
* reads at most ``max_bytes`` (a larger file is refused, naming its size and the cap; a tail reads
  only its last ``limit`` bytes).

A regular file of bounded size is read in bounded time, so nothing a task writes can hold a thread
of the shared pool indefinitely. Refusals raise :class:`RefusedDataError` (a
:class:`~executors.core.errors.CorruptDataError`: callers treat it as bad data, never as a store outage),
naming the file and what is wrong. POSIX only (``dir_fd`` and ``O_NOFOLLOW``), like the local
executor.
"""

from __future__ import annotations

import errno
import os
import stat

from executors.core.errors import CorruptDataError

MAX_OUTPUTS_BYTES = 64 * 1024 * 1024
"""Default cap on the size of a task's ``outputs.pb`` (64 MiB). Outputs are published as Airflow
XComs, which live in the metadata database: large data belongs in raw outputs (blobs) referenced by
the outputs, not in the outputs themselves. Overridable per reader (``OutputsResolver(...,
max_outputs_bytes=)``, ``DataStore.read_protobuf(..., max_bytes=)``)."""

MAX_ERROR_BYTES = 1024 * 1024
"""Default cap on the size of a task's ``error.pb`` (1 MiB): an error document is a code and a
message (flytekit puts a traceback in it), far below this. Overridable
(``read_error_document(..., max_bytes=)``)."""

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


class RefusedDataError(CorruptDataError):
    """A task-written file that we refuse to read: not a regular file (a FIFO, a device, a socket, a
    directory), a symlink out of its execution folder, or larger than the cap. ``reference`` names
    the file; the message says what is wrong with it. A subclass of CorruptDataError: the data is
    bad (a retry would read the same thing), the store is fine."""


class DataTooLargeError(RefusedDataError):
    """The file is larger than the cap. ``size`` and ``max_bytes`` are in bytes."""

    def __init__(self, reference: str, size: int, max_bytes: int, *, grew: bool = False) -> None:
        self.size = size
        self.max_bytes = max_bytes
        what = "grew past" if grew else "exceeds"
        super().__init__(
            reference, f"{format_size(size)} ({size} bytes) {what} the {format_size(max_bytes)} cap"
        )


def format_size(size: int) -> str:
    """``512 bytes``, ``1 KiB``, ``4.2 GiB``: binary units, one decimal unless it is whole."""
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    text = f"{value:.1f}"
    return f"{text.removesuffix('.0')} {unit}"


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "a special file"


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _refuse_unless_regular(reference: str, mode: int) -> None:
    if stat.S_ISLNK(mode):  # left unresolved by realpath (a loop), or swapped in since
        raise RefusedDataError(reference, "is a symlink that does not resolve (a loop?) or that changed")
    if not stat.S_ISREG(mode):
        raise RefusedDataError(reference, f"is {_kind(mode)}, not a regular file")


def open_task_file(path: str, *, within: str | None, reference: str | None = None) -> int:
    """Open a task-written regular file for reading; returns the descriptor (the caller closes it).

    ``within`` is the execution folder: the file's real path must lie inside it (``None``: no
    containment, only the file-type checks, on the file a symlink points to). ``reference`` is
    how messages name the file (default: ``path``). Raises :class:`RefusedDataError` (see the
    module docstring), ``FileNotFoundError`` when the file (or a folder on its way) does not
    exist, another ``OSError`` when the folder cannot be read.
    """
    reference = reference or path
    absolute = os.path.abspath(path)
    if within is None:  # no containment: symlinks are followed, the checks apply to the target
        root, name = os.path.split(os.path.realpath(absolute))
        parts = [name]
    else:
        root = os.path.realpath(within)
        if not _inside(absolute, os.path.abspath(within)):
            raise RefusedDataError(reference, f"is outside the execution folder {within}")
        real = os.path.realpath(absolute)
        if not _inside(real, root):
            raise RefusedDataError(reference, f"symlink out of the execution folder {within} (to {real})")
        parts = os.path.relpath(real, root).split(os.sep)
        if parts == ["."]:
            raise RefusedDataError(reference, "is the execution folder itself, not a file in it")
    dir_fd = os.open(root, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | _DIRECTORY)
    try:
        for part in parts[:-1]:
            try:
                next_fd = os.open(part, _OPEN_FLAGS | _DIRECTORY | _NOFOLLOW, dir_fd=dir_fd)
            except OSError as exc:
                if exc.errno == errno.ENOTDIR:  # a file where a folder should be: no such file
                    raise FileNotFoundError(errno.ENOENT, f"{part} is not a folder", path) from exc
                if exc.errno == errno.ELOOP:
                    raise RefusedDataError(
                        reference, f"its folder {part!r} became a symlink while it was being opened"
                    ) from exc
                raise
            os.close(dir_fd)
            dir_fd = next_fd
        name = parts[-1]
        # Before opening: a FIFO or a device is never opened at all (opening some devices acts).
        _refuse_unless_regular(reference, os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
        try:
            fd = os.open(name, _OPEN_FLAGS | _NOFOLLOW, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise RefusedDataError(reference, "became a symlink while it was being opened") from exc
            raise
    finally:
        os.close(dir_fd)
    try:
        # Again on the descriptor: the name may have been swapped between the lstat and the open.
        _refuse_unless_regular(reference, os.fstat(fd).st_mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_task_file(path: str, *, within: str | None, max_bytes: int, reference: str | None = None) -> bytes:
    """The whole content of a task-written regular file of at most ``max_bytes`` bytes (blocking:
    call it in a thread). Raises :class:`DataTooLargeError` for a larger file, else as
    :func:`open_task_file`."""
    reference = reference or path
    fd = open_task_file(path, within=within, reference=reference)
    with os.fdopen(fd, "rb", buffering=0) as fh:
        size = os.fstat(fd).st_size
        if size > max_bytes:
            raise DataTooLargeError(reference, size, max_bytes)
        # Room for one byte more than the size we saw: a file that grew since is noticed.
        buffer = bytearray(size + 1)
        view = memoryview(buffer)
        filled = 0
        while filled < len(buffer):
            count = fh.readinto(view[filled:])
            if not count:
                return bytes(view[:filled])
            filled += count
        view.release()
        # It grew: read on, never past the cap.
        while len(buffer) <= max_bytes:
            chunk = fh.read(min(1024 * 1024, max_bytes + 1 - len(buffer)))
            if not chunk:
                return bytes(buffer)
            buffer += chunk
        raise DataTooLargeError(reference, max(len(buffer), os.fstat(fd).st_size), max_bytes, grew=True)


def tail_task_file(
    path: str, limit: int, *, within: str | None, reference: str | None = None
) -> tuple[bytes, int]:
    """The last ``limit`` bytes of a task-written regular file and the file's size (blocking: call
    it in a thread). Raises as :func:`open_task_file`."""
    fd = open_task_file(path, within=within, reference=reference)
    try:
        size = os.fstat(fd).st_size
        start = max(0, size - max(0, limit))
        chunks = []
        wanted = size - start
        while wanted > 0:
            chunk = os.pread(fd, wanted, start)
            if not chunk:
                break
            chunks.append(chunk)
            start += len(chunk)
            wanted -= len(chunk)
        return b"".join(chunks), size
    finally:
        os.close(fd)
