"""The local executor's records of an execution, files in its state folder (``<state_root>/tasks/
<name>-<hash>/``): the ``claim`` (one launch per execution, later its failure record), ``pid.json``,
``exit.json`` (the supervisor's), ``killed.json``, ``supervisor.log``; how they are read and
written (atomically, or in place where a full disk must not stop it), and the lookup of every
state folder under a state root.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Mapping
from typing import Any

from executors.backends.local.supervisor import write_json_atomic
from executors.core.status import TaskError

CLAIM_BYTES = 4096
"""A claim is written at this size, so that marking it failed rewrites it in place: that needs no
free space, so even a launch that failed on a full disk is recorded as failed."""

_TEMPORARY = re.compile(r"(spec|pid|exit|killed)\.json\.tmp-\d+")


def read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path) as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # a half-written file cannot happen (atomic writes); treat garbage as absent
    return data if isinstance(data, dict) else None


def write_json(path: str, data: Mapping[str, Any]) -> None:
    """Atomically (without an fsync); on a failure (a full disk) the temporary file is removed too."""
    write_json_atomic(path, data, fsync=False)


def write_all(fd: int, data: bytes, offset: int | None = None) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view) if offset is None else os.pwrite(fd, view, offset)
        if offset is not None:
            offset += written
        view = view[written:]


def remove_temporary_files(state_dir: str) -> None:
    with contextlib.suppress(OSError):
        for name in os.listdir(state_dir):
            if _TEMPORARY.fullmatch(name):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(state_dir, name))


# -- the claim -------------------------------------------------------------------------------------


def _claim_bytes(record: Mapping[str, Any]) -> bytes:
    data = json.dumps(record).encode()
    failed = record.get("failed")
    while len(data) >= CLAIM_BYTES and isinstance(failed, dict) and len(failed.get("message", "")) > 80:
        message = failed["message"]
        failed = {**failed, "message": message[: len(message) * 3 // 4] + "..."}
        data = json.dumps({**record, "failed": failed}).encode()
    return data.ljust(CLAIM_BYTES - 1) + b"\n" if len(data) < CLAIM_BYTES else data


def create_claim(state_dir: str, record: Mapping[str, Any]) -> bool:
    """Claim the launch: ``False`` when it was claimed before. A claim that cannot be written
    completely is removed again (nothing was launched: the name is free)."""
    path = os.path.join(state_dir, "claim")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return False
    try:
        try:
            write_all(fd, _claim_bytes(record))
        finally:
            os.close(fd)
    except BaseException:
        remove_claim(state_dir)
        raise
    return True


def remove_claim(state_dir: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(os.path.join(state_dir, "claim"))


def read_claim(state_dir: str) -> dict[str, Any] | None:
    """The claim's record, ``None`` when nothing was claimed. A claim whose content cannot be read
    (being written) reads as a launch in flight since its file's time."""
    path = os.path.join(state_dir, "claim")
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
            mtime = os.fstat(fh.fileno()).st_mtime
    except FileNotFoundError:
        return None
    except OSError:
        return {"claimed_at": time.time()}
    try:
        record = json.loads(raw)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        record = {}
    record.setdefault("claimed_at", mtime)
    return record


def mark_claim_failed(state_dir: str, error: TaskError, permanent: bool) -> None:
    """Record a failed launch in its claim, rewritten in place: it works on a full disk. If even
    that fails the claim goes, and the name with it (nothing runs under it)."""
    record = read_claim(state_dir) or {}
    record["failed"] = {**error.to_dict(), "permanent": permanent, "at": time.time()}
    path = os.path.join(state_dir, "claim")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            write_all(fd, _claim_bytes(record), offset=0)
        finally:
            os.close(fd)
    except OSError:
        remove_claim(state_dir)


def state_dirs(state_root: str) -> dict[str, str]:
    """Execution folder -> state folder of every execution claimed under ``state_root``: for tools
    and tests that know an execution by its folder (``LocalExecutor.state_dir`` needs its context)."""
    tasks = os.path.join(state_root, "tasks")
    try:
        entries = sorted(os.listdir(tasks))
    except FileNotFoundError:
        return {}
    found = {}
    for entry in entries:
        claim = read_claim(os.path.join(tasks, entry))
        if claim is not None and isinstance(claim.get("execution_dir"), str):
            found[claim["execution_dir"]] = os.path.join(tasks, entry)
    return found


# -- the other records -----------------------------------------------------------------------------


def record_kill(state_dir: str, reason: str) -> tuple[bool, dict[str, Any] | None, bool]:
    """Write ``killed.json`` (once) for a claimed execution: ``(claimed, pid.json, launch over)``."""
    claim = read_claim(state_dir)
    if claim is None:
        return False, None, False
    if not os.path.exists(os.path.join(state_dir, "killed.json")):
        write_json(os.path.join(state_dir, "killed.json"), {"reason": reason, "at": time.time()})
    pid = read_json(os.path.join(state_dir, "pid.json"))
    over = "failed" in claim or os.path.exists(os.path.join(state_dir, "exit.json"))
    return True, pid, over


def keep_supervisor_output(state_dir: str, err: bytes) -> None:
    """Append to ``supervisor.log`` what the supervisor printed on its stderr pipe (before its
    stderr became that file)."""
    if not err:
        return
    with contextlib.suppress(OSError):
        fd = os.open(os.path.join(state_dir, "supervisor.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            write_all(fd, err)
        finally:
            os.close(fd)
