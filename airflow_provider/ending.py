"""Ending a task in the triggerer (``end_from_trigger``) or handing it back to a worker.

Airflow ends a task straight from its trigger when the trigger yields a ``TaskSuccessEvent`` or a
``TaskFailedEvent`` (retried like any failure while tries remain): no worker turn at the end. The
trigger first pushes the XComs a worker would push, through the Task SDK's ``XCom.aset`` (the
triggerer relays it to the Execution API, as a worker's task runner does). Not through the
event's own ``xcoms``: Airflow 3.3.2 stores those JSON-encoded twice, so a downstream task reads
``'"Hello"'`` for ``"Hello"`` (seen on a real stack, tests/e2e). The event path skips what a
worker does besides, so a task goes back to a worker (``execute_complete``) whenever it matters:

* **listeners** (OpenLineage's among them) are not called: any listener other than this
  provider's own keeps the worker path;
* a **custom XCom backend** would serialize (often: upload) on the triggerer's event loop;
* the **mapped length** of a return value that a downstream ``.expand()`` maps over is recorded
  by a worker's task runner: a task with mapped dependants keeps the worker path.

Also kept in a worker: a permanent failure (a ``TaskFailedEvent`` would be retried), and any end
whose XComs could not be pushed. ``dag.test()`` runs triggers inline and expects an ordinary
event: only a trigger run by a real triggerer (it has a ``trigger_id``) ends its task itself.
"""

from __future__ import annotations

import asyncio
from typing import Any

from airflow_provider.links import RUN_URL_XCOM_KEY
from airflow_provider.publishing import Conclusion, ReturnShape

_DEFAULT_XCOM_BACKENDS = frozenset(
    {
        "airflow.sdk.execution_time.xcom.BaseXCom",
        "airflow.models.xcom.BaseXCom",
        "airflow.sdk.bases.xcom.BaseXCom",
    }
)

_blockers: list[str] | None = None
_lock: asyncio.Lock | None = None


def _process_blockers() -> list[str]:
    """What in this process's configuration needs a worker at the end (blocking: plugins load)."""
    found: list[str] = []
    from airflow.configuration import conf

    backend = conf.get("core", "xcom_backend", fallback="")
    if backend and backend not in _DEFAULT_XCOM_BACKENDS:
        found.append(f"a custom XCom backend ({backend})")
    try:
        from airflow.listeners.listener import get_listener_manager

        plugins = get_listener_manager().pm.get_plugins()
    except Exception as exc:  # cannot tell: be safe
        found.append(f"listeners could not be listed ({exc})")
    else:
        for plugin in plugins:
            name = getattr(plugin, "__name__", None) or type(plugin).__module__
            if not str(name).startswith("airflow_provider."):
                found.append(f"a listener ({name})")
    return found


async def process_blockers() -> list[str]:
    """:func:`_process_blockers`, worked out once per process, off the event loop."""
    global _blockers, _lock
    if _blockers is None:
        _lock = _lock or asyncio.Lock()
        async with _lock:
            if _blockers is None:
                _blockers = await asyncio.to_thread(_process_blockers)
    return _blockers


def mapped_dependants(task: Any) -> bool:
    """Whether a downstream ``.expand()`` maps over this task's output (then its length must be
    recorded by a worker). Unknown (no task at hand): assume so."""
    if task is None:
        return True
    try:
        return next(iter(task.iter_mapped_dependants()), None) is not None
    except Exception:
        return True


async def push_xcoms(ti: Any, xcoms: dict[str, Any]) -> None:
    """Push ``xcoms`` for the task instance ``ti`` from the triggerer, the way a worker does."""
    from airflow.sdk.execution_time.xcom import XCom

    map_index = -1 if ti.map_index is None else ti.map_index
    for key, value in xcoms.items():
        await XCom.aset(
            key, value, dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id, map_index=map_index
        )


def end_xcoms(conclusion: Conclusion, shape: ReturnShape, run_url: str) -> dict[str, Any]:
    """Every XCom a worker would have pushed for this end (run link, cache status, outputs)."""
    xcoms: dict[str, Any] = {RUN_URL_XCOM_KEY: run_url, **conclusion.xcoms}
    if conclusion.outputs is not None:
        xcoms.update(shape.xcoms(conclusion.outputs))
    return xcoms
