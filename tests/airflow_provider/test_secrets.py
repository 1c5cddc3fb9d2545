"""Secrets reach the task as Flyte's environment variables and are written nowhere."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException
from flyteidl.core import security_pb2

from airflow_provider.secrets import secret_env_name
from tests.airflow_provider import dagtest
from tests.airflow_provider.dagtest import DagTestRun

TOKEN = "tok-7f3a9c-never-on-disk"
PASSWORD = "pw-91bd22-never-on-disk"


@pytest.mark.parametrize(
    ("secret", "name"),
    [
        (security_pb2.Secret(group="svc", key="token"), "_FSEC_SVC_TOKEN"),
        (
            security_pb2.Secret(group="My-Group", key="api_key", group_version="v2"),
            "_FSEC_MY-GROUP_V2_API_KEY",
        ),
    ],
)
def test_env_names_follow_flytekit(secret: security_pb2.Secret, name: str) -> None:
    assert secret_env_name(secret) == name


@pytest.fixture(scope="module")
def secrets_run(test_dags: Path) -> DagTestRun:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_VAR_SVC_TOKEN", TOKEN)
        mp.setenv("AIRFLOW_CONN_MYDB", f"postgresql://admin:{PASSWORD}@db.example:5432/app")
        module = dagtest.load_dag_module(test_dags / "provider_test_secrets.py")
        return dagtest.run_dag_test(module.dag)


def test_the_task_gets_its_secrets(secrets_run: DagTestRun) -> None:
    assert secrets_run.task("uses_secrets") == dagtest.TaskResult("success", 1)
    assert secrets_run.xcom("uses_secrets") == {
        "token_sha": hashlib.sha256(TOKEN.encode()).hexdigest(),
        "password_sha": hashlib.sha256(PASSWORD.encode()).hexdigest(),
        "alias_ok": True,
    }


def test_a_missing_secret_fails_at_once_naming_it(secrets_run: DagTestRun) -> None:
    assert secrets_run.task("missing_secret") == dagtest.TaskResult("failed", 1)  # retries=2 ignored
    [failure] = secrets_run.callbacks_of("missing_secret")
    assert isinstance(failure.exception, AirflowFailException)
    text = str(failure.exception)
    assert "group='nowhere' key='nokey'" in text and "no variable 'nowhere_nokey'" in text


def test_no_artifact_of_the_run_holds_a_secret(secrets_run: DagTestRun) -> None:
    """Every file the run touched: execution folders, executor state, Airflow's logs and DB."""
    roots = [
        Path(os.environ["AIRFLOW__PROVIDER_EXECUTORS__DATA_DIR"]),
        Path(os.environ["AIRFLOW_HOME"]),
    ]
    searched, leaks = 0, []
    for root in roots:
        for path in root.rglob("*"):
            if not path.is_file():
                continue
            data = path.read_bytes()
            searched += 1
            if TOKEN.encode() in data or PASSWORD.encode() in data:
                leaks.append(str(path))
    assert searched > 20, searched  # the run's folders were really there
    assert leaks == []


def test_execution_folders_are_private(secrets_run: DagTestRun) -> None:
    data_dir = Path(os.environ["AIRFLOW__PROVIDER_EXECUTORS__DATA_DIR"])
    [folder] = (data_dir / "provider_test_secrets").glob("*/uses_secrets/1")
    assert folder.stat().st_mode & 0o777 == 0o700
