"""``airflow executors-catalog``, run as a user runs it: the real ``airflow`` CLI, a connection
stored in the metadata DB (not only ``AIRFLOW_CONN_*``)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from flyteidl.core import literals_pb2

from executors.catalog import CacheKey, FsspecCatalog


def airflow(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    return subprocess.run(
        [sys.executable, "-m", "airflow", *args], capture_output=True, text=True, timeout=180, env=env
    )


@pytest.mark.parametrize("conn_type", ["executor-catalog", "executor_catalog"])
def test_list_reads_a_catalog_connection_stored_in_the_metadata_db(
    airflow_db: str, tmp_path: Path, conn_type: str
) -> None:
    """Also one of the type's old name (``executor_catalog``), which Airflow warns about on each read."""
    root = tmp_path / "catalog"
    catalog = FsspecCatalog(str(root))
    key = CacheKey(project="p", domain="d", dataset="tests.cli", version="1", tag="abc")
    asyncio.run(
        catalog.put_entry(key, literals_pb2.LiteralMap(), source_execution="cli-test-0", task_version="1")
    )
    conn_id = f"cli_catalog_{conn_type.replace('-', 'dash')}_{os.getpid()}"
    added = airflow(
        "connections",
        "add",
        conn_id,
        "--conn-type",
        conn_type,
        "--conn-extra",
        f'{{"root": "{root}"}}',
    )
    assert added.returncode == 0, added.stderr
    listed = airflow("executors-catalog", "list", "--conn-id", conn_id, "--output", "json")
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "cli-test-0" in listed.stdout, listed.stdout
    warned = "shall not contain" in listed.stdout + listed.stderr
    assert warned == ("_" in conn_type), (listed.stdout + listed.stderr)[-2000:]

    missing = airflow("executors-catalog", "list", "--conn-id", "no_such_conn")
    assert missing.returncode != 0
    assert "--conn-id no_such_conn:" in missing.stderr and "Traceback" not in missing.stderr, missing.stderr[
        -2000:
    ]
