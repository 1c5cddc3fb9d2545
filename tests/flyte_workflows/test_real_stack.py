"""The same five flytekit workflows as DAGs on a real Airflow stack (api-server, scheduler,
dag-processor, triggerer): triggered through the REST API with the workflows' inputs as the run's
conf, their ``workflow_outputs`` must equal flytekit's own local execution's."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.airflow_stack import AirflowStack
from tests.conformance import plain
from tests.flyte_workflows.conftest import DAGS, REPO
from tests.flyte_workflows.test_flyte_workflows import WORKFLOWS

pytestmark = [pytest.mark.e2e, pytest.mark.conformance]


@pytest.fixture(scope="module")
def stack(flytekit_package: tuple[Path, dict[str, Any]]) -> Iterator[AirflowStack]:
    home = Path(tempfile.mkdtemp(prefix="airflow-flyte-wf-"))
    extra = {"FLYTE_WORKFLOWS_PACKAGE": str(flytekit_package[0]), "PYTHONPATH": str(REPO)}
    running = AirflowStack(home, DAGS, poll_interval=1.0, extra_env=extra)
    try:
        running.start()
        yield running
    finally:
        running.stop()
        shutil.rmtree(home, ignore_errors=True)


def test_every_workflow_s_outputs_are_flytekit_s_on_a_real_stack(
    stack: AirflowStack, flytekit_package: tuple[Path, dict[str, Any]]
) -> None:
    expected = flytekit_package[1]
    client, runs = stack.client, {}
    for name in WORKFLOWS:  # all at once: the stack runs them side by side
        dag_id = f"flyte_wf_{name}"
        client.wait_for_dag(dag_id, timeout=120)
        client.unpause(dag_id)
        runs[name] = f"stack-{name}"
        client.trigger(dag_id, runs[name], conf=plain.decode(expected[name]["inputs"]))
    for name, run_id in runs.items():
        dag_id = f"flyte_wf_{name}"
        run = client.wait_for_run_state(dag_id, run_id, ("success", "failed"), timeout=300)
        states = {t["task_id"]: t["state"] for t in client.task_instances(dag_id, run_id)}
        assert run["state"] == "success", (name, states)
        assert plain.encode(client.xcom(dag_id, run_id, "workflow_outputs")) == expected[name]["outputs"], (
            name
        )
