"""The example DAG ``dags/executors_docker.py`` through real Airflow (``dag.test()``) on the real engine:
a command and a ``@task.executor`` function, each in the test image, outputs in XCom."""

from __future__ import annotations

import pytest

from harness import podman
from tests.airflow_provider import dagtest

pytestmark = pytest.mark.e2e


def test_executors_docker_dag(podman_service: podman.PodmanService, test_image: str) -> None:
    dagtest.migrate_airflow_db()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DOCKER_HOST", podman_service.address)
        mp.setenv("EXECUTORS_DOCKER_IMAGE", test_image)
        module = dagtest.load_dag_module(dagtest.EXAMPLE_DAGS / "executors_docker.py")
        run = dagtest.run_dag_test(module.dag)
    assert run.state == "success", run
    assert run.xcom("which_os", "os") == "Debian GNU/Linux 12 (bookworm)"
    # The image's Python (Debian's 3.11.2), not the interpreter running these tests.
    assert run.xcom("greet") == "hello from Python 3.11.2 on Debian GNU/Linux 12 (bookworm)"
    assert not podman.leftover_containers({"io.airflow-provider-executors.domain": "executors_docker"})
