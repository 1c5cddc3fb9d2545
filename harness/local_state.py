"""Where the local executor keeps its records of an execution, for tests that look at them.

The records (``claim``, ``pid.json``, ``exit.json``, ``killed.json``, ...) live under the executor's
``state_root``, out of the task's reach, not in the execution folder (see
executors/backends/local/executor.py). Tests know an execution by its folder; these helpers find its
records from there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from executors.backends.local.executor import state_dirs

CONFIG_ENV = "AIRFLOW__PROVIDER_EXECUTORS__EXECUTOR_CONFIG"


def configured_state_root() -> Path:
    """The local executor's ``state_root`` from the provider's config in the environment (the
    suite's conftest sets one per session)."""
    return Path(json.loads(os.environ[CONFIG_ENV])["local"]["state_root"])


def state_dir_of(
    execution_folder: str | os.PathLike[str], state_root: str | os.PathLike[str] | None = None
) -> Path:
    """The records of the execution in ``execution_folder``; a path that does not exist (yet) when
    no execution was claimed there, so ``(state_dir_of(f) / "pid.json").exists()`` can be polled."""
    root = Path(state_root) if state_root is not None else configured_state_root()
    found = state_dirs(str(root)).get(os.path.abspath(os.fspath(execution_folder)))
    return Path(found) if found is not None else root / "tasks" / "(not claimed)"


def state_dirs_under(
    folder: str | os.PathLike[str], state_root: str | os.PathLike[str]
) -> list[tuple[Path, Path]]:
    """``(execution folder, records)`` of every execution claimed in or below ``folder``."""
    top = os.path.abspath(os.fspath(folder))
    return sorted(
        (Path(execution), Path(records))
        for execution, records in state_dirs(os.fspath(state_root)).items()
        if execution == top or execution.startswith(top + os.sep)
    )
