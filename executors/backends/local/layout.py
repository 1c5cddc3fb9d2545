"""Where the local executor's things live: the state root, an execution's state folder and execution
folder, its logs, its running entry. The layout itself is described in ``executor.py``'s docstring."""

from __future__ import annotations

import hashlib
import os

from executors.core.context import TaskContext
from executors.data.storage import is_local, local_path


def default_state_root() -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "airflow-provider-executors", "local")


class Layout:
    """The paths under one ``state_root`` (and the execution folders, which may be elsewhere)."""

    def __init__(self, state_root: str) -> None:
        self.state_root = state_root
        self.running_lock = os.path.join(state_root, "running.lock")
        self._state_dirs: dict[tuple[str, str], str] = {}  # (name, data dir) -> state_dir()

    def make_state_root(self) -> None:
        for sub in ("running", "tasks"):
            os.makedirs(os.path.join(self.state_root, sub), mode=0o700, exist_ok=True)

    def execution_dir(self, task_ctx: TaskContext) -> str:
        if is_local(task_ctx.data_dir):
            return local_path(task_ctx.data_dir)
        return os.path.join(self.state_root, "executions", task_ctx.generated_name)

    def state_dir(self, task_ctx: TaskContext) -> str:
        """The executor's records of this execution: under ``state_root``, out of the task's way,
        keyed by generated name and data dir (the hash keeps apart two data dirs that reuse a name).
        Remembered (every status check asks), unless the data dir is relative: that one moves with
        the working directory."""
        key = (task_ctx.generated_name, task_ctx.data_dir)
        known = self._state_dirs.get(key)
        if known is not None:
            return known
        where, fixed = task_ctx.data_dir, True
        if is_local(task_ctx.data_dir):
            path = local_path(task_ctx.data_dir)
            where, fixed = os.path.abspath(path), os.path.isabs(path)
        digest = hashlib.sha256(where.encode("utf-8", errors="surrogatepass")).hexdigest()[:12]
        state_dir = os.path.join(self.state_root, "tasks", f"{task_ctx.generated_name}-{digest}")
        if fixed:
            if len(self._state_dirs) >= 8192:  # bounded: an executor may see any number of executions
                self._state_dirs.clear()
            self._state_dirs[key] = state_dir
        return state_dir

    def running_dir(self) -> str:
        return os.path.join(self.state_root, "running")

    def running_entry(self, state_dir: str) -> str:
        return os.path.join(self.running_dir(), os.path.basename(state_dir) + ".json")

    def log_paths(self, task_ctx: TaskContext) -> tuple[str, str]:
        """The task's ``stdout.log`` and ``stderr.log`` (the most recent part of its output)."""
        logs = os.path.join(self.execution_dir(task_ctx), "logs")
        return os.path.join(logs, "stdout.log"), os.path.join(logs, "stderr.log")
