"""Operator-test DAG for secrets (see tests/airflow_provider/test_secrets.py)."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_provider.operators import ExecutorOperator
from tests.airflow_provider.dagtest import on_failure, on_retry

USES_SECRETS = """
import hashlib, os, sys
from executors import task_io
def sha(name):
    return hashlib.sha256(os.environ[name].encode()).hexdigest()
print("secret hashes", sha("_FSEC_SVC_TOKEN"), sha("_FSEC_MYDB_PASSWORD"))
task_io.write_outputs(
    sys.argv[2],
    {
        "token_sha": sha("_FSEC_SVC_TOKEN"),
        "password_sha": sha("_FSEC_MYDB_PASSWORD"),
        "alias_ok": os.environ["DB_PASSWORD"] == os.environ["_FSEC_MYDB_PASSWORD"],
    },
    sys.argv[3],
)
"""
ARGS = ["{{.input}}", "{{.outputPrefix}}", "{{.taskTemplatePath}}"]

with DAG(
    dag_id="provider_test_secrets",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    default_args={"on_retry_callback": on_retry, "on_failure_callback": on_failure},
) as dag:
    ExecutorOperator(
        task_id="uses_secrets",
        command=["python", "-c", USES_SECRETS, *ARGS],
        output_types={"token_sha": str, "password_sha": str, "alias_ok": bool},
        secrets=[("svc", "token"), {"group": "mydb", "key": "password", "env_var": "DB_PASSWORD"}],
        poll_interval=0.2,
    )
    ExecutorOperator(
        task_id="missing_secret",
        command=["true"],
        secrets=[("nowhere", "nokey")],
        retries=2,
        retry_delay=dt.timedelta(seconds=0),
    )
