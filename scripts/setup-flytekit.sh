#!/usr/bin/env bash
# Create ./.venv-flytekit: a separate interpreter with a pinned flytekit (plus pandas, pyarrow and
# pydantic) that stands in for a Flyte task image. The conformance suite (tests/conformance) runs
# flytekit's own tasks in it, and the literal benchmark compares against flytekit's TypeEngine there.
# flytekit never enters the project's own .venv. Idempotent: a second run only re-checks the stamps.
#
# Two stamps, so that an edit of pyproject.toml (frequent) does not rebuild the whole venv (a minute):
#   .installed-<hash of the requirements file>   the pinned packages are installed
#   .project-<hash of pyproject.toml>   this project is installed (editable, without its dependencies)
# Concurrent runs (two test sessions, the benchmark) wait for each other on a lock.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The pins (shared with the container suite's test image, harness/podman.py).
REQUIREMENTS_FILE=scripts/flytekit-requirements.txt
VENV=.venv-flytekit

hash16() { sha256sum | cut -c1-16; }
requirements_stamp="$VENV/.installed-$(hash16 <"$REQUIREMENTS_FILE")"
project_stamp="$VENV/.project-$(hash16 <pyproject.toml)"
if [ -f "$requirements_stamp" ] && [ -f "$project_stamp" ] && [ -x "$VENV/bin/pyflyte-execute" ]; then
  exit 0
fi

# One setup at a time (flock where there is one, else a lock directory).
lock="${TMPDIR:-/tmp}/setup-flytekit-$(printf '%s' "$PWD" | hash16).lock"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$lock"
  flock 9
else
  until mkdir "$lock.d" 2>/dev/null; do sleep 1; done
  trap 'rmdir "$lock.d"' EXIT
fi

if [ ! -x "$VENV/bin/python" ]; then
  PYTHON="${PYTHON:-python3}"
  [ -x .venv/bin/python ] && PYTHON=.venv/bin/python
  echo "setup-flytekit: creating $VENV (flytekit + pandas + pyarrow; first run: about a minute)" >&2
  "$PYTHON" -m venv --clear "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  rm -f "$VENV"/.installed-* "$VENV"/.project-*
fi
if [ ! -f "$requirements_stamp" ] || [ ! -x "$VENV/bin/pyflyte-execute" ]; then
  echo "setup-flytekit: installing the pinned packages into $VENV" >&2
  "$VENV/bin/python" -m pip install --quiet -r "$REQUIREMENTS_FILE"
  rm -f "$VENV"/.installed-*
  touch "$requirements_stamp"
fi
if [ ! -f "$project_stamp" ]; then
  # The project itself (task_io, runner), without its Airflow-side dependencies.
  "$VENV/bin/python" -m pip install --quiet --no-deps -e .
  rm -f "$VENV"/.project-*
  touch "$project_stamp"
fi
