"""The example DAG ``dags/executors_ray.py`` through real Airflow (``dag.test()``) on the test Ray head."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from tests.executors.backends.ray.conftest import RayHead

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[4]

RUN_DAG = textwrap.dedent(
    """
    import importlib.util, json, sys
    spec = importlib.util.spec_from_file_location("executors_ray_dag", sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = module.dag

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    dr = dag.test()
    with create_session() as session:
        tis = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dr.get_task_instances(session=session)}
        xcoms = {
            f"{x.task_id}.{x.key}": XComModel.deserialize_value(x)
            for x in session.scalars(XComModel.get_many(run_id=dr.run_id, dag_ids=dag.dag_id))
        }
        state = str(getattr(dr.state, "value", dr.state))
    print(json.dumps({"state": state, "tasks": tis, "xcoms": xcoms}, default=str))
    """
)


def airflow_env(home: Path, ray_address: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__PROVIDER_EXECUTORS__DATA_DIR": str(home / "executions"),
            "RAY_DASHBOARD_ADDRESS": ray_address,
        }
    )
    return env


def test_executors_ray_dag(ray_head: RayHead, tmp_path: Path) -> None:
    home = tmp_path / "airflow-home"
    home.mkdir()
    env = airflow_env(home, ray_head.address)
    migrate = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert migrate.returncode == 0, (
        f"airflow db migrate failed:\n{migrate.stdout[-3000:]}\n{migrate.stderr[-3000:]}"
    )

    t0 = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-c", RUN_DAG, str(REPO / "dags" / "executors_ray.py")],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    output = f"stdout:\n{run.stdout[-6000:]}\nstderr:\n{run.stderr[-6000:]}"
    assert run.returncode == 0, output
    result = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"\n[ray] dag.test() of executors_ray: {time.monotonic() - t0:.1f}s")
    assert result["state"] == "success", output
    assert result["tasks"] == {"sum_of_squares": "success"}, output
    expected = {"total": 30, "squares": [1, 4, 9, 16]}
    assert result["xcoms"]["sum_of_squares.return_value"] == expected
    assert result["xcoms"]["sum_of_squares.total"] == 30

    # The job really ran on the Ray head, named after the Airflow task instance.
    jobs = httpx.get(f"{ray_head.address}/api/jobs/", timeout=10).json()
    ours = [j for j in jobs if (j.get("metadata") or {}).get("owner_id", "").startswith("executors_ray/")]
    assert len(ours) == 1 and ours[0]["status"] == "SUCCEEDED", ours
    metadata = ours[0]["metadata"]
    assert (
        metadata["owner_kind"] == "TaskInstance" and metadata["owner_name"] == "executors_ray.sum_of_squares"
    )
    assert ours[0]["submission_id"] == metadata["generated_name"]
