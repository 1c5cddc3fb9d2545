"""The api-server's app (Airflow's own ``create_app``, with this provider's plugin mounted as Airflow
mounts it) over the session's metadata DB, and a run of ``provider_test_ui`` for it to show."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.airflow_provider.dagtest import DagTestRun, load_dag_module, run_dag_test

AUTH_MANAGER = "tests.airflow_provider.ui.conftest.OneDagHiddenAuthManager"
HIDDEN_DAG = "provider_test_ui"


def _simple_auth_manager() -> type[Any]:
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    return SimpleAuthManager


class OneDagHiddenAuthManager(_simple_auth_manager()):  # type: ignore[misc]
    """Airflow's simple auth manager, except that the user ``outsider`` (role admin) may not see the
    DAG ``provider_test_ui``: the simple auth manager has roles but no per-DAG rights, and the rule
    under test is per DAG."""

    def is_authorized_dag(
        self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None
    ) -> bool:
        if user.get_id() == "outsider" and (details is None or details.id == HIDDEN_DAG):
            return False
        return bool(
            super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)
        )


@dataclasses.dataclass
class Api:
    client: Any
    tokens: dict[str, str]

    def get(
        self, path: str, user: str = "admin", headers: dict[str, str] | None = None, **kwargs: Any
    ) -> Any:
        return self.client.get(path, headers=self._headers(user, headers), **kwargs)

    def post(self, path: str, user: str = "admin", **kwargs: Any) -> Any:
        return self.client.post(path, headers=self._headers(user, None), **kwargs)

    def _headers(self, user: str, headers: dict[str, str] | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}", **(headers or {})}


@pytest.fixture(scope="module")
def api(test_dags: Path) -> Iterator[Api]:
    from airflow.api_fastapi.app import create_app
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.configuration import conf
    from fastapi.testclient import TestClient

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW__CORE__AUTH_MANAGER", AUTH_MANAGER)
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin,viewer:viewer,outsider:admin")
        assert conf.get("core", "auth_manager") == AUTH_MANAGER
        app = create_app("core")
        manager = app.state.auth_manager
        tokens = {
            name: manager.generate_jwt(SimpleAuthManagerUser(username=name, role=role))
            for name, role in (("admin", "admin"), ("viewer", "viewer"), ("outsider", "admin"))
        }
        with TestClient(app) as client:
            yield Api(client, tokens)


@pytest.fixture(scope="module")
def ui_run(test_dags: Path) -> DagTestRun:
    """One successful run of ``provider_test_ui`` (a cached task: its entry lands in the catalog)."""
    dag = load_dag_module(test_dags / "provider_test_ui.py").dag
    run = run_dag_test(dag)
    assert run.state == "success", run
    return run


def run_async(coro: Any) -> Any:
    return asyncio.run(coro)
