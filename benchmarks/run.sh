#!/usr/bin/env bash
# Run every benchmark and write benchmarks/RESULTS.md (see benchmarks/run.py). Pass --quick for a
# short smoke run. Works from a fresh clone: it sets up ./.venv first (as the README's commands do);
# the flytekit interpreter the literal benchmark compares against is built on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m benchmarks.run "$@"
