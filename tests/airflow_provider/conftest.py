"""Fixtures of the Airflow provider tests: a migrated metadata DB and the operator-test DAG bundle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.airflow_provider.dagtest import (
    BUNDLE_CONFIG_ENV,
    TEST_DAGS,
    bundle_config_with_test_dags,
    migrate_airflow_db,
)


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """``airflow db migrate`` (SQLite in the session's AIRFLOW_HOME), once per session."""
    return migrate_airflow_db()


@pytest.fixture(scope="session")
def test_dags(airflow_db: str) -> Iterator[Path]:
    """The folder of the operator-test DAG files, configured as a DAG bundle while tests use it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(BUNDLE_CONFIG_ENV, bundle_config_with_test_dags())
        yield TEST_DAGS
