#!/usr/bin/env bash
# Run every benchmark and write benchmarks/RESULTS.md (see benchmarks/run.py). Pass --quick for a
# short smoke run.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m benchmarks.run "$@"
