#!/usr/bin/env bash
# The newcomer's first command: set everything up and run the hello-world DAG end to end on the
# local executor (a local Airflow with an embedded SQLite metadata DB under ./.airflow), then print
# each task's state and outputs. Pass another example's dag id to run it instead.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh

export AIRFLOW_HOME="$PWD/.airflow"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER="$PWD/dags"
export AIRFLOW__PROVIDER_EXECUTORS__DATA_DIR="$AIRFLOW_HOME/executions"
mkdir -p "$AIRFLOW_HOME"
.venv/bin/airflow db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1 ||
  { echo "airflow db migrate failed; see $AIRFLOW_HOME/db-migrate.log" >&2; exit 1; }
exec .venv/bin/python scripts/run_dag.py "${1:-executors_hello}"
