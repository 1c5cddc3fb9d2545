"""TaskPhase: where a task execution is in its life, with the seed's numbering."""

from __future__ import annotations

import enum


class TaskPhase(enum.IntEnum):
    """The phase of one task execution.

    Values are the seed's ``iota`` order (flyteplugins ``go/tasks/v1/types``) and must never be
    renumbered: they travel in trigger payloads and custom state as plain integers.
    """

    QUEUED = 0
    """Accepted by the backend, not running yet."""
    RUNNING = 1
    RETRYABLE_FAILURE = 2
    """This execution failed; a *new* execution may be tried (Airflow retries apply)."""
    PERMANENT_FAILURE = 3
    """Failed with something non-recoverable: no retry, whatever the retry policy says."""
    SUCCEEDED = 4
    UNDEFINED = 5
    """The executor reported no meaningful phase: a bug or an illegal state."""
    NOT_READY = 6
    """Not accepted yet (quota, concurrency limit, reservation held): ask again later."""
    UNKNOWN = 7
    """The status could not be determined this time (backend unreachable): ask again later."""

    def is_terminal(self) -> bool:
        """Succeeded or permanently failed: nothing more will happen to this task.

        A retryable failure is *not* terminal for the task (a new execution may follow), exactly
        as in the seed.
        """
        return self in (TaskPhase.SUCCEEDED, TaskPhase.PERMANENT_FAILURE)

    def is_permanent_failure(self) -> bool:
        return self is TaskPhase.PERMANENT_FAILURE

    def is_retryable_failure(self) -> bool:
        return self is TaskPhase.RETRYABLE_FAILURE

    def is_final_for_execution(self) -> bool:
        """This execution is over: terminal, or a retryable failure (the retry is a new execution)."""
        return self.is_terminal() or self.is_retryable_failure()

    def __str__(self) -> str:
        return self.name
