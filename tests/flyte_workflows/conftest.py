"""tests/flyte_workflows: real flytekit workflows, packaged by flytekit, run as Airflow DAGs."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.airflow_provider import dagtest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FLYTEKIT_PYTHON = REPO / ".venv-flytekit" / "bin" / "python"
DAGS = HERE / "dags"
LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"


@pytest.fixture(scope="session")
def airflow_db() -> str:
    return dagtest.migrate_airflow_db()


@pytest.fixture(scope="session")
def flytekit_package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """``pyflyte package`` of the corpus and flytekit's own local execution of each workflow."""
    if not FLYTEKIT_PYTHON.exists() or not list(FLYTEKIT_PYTHON.parents[1].glob(".installed-*")):
        message = f"{FLYTEKIT_PYTHON} is missing: build it with `bash scripts/setup-flytekit.sh`"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI builds it: this suite must run there)")
        pytest.skip(message)
    outdir = tmp_path_factory.mktemp("flyte-workflows")
    done = subprocess.run(
        [str(FLYTEKIT_PYTHON), str(HERE / "flytekit_side.py"), str(outdir)],
        capture_output=True, text=True, timeout=600, cwd=outdir,
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return outdir / "workflows.tgz", json.loads((outdir / "expected.json").read_text())


@pytest.fixture(scope="session")
def workflow_dags(airflow_db: str, flytekit_package: tuple[Path, dict[str, Any]]) -> Iterator[Any]:
    """The DAG module of tests/flyte_workflows/dags, its DAGs built from the package."""
    current = os.environ.get(dagtest.BUNDLE_CONFIG_ENV)
    bundles = (
        json.loads(current) if current else [{"name": "dags-folder", "classpath": LOCAL_BUNDLE, "kwargs": {}}]
    )
    bundles.append({"name": "flyte-workflow-dags", "classpath": LOCAL_BUNDLE, "kwargs": {"path": str(DAGS)}})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(dagtest.BUNDLE_CONFIG_ENV, json.dumps(bundles))
        mp.setenv("FLYTE_WORKFLOWS_PACKAGE", str(flytekit_package[0]))
        yield dagtest.load_dag_module(DAGS / "flyte_workflow_dags.py")
