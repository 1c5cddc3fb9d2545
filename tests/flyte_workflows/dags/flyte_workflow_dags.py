"""One DAG per workflow of tests/flyte_workflows/corpus, made by ``flyte_workflow_dag`` from the
package ``pyflyte package`` wrote (``$FLYTE_WORKFLOWS_PACKAGE``; without it no DAG is made).

The tasks run flytekit's ``pyflyte-execute`` from ``.venv-flytekit`` (the stand-in for the task
image), first on the ``PATH`` given through ``environment=``, with the corpus module importable.
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow_provider.flyte_workflows import flyte_workflow_dag
from executors.data.flyte_workflows import load
from tests.airflow_provider.dagtest import recording_default_args

REPO = Path(__file__).resolve().parents[3]
FLYTEKIT_BIN = REPO / ".venv-flytekit" / "bin"
CORPUS = REPO / "tests" / "flyte_workflows" / "corpus"
PACKAGE = os.environ.get("FLYTE_WORKFLOWS_PACKAGE", "")
WORKFLOWS = ("linear", "fan_out_in", "mapped", "nested", "data_passing")

if PACKAGE:
    package = load(PACKAGE)
    environment = {
        "PATH": os.pathsep.join([str(FLYTEKIT_BIN), os.environ.get("PATH", os.defpath)]),
        "PYTHONPATH": str(CORPUS),
    }
    for name in WORKFLOWS:
        globals()[f"dag_{name}"] = flyte_workflow_dag(
            package,
            f"flyte_workflows.{name}",
            dag_id=f"flyte_wf_{name}",
            operator_kwargs={"environment": environment, "poll_interval": 0.2},
            default_args=recording_default_args(),
        )
