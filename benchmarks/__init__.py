"""Benchmarks of the provider and its core: they print figures and write RESULTS.md, never assert.

Run them all with ``.venv/bin/python -m benchmarks.run [--quick]`` (or ``bash benchmarks/run.sh``);
each module also runs alone: ``.venv/bin/python -m benchmarks.catalog_bench [--quick]``.
"""
