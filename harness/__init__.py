"""What the test suites and the benchmarks share: stand-ins and a real Airflow stack to run against.

Not shipped (pyproject's package ``include`` leaves it out); imported from the repo root, like
``tests`` and ``benchmarks``.
"""
