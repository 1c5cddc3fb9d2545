"""The Airflow side's helpers shared by the conformance DAG files and tests (project venv only)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from airflow_provider.operators import ExecutorOperator
from tests.conformance import plain
from tests.conformance.cases import CASES, OUTDIR_ENV, SELECTED_ENV

REPO = Path(__file__).resolve().parents[2]
FLYTEKIT_VENV = REPO / ".venv-flytekit"
CORPUS = Path(__file__).resolve().parent / "corpus"
CONFORMANCE_DAGS = Path(__file__).resolve().parent / "dags"


def load_index() -> dict[str, Any]:
    """``cases.json`` of the serialized corpus, or ``{}`` when no session has serialized it."""
    outdir = os.environ.get(OUTDIR_ENV)
    if not outdir:
        return {}
    return json.loads((Path(outdir) / "cases.json").read_text())  # type: ignore[no-any-return]


def selected(task_id: str) -> bool:
    """Whether the DAG builds this task (see ``SELECTED_ENV``)."""
    chosen = os.environ.get(SELECTED_ENV)
    return chosen is None or task_id in chosen.split(",")


def flytekit_environment() -> dict[str, str]:
    """What a Flyte task image provides: flytekit's ``pyflyte-execute`` first on PATH, and the
    corpus module importable."""
    return {
        "PATH": os.pathsep.join([str(FLYTEKIT_VENV / "bin"), os.environ.get("PATH", os.defpath)]),
        "PYTHONPATH": str(CORPUS),
    }


def case_operator(
    name: str, serialized: dict[str, Any], *, executor_id: str, **kwargs: Any
) -> ExecutorOperator:
    """The ``ExecutorOperator`` of one case: flytekit's ``task.pb`` as it is, the case's plain inputs."""
    case = CASES[name]
    if case.operator_retries:
        kwargs.setdefault("retries", serialized["retries"])
    kwargs.setdefault("inputs", plain.decode(serialized["inputs"]))
    kwargs.setdefault("environment", flytekit_environment())
    return ExecutorOperator(
        task_id=name,
        executor_id=executor_id,
        task_template=serialized["template"],
        poll_interval=0.2,
        **kwargs,
    )
