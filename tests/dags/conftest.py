"""Fixtures of the example-DAG tests: a migrated metadata DB (shared with tests/airflow_provider)."""

from __future__ import annotations

import pytest

from tests.airflow_provider.dagtest import migrate_airflow_db


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """``airflow db migrate`` (SQLite in the session's AIRFLOW_HOME), once per session."""
    return migrate_airflow_db()
