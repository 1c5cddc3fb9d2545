"""TaskStatus: one observation of a task execution, and the seed's ready-made statuses."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Mapping
from typing import Any

from executors.core.phase import TaskPhase

CustomState = dict[str, Any]
"""Free-form, JSON-safe state an executor keeps between calls for one execution (seed: CustomState).

It travels inside Airflow trigger kwargs, so it must hold only JSON values (str, int, float, bool,
None, lists and dicts of those).
"""


class ErrorOrigin(enum.StrEnum):
    """Who caused a failure; mirrors ``flyteidl.core.execution_pb2.ExecutionError.ErrorKind``."""

    UNKNOWN = "unknown"
    USER = "user"
    SYSTEM = "system"


@dataclasses.dataclass(frozen=True)
class TaskError:
    """Why an execution failed, in a form that survives JSON (the seed's ``Err``).

    ``code`` is short and machine-readable (``ExitCode1``, ``OutputsNotFound``, the code from
    ``error.pb``); ``message`` is for people; ``origin`` says whether the user's code or the system
    failed.
    """

    code: str
    message: str
    origin: ErrorOrigin = ErrorOrigin.UNKNOWN

    @classmethod
    def from_exception(cls, exc: BaseException, origin: ErrorOrigin = ErrorOrigin.SYSTEM) -> TaskError:
        return cls(code=type(exc).__name__, message=str(exc) or repr(exc), origin=origin)

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "origin": self.origin.value}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskError:
        return cls(code=str(data["code"]), message=str(data["message"]), origin=ErrorOrigin(data["origin"]))

    def __str__(self) -> str:
        return f"[{self.origin.value}:{self.code}] {self.message}"


ErrorLike = TaskError | BaseException | str


def as_task_error(err: ErrorLike) -> TaskError:
    """Normalize what an executor hands us as an error into a :class:`TaskError`."""
    if isinstance(err, TaskError):
        return err
    if isinstance(err, BaseException):
        return TaskError.from_exception(err)
    return TaskError(code="Error", message=err)


@dataclasses.dataclass(frozen=True)
class TaskStatus:
    """A phase plus what goes with it (seed: ``TaskStatus``).

    ``phase_version`` lets an executor report progress inside one phase (each new version is one
    event and one log line). ``state`` is the executor's custom state to carry to the next call;
    ``None`` means "unchanged". Instances are immutable: use the ``with_*`` methods for copies.

    ``watched`` is the executor's promise that it watches this execution and calls the owner's
    ``enqueue_owner`` as soon as its phase changes, so a check before then only guards against a
    lost wake-up: the driver then checks every ``PollPolicy.watched_interval`` instead of every
    ``interval``. It describes this one observation, is never serialized (a resumed driver learns
    it again at its first check) and takes no part in equality.
    """

    phase: TaskPhase
    phase_version: int = 0
    err: TaskError | None = None
    state: CustomState | None = None
    occurred_at: dt.datetime | None = None
    watched: bool = dataclasses.field(default=False, compare=False)

    def with_occurred_at(self, occurred_at: dt.datetime) -> TaskStatus:
        return dataclasses.replace(self, occurred_at=occurred_at)

    def with_phase_version(self, version: int) -> TaskStatus:
        return dataclasses.replace(self, phase_version=version)

    def with_state(self, state: CustomState | None) -> TaskStatus:
        return dataclasses.replace(self, state=state)

    def as_watched(self) -> TaskStatus:
        """This status with the executor's promise to wake the owner on a change (see ``watched``)."""
        return self if self.watched else dataclasses.replace(self, watched=True)

    def __str__(self) -> str:
        text = f"{self.phase.name}"
        if self.phase_version:
            text += f" (version {self.phase_version})"
        if self.err is not None:
            text += f": {self.err}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (for trigger events and payloads)."""
        return {
            "phase": int(self.phase),
            "phase_version": self.phase_version,
            "err": self.err.to_dict() if self.err else None,
            "state": self.state,
            "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskStatus:
        occurred = data.get("occurred_at")
        err = data.get("err")
        return cls(
            phase=TaskPhase(data["phase"]),
            phase_version=int(data.get("phase_version", 0)),
            err=TaskError.from_dict(err) if err else None,
            state=data.get("state"),
            occurred_at=dt.datetime.fromisoformat(occurred) if occurred else None,
        )


TASK_STATUS_QUEUED = TaskStatus(TaskPhase.QUEUED)
TASK_STATUS_RUNNING = TaskStatus(TaskPhase.RUNNING)
TASK_STATUS_SUCCEEDED = TaskStatus(TaskPhase.SUCCEEDED)
TASK_STATUS_NOT_READY = TaskStatus(TaskPhase.NOT_READY)
TASK_STATUS_UNDEFINED = TaskStatus(TaskPhase.UNDEFINED)
TASK_STATUS_UNKNOWN = TaskStatus(TaskPhase.UNKNOWN)


def permanent_failure(err: ErrorLike) -> TaskStatus:
    """The task failed with something non-recoverable; no further execution will be tried."""
    return TaskStatus(TaskPhase.PERMANENT_FAILURE, err=as_task_error(err))


def retryable_failure(err: ErrorLike) -> TaskStatus:
    """This execution failed, probably transiently; a *new* execution may be tried."""
    return TaskStatus(TaskPhase.RETRYABLE_FAILURE, err=as_task_error(err))


def not_ready_failure(err: ErrorLike) -> TaskStatus:
    """The task was not accepted (quota, concurrency limit, reservation held); ask again later."""
    return TaskStatus(TaskPhase.NOT_READY, err=as_task_error(err))


def unknown_status(err: ErrorLike) -> TaskStatus:
    """The status could not be determined this time (backend unreachable); ask again later."""
    return TaskStatus(TaskPhase.UNKNOWN, err=as_task_error(err))
