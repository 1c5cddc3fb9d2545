"""The tails of a task's logs (``<execution folder>/logs/stdout.log`` and ``stderr.log``, each with
its older part in ``<log>.1`` once rotated by the supervisor), read without trusting the task: it
controls those files."""

from __future__ import annotations

import asyncio
import os


def tail(path: str, limit: int, within: str | None = None) -> str:
    """The last ``limit`` bytes of a task's log, as text ("" when it is missing or unreadable).

    The task controls its log files, so they are read by the guarded reader
    (:func:`executors.data.task_files.tail_task_file`) inside ``within``, the execution folder (default:
    the folder above ``path``'s, as logs live in ``<execution folder>/logs/``): a log that is a FIFO,
    a device, a directory or a symlink out of the folder is never read (a FIFO would block the
    thread forever); a one-line note naming it and the problem stands in for its content.
    """
    from executors.data.task_files import RefusedDataError, tail_task_file

    root = within if within is not None else os.path.dirname(os.path.dirname(os.path.abspath(path)))
    try:
        data, size = tail_task_file(path, limit, within=root)
    except RefusedDataError as exc:
        return f"[log not shown: {exc}]"
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    if size > limit:
        text = "..." + text.split("\n", 1)[-1]
    return text.strip()


def recent_tail(path: str, limit: int, within: str) -> str:
    """The last ``limit`` bytes of a log, reaching into ``<log>.1`` when the current file
    was rotated only a moment ago."""
    current = tail(path, limit, within)
    if len(current) >= limit // 2 or not os.path.exists(path + ".1"):
        return current
    older = tail(path + ".1", limit - len(current), within)
    return "\n".join(part for part in (older, current) if part)


async def last_output(stdout_path: str, stderr_path: str, within: str, limit: int) -> str:
    """What a failed command printed last: its stderr's tail, else its stdout's."""
    text = await asyncio.to_thread(recent_tail, stderr_path, limit, within)
    if not text:
        text = await asyncio.to_thread(recent_tail, stdout_path, limit, within)
    return text


async def log_tails(stdout_path: str, stderr_path: str, within: str, max_bytes: int) -> str | None:
    """``read_logs``: the tail of each log (``max_bytes`` in all), under a header naming it."""
    parts = []
    for label, path in (("stdout", stdout_path), ("stderr", stderr_path)):
        text = await asyncio.to_thread(tail, path, max_bytes // 2, within)
        if text:
            parts.append(f"----- {label} ({path}) -----\n{text}")
    return "\n".join(parts) or None
