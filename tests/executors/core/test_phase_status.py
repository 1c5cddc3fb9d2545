from __future__ import annotations

import datetime as dt

import pytest

from executors import ErrorOrigin, TaskError, TaskPhase, TaskStatus, permanent_failure, retryable_failure
from executors.core.status import (
    TASK_STATUS_NOT_READY,
    TASK_STATUS_QUEUED,
    TASK_STATUS_RUNNING,
    TASK_STATUS_SUCCEEDED,
    TASK_STATUS_UNDEFINED,
    TASK_STATUS_UNKNOWN,
    not_ready_failure,
    unknown_status,
)

SEED_ORDER = [
    "QUEUED",
    "RUNNING",
    "RETRYABLE_FAILURE",
    "PERMANENT_FAILURE",
    "SUCCEEDED",
    "UNDEFINED",
    "NOT_READY",
    "UNKNOWN",
]


def test_phase_values_are_the_seeds_iota() -> None:
    assert [p.name for p in sorted(TaskPhase)] == SEED_ORDER
    assert [int(p) for p in sorted(TaskPhase)] == list(range(8))


@pytest.mark.parametrize(
    ("phase", "terminal", "permanent", "retryable", "final"),
    [
        (TaskPhase.QUEUED, False, False, False, False),
        (TaskPhase.RUNNING, False, False, False, False),
        (TaskPhase.RETRYABLE_FAILURE, False, False, True, True),
        (TaskPhase.PERMANENT_FAILURE, True, True, False, True),
        (TaskPhase.SUCCEEDED, True, False, False, True),
        (TaskPhase.UNDEFINED, False, False, False, False),
        (TaskPhase.NOT_READY, False, False, False, False),
        (TaskPhase.UNKNOWN, False, False, False, False),
    ],
)
def test_phase_helpers(
    phase: TaskPhase, terminal: bool, permanent: bool, retryable: bool, final: bool
) -> None:
    assert phase.is_terminal() is terminal
    assert phase.is_permanent_failure() is permanent
    assert phase.is_retryable_failure() is retryable
    assert phase.is_final_for_execution() is final


@pytest.mark.parametrize(
    ("status", "phase"),
    [
        (TASK_STATUS_QUEUED, TaskPhase.QUEUED),
        (TASK_STATUS_RUNNING, TaskPhase.RUNNING),
        (TASK_STATUS_SUCCEEDED, TaskPhase.SUCCEEDED),
        (TASK_STATUS_NOT_READY, TaskPhase.NOT_READY),
        (TASK_STATUS_UNDEFINED, TaskPhase.UNDEFINED),
        (TASK_STATUS_UNKNOWN, TaskPhase.UNKNOWN),
    ],
)
def test_module_statuses(status: TaskStatus, phase: TaskPhase) -> None:
    assert status.phase is phase
    assert status.err is None and status.phase_version == 0 and status.state is None


@pytest.mark.parametrize(
    ("factory", "phase"),
    [
        (permanent_failure, TaskPhase.PERMANENT_FAILURE),
        (retryable_failure, TaskPhase.RETRYABLE_FAILURE),
        (not_ready_failure, TaskPhase.NOT_READY),
        (unknown_status, TaskPhase.UNKNOWN),
    ],
)
def test_failure_constructors_accept_errors_exceptions_and_text(factory, phase) -> None:  # type: ignore[no-untyped-def]
    err = TaskError("Quota", "no room", ErrorOrigin.SYSTEM)
    assert factory(err) == TaskStatus(phase, err=err)
    from_exc = factory(ValueError("bad value"))
    assert from_exc.phase is phase
    assert from_exc.err == TaskError("ValueError", "bad value", ErrorOrigin.SYSTEM)
    assert factory("plain").err == TaskError("Error", "plain", ErrorOrigin.UNKNOWN)


def test_with_copies_leave_the_original_alone() -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    base = TASK_STATUS_RUNNING
    changed = base.with_phase_version(3).with_state({"k": 1}).with_occurred_at(when)
    assert (changed.phase_version, changed.state, changed.occurred_at) == (3, {"k": 1}, when)
    assert base == TaskStatus(TaskPhase.RUNNING)
    with pytest.raises(AttributeError):
        base.phase = TaskPhase.SUCCEEDED  # type: ignore[misc]


def test_readable_str() -> None:
    assert str(TASK_STATUS_SUCCEEDED) == "SUCCEEDED"
    status = retryable_failure(TaskError("ExitCode1", "boom", ErrorOrigin.USER)).with_phase_version(2)
    assert str(status) == "RETRYABLE_FAILURE (version 2): [user:ExitCode1] boom"


def test_status_dict_round_trip() -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    status = TaskStatus(
        TaskPhase.PERMANENT_FAILURE, 4, TaskError("C", "m", ErrorOrigin.USER), {"a": [1, "b"]}, when
    )
    assert TaskStatus.from_dict(status.to_dict()) == status
