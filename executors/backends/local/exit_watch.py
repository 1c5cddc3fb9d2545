"""Exit watches: knowing that a running execution still runs without asking the OS at every poll.

An execution is RUNNING while its supervisor or its command lives (see :mod:`status`). On Linux a
pidfd (``os.pidfd_open``, kernel 5.3+) of a process becomes readable the moment that process ends;
registered with the event loop's selector it costs nothing while the process runs. So once a check
has read RUNNING from disk, this process opens a pidfd per live pid of the execution, and while
one of them has not fired a status check answers that same RUNNING from memory: no thread, no
file, no signal. When the last one fires, the owner is woken at once (``EnqueueOwner``), so the
end is seen within a loop iteration instead of up to a poll interval later, and the next check
reads the disk again (the exit status, outputs, ``error.pb``).

Limits, each falling back to the plain check from disk, never to a wrong answer:

* the pidfd is opened first and the pid's identity (create time) checked after, so a recycled pid
  is never watched in place of ours;
* an answer from memory is trusted for at most ``TRUST_FOR`` seconds, then the disk is read again
  (whatever changed on disk meanwhile, e.g. a state root that vanished, shows then);
* at most ``max_watches`` executions are watched at once (two descriptors each; an eighth of the
  process's open-file limit, at most 1,024 executions);
* one event loop: a check from another loop reads the disk (a watch is bound to its loop's
  selector); the watches of a loop that was closed are dropped;
* no pidfd (another OS, an old kernel, a sandbox that refuses it): no watches.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import time
from collections.abc import Callable

from executors.backends.local.processes import alive
from executors.backends.local.records import read_json
from executors.core.status import TaskStatus

TRUST_FOR = 30.0
"""Seconds an execution's RUNNING is answered from memory before the disk is read again."""

PID_KEYS = (("supervisor_pid", "supervisor_create_time"), ("pid", "create_time"))
"""The processes of an execution, as ``pid.json`` records them: while either lives, it runs."""


def _default_max_watches() -> int:
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return 0
    if soft == resource.RLIM_INFINITY:
        soft = 4096 * 2
    return max(0, min(1024, soft // 8))


def open_pidfds(state_dir: str) -> list[int] | None:
    """Pidfds of the execution's live processes (blocking: run it in a thread), or ``None`` when
    none can be opened (nothing lives, no pidfd support, no descriptor left)."""
    if not hasattr(os, "pidfd_open"):
        return None
    pids = read_json(os.path.join(state_dir, "pid.json"))
    if pids is None:
        return None
    fds: list[int] = []
    for pid_key, time_key in PID_KEYS:
        pid = pids.get(pid_key)
        if not isinstance(pid, int) or pid <= 0:
            continue
        try:
            fd = os.pidfd_open(pid)
        except OSError:  # gone (ESRCH), or no pidfd / no descriptor left
            continue
        # Identity after opening: the pidfd refers to whatever has that pid now, and that must be ours.
        if alive(pid, pids.get(time_key)):
            fds.append(fd)
        else:
            os.close(fd)
    return fds or None


def close_fds(fds: list[int] | None) -> None:
    for fd in fds or ():
        with contextlib.suppress(OSError):
            os.close(fd)


@dataclasses.dataclass(eq=False)
class _Watch:
    owner: str
    status: TaskStatus
    fds: set[int]
    read_at: float
    """When the disk last said RUNNING (monotonic)."""


class ExitWatches:
    """The watched executions of one executor, on one event loop.

    ``on_over(owner)`` runs on the loop when every watched process of an execution has ended.
    """

    def __init__(self, on_over: Callable[[str], None], *, max_watches: int | None = None) -> None:
        self._on_over = on_over
        self.max_watches = _default_max_watches() if max_watches is None else max_watches
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watches: dict[str, _Watch] = {}

    def __len__(self) -> int:
        return len(self._watches)

    def running(self, state_dir: str) -> TaskStatus | None:
        """The RUNNING status read from disk, while a watched process of the execution lives
        and the reading is recent; ``None``: read the disk."""
        watch = self._watches.get(state_dir)
        if watch is None or not self._on_our_loop():
            return None
        if time.monotonic() - watch.read_at > TRUST_FOR:
            return None
        return watch.status

    def wants(self, state_dir: str) -> bool:
        """Whether an execution read RUNNING from disk now should be watched (there is room, on
        this loop, and it is not watched yet)."""
        if not self.max_watches or not self._bind():
            return False
        return state_dir not in self._watches and len(self._watches) < self.max_watches

    def renewable(self, state_dir: str) -> bool:
        """Whether the execution is watched on this loop (a RUNNING from disk renews its trust)."""
        return state_dir in self._watches and self._on_our_loop()

    def renew(self, state_dir: str, status: TaskStatus) -> TaskStatus:
        """The disk said RUNNING again for a watched execution: trust it for another ``TRUST_FOR``.
        Returns the status to answer: marked ``watched`` while the execution is watched."""
        watch = self._watches.get(state_dir)
        if watch is None:
            return status
        watch.status, watch.read_at = status.as_watched(), time.monotonic()
        return watch.status

    def add(self, state_dir: str, owner: str, status: TaskStatus, fds: list[int]) -> TaskStatus:
        """Watch ``fds`` (from :func:`open_pidfds`, now owned here) for the execution in ``state_dir``.
        Returns the status to answer: marked ``watched`` when the watch is in place (its end will
        wake ``owner``), else ``status`` as it was."""
        if state_dir in self._watches:
            close_fds(fds)
            return self.renew(state_dir, status)
        if not self._bind() or len(self._watches) >= self.max_watches:
            close_fds(fds)
            return status
        assert self._loop is not None
        watch = _Watch(owner, status.as_watched(), set(), time.monotonic())
        for fd in fds:
            try:
                self._loop.add_reader(fd, self._ended, state_dir, fd)
            except (OSError, ValueError, NotImplementedError):  # a selector that cannot watch it
                close_fds([fd])
                continue
            watch.fds.add(fd)
        if not watch.fds:
            return status
        self._watches[state_dir] = watch
        return watch.status

    def forget(self, state_dir: str) -> None:
        watch = self._watches.pop(state_dir, None)
        if watch is not None:
            self._release(watch)

    def close(self) -> None:
        for state_dir in list(self._watches):
            self.forget(state_dir)

    def _ended(self, state_dir: str, fd: int) -> None:
        watch = self._watches.get(state_dir)
        if watch is None or fd not in watch.fds:
            return
        watch.fds.discard(fd)
        self._unwatch(fd)
        if not watch.fds:
            del self._watches[state_dir]
            self._on_over(watch.owner)

    def _release(self, watch: _Watch) -> None:
        for fd in list(watch.fds):
            self._unwatch(fd)
        watch.fds.clear()

    def _unwatch(self, fd: int) -> None:
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(Exception):
                self._loop.remove_reader(fd)
        close_fds([fd])

    def _on_our_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def _bind(self) -> bool:
        """Bind to the running loop (dropping the watches of a loop that was closed); ``False``
        when the watches belong to another loop that still runs."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        if loop is self._loop:
            return True
        if self._loop is not None and not self._loop.is_closed() and self._watches:
            return False
        for watch in self._watches.values():
            close_fds(list(watch.fds))  # their selector is gone with their loop
        self._watches.clear()
        self._loop = loop
        return True
