#!/usr/bin/env bash
# Create ./.venv-flytekit: a separate interpreter with a pinned flytekit (plus pandas, pyarrow and
# pydantic) that stands in for a Flyte task image. The conformance suite (tests/conformance) runs
# flytekit's own tasks in it, and the literal benchmark compares against flytekit's TypeEngine there.
# flytekit never enters the project's own .venv. Idempotent: a second run only re-checks the stamp.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The pins: the flytekit version the compatibility page names, and data libraries it works with.
REQUIREMENTS=(
  "flytekit==1.16.31"
  "pandas==2.3.3"
  "pyarrow==23.0.1"
  "pydantic>=2.9,<3"
  "protobuf>=7"
  "flyteidl>=1.16,<2"
  "fsspec" "pendulum" "psutil" "msgpack>=1.0" "jsonschema>=4"
)
VENV=.venv-flytekit
stamp="$VENV/.installed-$(printf '%s\n' "${REQUIREMENTS[@]}" | cat - pyproject.toml | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then
  exit 0
fi
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] && PYTHON=.venv/bin/python
echo "setup-flytekit: creating $VENV (flytekit + pandas + pyarrow; first run: about a minute)" >&2
"$PYTHON" -m venv --clear "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "${REQUIREMENTS[@]}"
# The project itself (task_io, runner), without its Airflow-side dependencies.
"$VENV/bin/python" -m pip install --quiet --no-deps -e .
touch "$stamp"
