"""The exceptions that end a try for a reason their message states in full.

An execution that failed, an input refused before anything started: the task log should say
what went wrong, not print a traceback through this provider, its event-loop runner and asyncio,
which a DAG author can do nothing with. The operator raises these without their traceback
(:func:`plainly`); any other exception keeps its traceback, since that one is a bug to report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from airflow.sdk.exceptions import AirflowException, AirflowFailException

T = TypeVar("T")


class TryFailed(AirflowException):
    """The try failed and may be retried (Airflow's ``retries`` apply)."""


class TaskFailedForGood(AirflowFailException):
    """The task failed and no retry could change that (bad input, a non-recoverable error)."""


def try_failed(message: str, *, permanent: bool) -> AirflowException:
    """The exception that ends this try with ``message``: retried unless ``permanent``."""
    return TaskFailedForGood(message) if permanent else TryFailed(message)


def plainly(call: Callable[[], T]) -> T:
    """``call()``; a :class:`TryFailed` or :class:`TaskFailedForGood` from it is raised again
    from here, without its traceback or cause (its message says it all)."""
    try:
        return call()
    except (TryFailed, TaskFailedForGood) as exc:
        raise exc.with_traceback(None) from None
