"""The suite fails (never skips) with the exact install command when PostgreSQL is missing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.reliability import postgres
from tests.reliability.postgres import APT_INSTALL, PIP_INSTALL, PostgresUnavailable

pytestmark = pytest.mark.e2e


def test_missing_server_names_the_apt_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(postgres, "SERVER_GLOB", str(tmp_path / "nothing" / "*" / "bin"))
    with pytest.raises(PostgresUnavailable) as err:
        postgres.find_server_bin()
    assert APT_INSTALL in str(err.value) and "initdb" in str(err.value)


def test_missing_driver_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "asyncpg" else real(name, *a)
    )
    with pytest.raises(PostgresUnavailable, match="missing: asyncpg") as err:
        postgres.check_drivers()
    assert PIP_INSTALL in str(err.value)


def test_newest_installed_server_is_found() -> None:
    bin_dir = postgres.find_server_bin()  # this machine must have it: that is the suite's point
    assert (bin_dir / "initdb").exists() and (bin_dir / "pg_ctl").exists()
