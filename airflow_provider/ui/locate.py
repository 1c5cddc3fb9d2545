"""Which execution a task try had, and where its folder is, as the api-server sees it.

The folder is always built from the provider's ``[provider_executors] data_dir`` and the task
instance's ids, each made one safe path segment (:func:`airflow_provider.identity.execution_folder`):
no id, however hostile (``..``, ``/``, a NUL), can point the view outside the data dir. What the
task instance recorded in Airflow's task state store (its executor, its cache status) is read for
display only and never decides a path: an execution that an operator put under its own
``data_dir`` is named, not read.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import TYPE_CHECKING, Any

from airflow_provider import config
from airflow_provider.adoption import STATE_KEY, from_record
from airflow_provider.execution import ExecutionHandle
from airflow_provider.identity import Attempt
from airflow_provider.links import RUN_URL_XCOM_KEY
from airflow_provider.publishing import CACHE_STATUS_XCOM_KEY
from executors.catalog.gate import CacheOutcome
from executors.data.storage import DataStore, is_local, local_path

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@dataclasses.dataclass(frozen=True)
class TryPlace:
    """One try of a task instance: who, where its folder is, and what Airflow knows of it."""

    attempt: Attempt
    folder: str
    state: str | None
    """The task instance's state (of its latest try)."""
    latest_try: int
    tries: list[int]
    """Tries that have a folder, ascending."""
    recorded: ExecutionHandle | None
    """The task state store's record of the execution, when it is this try's."""
    elsewhere: str | None
    """The recorded folder of this try when it is not under the data dir (the view does not read it)."""
    run_url: str
    cache_status: str
    """``CACHE_HIT``, ``CACHE_POPULATED``, ... (flyteidl's names) or ``""`` when nothing says."""


class NoSuchTaskInstance(LookupError):
    """The task instance (or try) is not in the metadata DB."""


def find_try(
    session: Session, *, dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int | None
) -> TryPlace:
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import select

    row = session.execute(
        select(TaskInstance.try_number, TaskInstance.state).where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.run_id == run_id,
            TaskInstance.task_id == task_id,
            TaskInstance.map_index == map_index,
        )
    ).first()
    if row is None:
        raise NoSuchTaskInstance(f"no task instance {dag_id}/{run_id}/{task_id} (map index {map_index})")
    latest = max(1, int(row.try_number or 1))
    wanted = latest if try_number is None else try_number
    if wanted < 1 or wanted > latest:
        raise NoSuchTaskInstance(
            f"task instance {dag_id}/{run_id}/{task_id} has no try {wanted} (latest {latest})"
        )
    attempt = Attempt(dag_id, run_id, task_id, map_index, wanted)
    data_dir = config.data_dir()
    folder = attempt.folder(data_dir)
    recorded = _recorded(session, attempt)
    elsewhere = None
    if recorded is not None and recorded.task_ctx.data_dir.rstrip("/") != folder.rstrip("/"):
        elsewhere, recorded = recorded.task_ctx.data_dir, None
    return TryPlace(
        attempt=attempt,
        folder=folder,
        state=None if row.state is None else str(getattr(row.state, "value", row.state)),
        latest_try=latest,
        tries=_tries(DataStore(), folder.rsplit("/", 1)[0]),  # the last segment is the try
        recorded=recorded,
        elsewhere=elsewhere,
        run_url=_run_url(session, attempt) if wanted == latest else "",
        cache_status=_cache_status(session, attempt, recorded) if wanted == latest else "",
    )


def _recorded(session: Session, attempt: Attempt) -> ExecutionHandle | None:
    """The recorded execution when it is ``attempt``'s (the record holds only the latest one)."""
    from airflow.models.task_state_store import TaskStateStoreModel

    found = from_record(_json(_value(session, TaskStateStoreModel, attempt, STATE_KEY)))
    return found[0] if found is not None and attempt.owns(found[0].task_ctx) else None


def _xcom(session: Session, attempt: Attempt, key: str) -> Any:
    """An XCom of the task instance (a JSON column: the value comes back as the one pushed)."""
    from airflow.models.xcom import XComModel

    return _value(session, XComModel, attempt, key)


def _value(session: Session, model: Any, attempt: Attempt, key: str) -> Any:
    """The ``value`` under ``key`` of the task instance's row in ``model``: the task state store
    and XComs are both keyed by (dag_id, run_id, task_id, map_index, key)."""
    from sqlalchemy import select

    return session.scalar(
        select(model.value).where(
            model.dag_id == attempt.dag_id,
            model.run_id == attempt.run_id,
            model.task_id == attempt.task_id,
            model.map_index == attempt.map_index,
            model.key == key,
        )
    )


def _run_url(session: Session, attempt: Attempt) -> str:
    """The backend's page of the execution (Ray's dashboard); not the view's own link."""
    url = _xcom(session, attempt, RUN_URL_XCOM_KEY)
    return url if isinstance(url, str) and url.startswith(("http://", "https://")) else ""


def _cache_status(session: Session, attempt: Attempt, recorded: ExecutionHandle | None) -> str:
    """The end's ``cache_status`` XCom, else what the catalog said at the start (the record)."""
    status = _xcom(session, attempt, CACHE_STATUS_XCOM_KEY)
    if isinstance(status, str) and status:
        return status
    outcome = CacheOutcome.of(recorded.task_ctx) if recorded is not None else None
    return outcome.status if outcome is not None else ""


def _json(value: Any) -> Any:
    """The task state store's value (JSON in a text column)."""
    if isinstance(value, (bytes, str)):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _tries(store: DataStore, parent: str) -> list[int]:
    """The try numbers that have a folder under ``parent`` (names that are numbers only)."""
    try:
        if is_local(parent):
            with os.scandir(local_path(parent)) as entries:
                names = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
        else:
            fs, path = store.filesystem(parent)
            names = [p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False)]
    except (OSError, ValueError):
        return []
    return sorted(int(name) for name in names if name.isdigit() and len(name) < 6)
