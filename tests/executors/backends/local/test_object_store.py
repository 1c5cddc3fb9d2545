"""The local executor with its data on an object store only: a real S3 server (moto's, on
loopback; ``s3_bucket`` in tests/conftest.py), reached through s3fs with the usual ``AWS_*``
variables, and no shared local path. Run as a user runs it, through ``run-typed-task``."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from executors import DataStore
from executors.data.storage import join

# Reads its input and writes its output through task_io (so through s3fs in the task's process),
# and prints whether it was handed the starter's S3 credentials.
TASK = """
import os, sys
from executors import task_io
x = task_io.read_inputs(sys.argv[1], sys.argv[3])["x"]
print("credentials:", os.environ.get("AWS_ACCESS_KEY_ID"), flush=True)
task_io.write_outputs(sys.argv[2], {"y": x * 2}, sys.argv[3])
"""


def run_task(data_dir: str, tmp_path: Path) -> tuple[int, str, str]:
    cli = Path(sys.executable).with_name("run-typed-task")
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    done = subprocess.run(
        [str(cli), "--data-dir", data_dir, "--input-type", "x=int", "--output-type", "y=int", "--input", "x=21",
         "--command", "python", "-c", TASK, "{{.input}}", "{{.outputPrefix}}", "{{.taskTemplatePath}}"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout, done.stderr


def test_a_task_reads_and_writes_its_data_on_s3_only(s3_bucket: str, tmp_path: Path) -> None:
    data_dir = join(s3_bucket, "executions")
    code, out, err = run_task(data_dir, tmp_path)
    assert code == 0, err
    assert json.loads(out) == {"y": 42}
    # On the store: the template, the inputs and the outputs the task wrote through s3fs.
    names = {ref.rsplit("/", 1)[1] for ref in asyncio.run(DataStore().find(data_dir))}
    assert {"inputs.pb", "outputs.pb"} <= names, names
    # The task got the credentials it needs for that store (and only because its data is there).
    assert "[stdout] credentials: testing" in err, err
    assert not (tmp_path / "data").exists()


def test_a_task_with_local_data_is_not_handed_the_cloud_credentials(s3_bucket: str, tmp_path: Path) -> None:
    assert os.environ.get("AWS_ACCESS_KEY_ID") == "testing"  # set by the s3_server fixture
    code, out, err = run_task(str(tmp_path / "data"), tmp_path)
    assert code == 0, err
    assert json.loads(out) == {"y": 42}
    assert "[stdout] credentials: None" in err, err
