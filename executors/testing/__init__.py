"""The executor contract kit: the checks every executor must pass, for any backend's own tests.

A backend's test module subclasses :class:`ExecutorContract` and provides a few fixtures (see its
docstring); every check then runs against the real backend::

    from executors.testing import ExecutorContract, initialized_executor

    class TestMyExecutorContract(ExecutorContract):
        ...

It needs pytest and pytest-asyncio (its checks are marked ``asyncio``, so pytest-asyncio's strict
mode works too; a backend's own async fixtures then need ``@pytest_asyncio.fixture``), and never
imports Airflow.
"""

from __future__ import annotations

from executors.testing.contract import ExecutorContract
from executors.testing.run import ContractRun, initialized_executor
from executors.testing.tasks import ContractTasks

__all__ = ["ContractRun", "ContractTasks", "ExecutorContract", "initialized_executor"]
