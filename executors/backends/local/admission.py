"""Admission: whether a start may launch, under ``max_concurrent`` counted across processes.

The running list, ``<state_root>/running/``, holds one entry per execution that may be running
(written with its claim, given its pids once launched, removed when it is seen over). A start
claims its execution under the list's lock, which is never waited for: a start that cannot take it
at once, or that finds every slot held, answers NOT_READY and launches nothing (it is asked again,
see :mod:`executors.backends.local.waiters`). Counting is cheap: a stat and a signal 0 per entry, a
create-time check only every ``VERIFY_EVERY`` seconds; and a count that found every slot held
answers the starts of the next ``FULL_FOR`` seconds by itself (``WATCHED_FULL_FOR`` when this process
watches every running execution), so thousands of waiting starts that ask again cost a stat each,
not a count each.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

from executors.backends.local.layout import Layout
from executors.backends.local.processes import alive, create_time, pid_exists
from executors.backends.local.records import create_claim, read_claim, read_json, remove_claim, write_json
from executors.core.context import TaskContext
from executors.core.status import ErrorOrigin, TaskError, TaskStatus, not_ready_failure

LOCK_ATTEMPTS, LOCK_PAUSE = 20, 0.005
"""Tries (and the pause between them) at the running list's lock before a start answers NOT_READY:
admission never waits on another process's lock."""

FULL_FOR = 0.5
"""Seconds a count that found every slot held answers a start by itself (NOT_READY, without the
lock or a count of its own): while many starts wait, a slot is looked for about twice a second by
the waiters' watch (:mod:`waiters`), not by every start that asks again."""

WATCHED_FULL_FOR = 5.0
"""``FULL_FOR`` when this process watched every execution the count found running (their exit
watches clear the count the moment one ends, see :mod:`exit_watch`): then only a slot freed by
an execution another process started since can go unseen, for at most this long."""

VERIFY_EVERY = 30.0
"""Seconds between identity checks (create time) of a running entry's live pids: in between, a
signal 0 says whether they live, so counting the running executions costs no process-table scan."""


class Admission:
    """The running list under one state root, and the claims made against it."""

    def __init__(self, layout: Layout, *, max_concurrent: int, launch_timeout: float) -> None:
        self._layout = layout
        self.max_concurrent = max_concurrent
        self.launch_timeout = launch_timeout
        self._verified: dict[str, float] = {}  # running entry -> when its pids were last identified
        self._entries: dict[str, tuple[int, dict[str, Any]]] = {}  # running entry -> (mtime, record)
        self._own_create_time: float | None = None
        self._last_count: tuple[int, float, bool] | None = None  # (running, when, all watched)
        self.watched_count: Callable[[], int] = lambda: 0
        """How many running executions this process watches (set by the executor)."""

    # -- claiming a launch -------------------------------------------------------------------

    def admit(self, task_ctx: TaskContext, state_dir: str) -> Literal["claimed", "exists"] | TaskStatus:
        """Claim the execution's launch (``"exists"``: claimed before), or NOT_READY."""
        self._layout.make_state_root()
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        if os.path.exists(os.path.join(state_dir, "claim")):
            return "exists"
        if not self.max_concurrent:
            return self._claim(task_ctx, state_dir)
        known_full = self.known_full()
        if known_full is not None:
            return known_full
        with self._lock() as locked:
            if not locked:
                return not_ready_failure(
                    TaskError(
                        "AdmissionBusy",
                        f"another start holds {self._layout.running_lock} "
                        "(the list of running local executions); asking again shortly",
                        ErrorOrigin.SYSTEM,
                    )
                )
            if os.path.exists(os.path.join(state_dir, "claim")):
                return "exists"
            running = self.count_running(prune=True)
            if running >= self.max_concurrent:
                return self._full(running)
            return self._claim(task_ctx, state_dir)

    def known_full(self) -> TaskStatus | None:
        """NOT_READY when a count made less than ``FULL_FOR`` ago found every slot held (cheap:
        memory only, fit for the event loop); ``None``: ask :meth:`admit`."""
        last = self._last_count  # cleared when a slot frees here (slot_may_be_free)
        if not self.max_concurrent or last is None or last[0] < self.max_concurrent:
            return None
        trusted_for = WATCHED_FULL_FOR if last[2] else FULL_FOR
        return self._full(last[0]) if time.monotonic() - last[1] < trusted_for else None

    def all_watched(self) -> bool:
        """Whether the last count found only executions that this process watches (so a slot
        that frees wakes it by itself); ``False`` when unknown."""
        last = self._last_count
        return last is not None and last[2]

    def _full(self, running: int) -> TaskStatus:
        return not_ready_failure(
            TaskError(
                "ConcurrencyLimit",
                f"{running} local executions are running (max_concurrent={self.max_concurrent})",
                ErrorOrigin.SYSTEM,
            )
        )

    def slot_may_be_free(self) -> None:
        """A process of a running execution ended: the next start counts again."""
        self._last_count = None

    def _claim(self, task_ctx: TaskContext, state_dir: str) -> Literal["claimed", "exists"]:
        if self._own_create_time is None:
            self._own_create_time = create_time(os.getpid())
        record = {
            "claimed_at": time.time(),
            "launcher_pid": os.getpid(),
            "launcher_create_time": self._own_create_time,
            "generated_name": task_ctx.generated_name,
            "execution_dir": os.path.abspath(self._layout.execution_dir(task_ctx)),
            "data_dir": task_ctx.data_dir,
        }
        if not create_claim(state_dir, record):
            return "exists"
        try:
            write_json(
                self._layout.running_entry(state_dir),
                {"state_dir": state_dir, "claimed_at": record["claimed_at"]},
            )
        except BaseException:
            remove_claim(state_dir)  # nothing was launched: the name is free again
            raise
        return "claimed"

    @contextlib.contextmanager
    def _lock(self) -> Iterator[bool]:
        """The running list's lock, never waited for: ``False`` when another start still holds it
        after ``LOCK_ATTEMPTS`` short tries (the caller answers NOT_READY and is asked again)."""
        fd = os.open(self._layout.running_lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            for attempt in range(LOCK_ATTEMPTS):
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if attempt + 1 == LOCK_ATTEMPTS:
                        yield False
                        return
                    time.sleep(LOCK_PAUSE)
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    # -- the entries -------------------------------------------------------------------------

    def set_pids(self, state_dir: str, pids: Mapping[str, Any]) -> None:
        """Give a launched execution's entry its pids (so counting needs no pid.json read)."""
        write_json(self._layout.running_entry(state_dir), {"state_dir": state_dir, **pids})

    def release(self, state_dir: str) -> None:
        """Free the execution's slot (it is over, or never launched)."""
        entry = self._layout.running_entry(state_dir)
        self.slot_may_be_free()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(entry)
        self._forget_entry(os.path.basename(entry))

    def count_running(self, prune: bool = False) -> int:
        """How many executions hold a slot: cheap (a stat and a signal 0 per entry; a create-time
        check per entry only every ``VERIFY_EVERY`` seconds). ``prune`` (under the lock) removes
        the entries of executions that are over."""
        running = self._layout.running_dir()
        try:
            entries = os.listdir(running)
        except FileNotFoundError:
            return 0
        count = 0
        for entry in entries:
            if not entry.endswith(".json"):
                continue
            path = os.path.join(running, entry)
            record = self._entry_record(entry, path)
            if record is not None and self._entry_running(entry, record):
                count += 1
            elif prune:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                self._forget_entry(entry)
        self._last_count = (count, time.monotonic(), count <= self.watched_count())
        return count

    def _entry_record(self, entry: str, path: str) -> dict[str, Any] | None:
        """A running entry's record, parsed again only when the file changed."""
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            self._forget_entry(entry)
            return None
        cached = self._entries.get(entry)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        record = read_json(path)
        if record is None:
            self._forget_entry(entry)
        else:
            self._entries[entry] = (mtime, record)
        return record

    def _forget_entry(self, entry: str) -> None:
        self._verified.pop(entry, None)
        self._entries.pop(entry, None)

    def _entry_running(self, entry: str, record: dict[str, Any]) -> bool:
        state_dir = record.get("state_dir")
        if not isinstance(state_dir, str) or os.path.exists(os.path.join(state_dir, "exit.json")):
            return False
        pids = record if "supervisor_pid" in record else read_json(os.path.join(state_dir, "pid.json"))
        if pids is None:  # claimed, not launched yet: it counts until the launch is over
            claim = read_claim(state_dir)
            if claim is None or "failed" in claim:
                return False
            return time.time() - float(claim.get("claimed_at") or 0) < self.launch_timeout
        live = [
            (pids.get(pid_key), pids.get(time_key))
            for pid_key, time_key in (("supervisor_pid", "supervisor_create_time"), ("pid", "create_time"))
            if pid_exists(pids.get(pid_key))
        ]
        if not live:
            return False
        now = time.monotonic()
        if now - self._verified.get(entry, -math.inf) < VERIFY_EVERY:
            return True
        if any(alive(pid, created) for pid, created in live):  # not a recycled pid
            self._verified[entry] = now
            return True
        return False
