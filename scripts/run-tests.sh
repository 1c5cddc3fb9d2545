#!/usr/bin/env bash
# The test command: set everything up, then run the whole suite, the slow end-to-end tests against
# a real Airflow stack included (they start and stop the services they need). Extra arguments go
# to pytest, e.g. `bash scripts/run-tests.sh -m "not e2e"` for the fast part only.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
# The flytekit interpreter the conformance suite and the flytekit fixture checks run tasks in.
bash scripts/setup-flytekit.sh
exec .venv/bin/python -m pytest "$@"
