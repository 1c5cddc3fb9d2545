"""The processes of a local execution: finding them (by pid and create time, so that a recycled pid
is never taken for ours; by process group; as the supervisor's descendants) and stopping them.

A process is identified by its pid and its create time (``psutil``), as recorded in ``pid.json``;
a signal 0 (:func:`pid_exists`) is the cheap check in between, with no process-table scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Mapping
from typing import Any

import psutil

LINUX = sys.platform.startswith("linux")


def group_members(pgid: int, not_before: float) -> list[psutil.Process]:
    """Live processes of our task's group. ``not_before`` (the group's start time) guards
    against a recycled process-group id belonging to someone else."""
    members = []
    for proc in psutil.process_iter(["pid", "create_time", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.info["create_time"] < not_before - 1:
                continue
            if os.getpgid(proc.pid) == pgid:
                members.append(proc)
        except (ProcessLookupError, psutil.Error, OSError):
            continue
    return members


def process(pid: object, create_time: object) -> psutil.Process | None:
    """The live (not zombie) process ``pid``, if it is the one started at ``create_time``."""
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        if isinstance(create_time, int | float) and abs(proc.create_time() - create_time) >= 1.0:
            return None
        return proc
    except psutil.Error:
        return None


def alive(pid: object, create_time: object) -> bool:
    return process(pid, create_time) is not None


def pid_exists(pid: object) -> bool:
    """Signal 0: no process-table scan (a zombie or a recycled pid also answers yes)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def still_running(proc: psutil.Process) -> bool:
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def pids_alive(pid: Mapping[str, Any]) -> bool:
    """Whether the command or its supervisor (as recorded in pid.json) still runs."""
    return alive(pid.get("pid"), pid.get("create_time")) or alive(
        pid.get("supervisor_pid"), pid.get("supervisor_create_time")
    )


def create_time(pid: object) -> float | None:
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def kill_with_descendants(proc: psutil.Process) -> None:
    """SIGKILL at once, no grace period: for a supervisor nobody will watch."""
    with contextlib.suppress(psutil.Error):
        for child in proc.children(recursive=True):
            child.kill()
        proc.kill()


async def terminate(pid: Mapping[str, Any], kill_grace_period: float) -> None:
    """Stop the command and every process it started, also those that left its process group
    (the supervisor is their subreaper: they are all in its tree): SIGTERM, then SIGKILL after
    ``kill_grace_period``. Then the supervisor, which records the exit, ends by itself."""
    supervisor = await asyncio.to_thread(
        process, pid.get("supervisor_pid"), pid.get("supervisor_create_time")
    )
    pgid = int(pid.get("pgid") or pid.get("pid") or 0)
    not_before = float(pid.get("create_time") or pid.get("started_at") or 0)
    whole_tree = LINUX and bool(pid.get("subreaper", True))

    def targets() -> list[psutil.Process]:
        found: dict[int, psutil.Process] = {}
        running = supervisor is not None and still_running(supervisor)
        if running and supervisor is not None:
            with contextlib.suppress(psutil.Error):
                found.update((p.pid, p) for p in supervisor.children(recursive=True))
        if not (running and whole_tree) and pgid > 0:
            found.update((p.pid, p) for p in group_members(pgid, not_before) if p.pid not in found)
        return [p for p in found.values() if still_running(p)]

    def send(procs: list[psutil.Process], signum: int) -> None:
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signum)

    remaining = await asyncio.to_thread(targets)
    signalled = {p.pid for p in remaining}
    send(remaining, signal.SIGTERM)
    deadline = time.monotonic() + kill_grace_period
    while remaining and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        remaining = await asyncio.to_thread(targets)
        fresh = [p for p in remaining if p.pid not in signalled]  # forked meanwhile
        signalled.update(p.pid for p in fresh)
        send(fresh, signal.SIGTERM)
    # SIGKILL cannot be ignored, but the kernel takes a moment: return only once it is done.
    deadline = time.monotonic() + 5
    while remaining and time.monotonic() < deadline:
        send(remaining, signal.SIGKILL)
        await asyncio.sleep(0.05)
        remaining = await asyncio.to_thread(targets)
    if supervisor is None:
        return
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if not await asyncio.to_thread(still_running, supervisor):
            return
        await asyncio.sleep(0.05)
    with contextlib.suppress(psutil.Error):
        if still_running(supervisor):
            supervisor.kill()
