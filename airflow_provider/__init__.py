"""Apache Airflow provider for Flyte-style task executors: a thin adapter over ``executors``.

Import the operator from ``airflow_provider.operators``; everything here is lazy so that importing
the package (which Airflow's provider discovery does) costs nothing.
"""

from __future__ import annotations

__version__ = "0.1.0"
