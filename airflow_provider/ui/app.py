"""The FastAPI app behind the provider's pages, mounted by the plugin at :data:`paths.PREFIX`.

Pages (HTML, shown in the Airflow UI as iframes) and the JSON they are built from:

- ``GET /ti/{dag_id}/{task_id}/{run_id}?map_index=&try_number=``: the Execution view of one try
  (default: the latest); ``GET /api/ti/...`` is the same as JSON; ``GET /api/logs/...`` the phase and
  the logs' tails, which the page polls while the execution runs.
- ``GET /catalog``: the catalog's entries; ``GET /catalog/evict?...`` asks to confirm one
  eviction; ``POST /catalog/evict`` evicts (with the signed token of that confirmation).

Access (see :mod:`airflow_provider.ui.access`): Airflow's own ``requires_access_dag`` guards the
execution routes, with the caller's Airflow session (its cookie) or a bearer token.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Annotated, Any

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from airflow_provider import config
from airflow_provider.ui import access, locate
from airflow_provider.ui.paths import route
from executors.catalog import CacheKey, FsspecCatalog
from executors.catalog.key import cache_key, is_cacheable
from executors.core.errors import ExecutorsError
from executors.data.execution_record import (
    LOG_STREAMS,
    ExecutionRecord,
    latest_phase,
    read_execution_record,
    read_log_tail,
)
from executors.data.storage import DataStore

FINAL_PHASES = frozenset({"SUCCEEDED", "FAILED", "RETRYABLE_FAILED", "ABORTED", "TIMED_OUT"})
"""Event phases that end an execution (flyteidl ``TaskExecution.Phase`` names)."""

ENDED_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed", "up_for_retry"})
"""Task instance states in which its latest try no longer runs."""


def _ended(phase: str, place: locate.TryPlace) -> bool:
    """Whether the page can stop polling: the execution said so, or Airflow did (a try killed
    before its end was recorded, or one that is not the latest)."""
    latest = place.attempt.try_number == place.latest_try
    return phase in FINAL_PHASES or not latest or (place.state or "") in ENDED_STATES


EVICT_TOKEN_SECONDS = 600
"""How long a confirmation page's token stays good."""

app = FastAPI(title="Task executors", description="The Execution view and the result catalog.")
_pages = Environment(loader=PackageLoader("airflow_provider.ui"), autoescape=select_autoescape(default=True))

ReadTaskInstance = Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE))
ReadTaskLogs = Depends(requires_access_dag("GET", DagAccessEntity.TASK_LOGS))


def _map_index(map_index: Annotated[str, Query(alias="map_index")] = "-1") -> int:
    """The map index; ``-1`` also for an unmapped task's tab, where the UI leaves the template's
    ``{MAP_INDEX}`` unfilled (seen with Airflow 3.3.2 in a real browser)."""
    if map_index in ("", "{MAP_INDEX}"):
        return -1
    try:
        value = int(map_index)
    except ValueError:
        value = -2
    if value < -1:
        raise HTTPException(422, f"map_index must be -1 or a task's map index, not {map_index!r}")
    return value


MapIndex = Annotated[int, Depends(_map_index)]
TryNumber = Annotated[int | None, Query(ge=1)]


@app.exception_handler(HTTPException)
async def _refusal(request: Request, exc: HTTPException) -> Response:
    """A page asked for by a browser gets a page; an API call its JSON."""
    if "text/html" in request.headers.get("accept", ""):
        page = _pages.get_template("refused.html").render(status=exc.status_code, detail=exc.detail)
        return HTMLResponse(page, status_code=exc.status_code)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)


def _here(request: Request) -> str:
    """Where this app is mounted, as the browser sees it (the links on its pages start with it)."""
    return str(request.scope.get("root_path", ""))


# -- the Execution view ---------------------------------------------------------------------------


async def _place(
    dag_id: str, task_id: str, run_id: str, map_index: int, try_number: int | None
) -> locate.TryPlace:
    def find() -> locate.TryPlace:
        from airflow.utils.session import create_session

        with create_session() as session:
            return locate.find_try(
                session, dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index,
                try_number=try_number,
            )  # fmt: skip

    try:
        return await asyncio.to_thread(find)
    except locate.NoSuchTaskInstance as exc:
        raise HTTPException(404, str(exc)) from None


def _cache_key(record: ExecutionRecord) -> str:
    if record.template is None or record.input_literals is None or not is_cacheable(record.template):
        return ""
    try:
        return str(cache_key(record.template, record.input_literals))
    except ExecutorsError:
        return ""


async def _execution(place: locate.TryPlace) -> dict[str, Any]:
    record = await read_execution_record(DataStore(), place.folder)
    return {
        "dag_id": place.attempt.dag_id,
        "run_id": place.attempt.run_id,
        "task_id": place.attempt.task_id,
        "map_index": place.attempt.map_index,
        "try_number": place.attempt.try_number,
        "latest_try": place.latest_try,
        "tries": place.tries,
        "state": place.state,
        "executor": record.executor or (place.recorded.executor_id if place.recorded else ""),
        "folder": place.folder,
        "elsewhere": place.elsewhere,
        "phase": record.phase,
        "final": _ended(record.phase, place),
        "task": record.task,
        "task_type": record.task_type,
        "command": record.command,
        "inputs": [dataclasses.asdict(v) for v in record.inputs],
        "outputs": [dataclasses.asdict(v) for v in record.outputs],
        "error": record.error,
        "events": [
            {**dataclasses.asdict(e), "occurred_at": e.occurred_at.isoformat() if e.occurred_at else None}
            for e in record.events
        ],
        "cache": {"status": place.cache_status, "key": _cache_key(record)},
        "run_url": place.run_url,
        "problems": record.problems,
    }


async def _logs(place: locate.TryPlace) -> dict[str, Any]:
    logs: dict[str, Any] = {}
    for stream in LOG_STREAMS:
        try:
            tail = await read_log_tail(place.folder, stream)
        except (OSError, ExecutorsError) as exc:
            logs[stream] = {"text": f"({stream}.log cannot be shown: {exc})", "size": 0}
            continue
        logs[stream] = {"text": tail[0], "size": tail[1]} if tail else {"text": "", "size": 0}
    return logs


@app.get("/api/ti/{dag_id}/{task_id}/{run_id:path}", dependencies=[ReadTaskInstance])
async def execution_json(
    dag_id: str, task_id: str, run_id: str, map_index: MapIndex, try_number: TryNumber = None
) -> dict[str, Any]:
    """The Execution view's data: identity, phase timeline, typed inputs and outputs, cache, link."""
    return await _execution(await _place(dag_id, task_id, run_id, map_index, try_number))


@app.get("/api/logs/{dag_id}/{task_id}/{run_id:path}", dependencies=[ReadTaskLogs])
async def logs_json(
    dag_id: str, task_id: str, run_id: str, map_index: MapIndex, try_number: TryNumber = None
) -> dict[str, Any]:
    """The phase and the last 64 KB of each log, for the page to poll while the execution runs."""
    place = await _place(dag_id, task_id, run_id, map_index, try_number)
    phase = await latest_phase(DataStore(), place.folder)
    return {"phase": phase, "final": _ended(phase, place), "logs": await _logs(place)}


@app.get("/ti/{dag_id}/{task_id}/{run_id:path}", response_class=HTMLResponse, dependencies=[ReadTaskInstance])
async def execution_page(
    request: Request,
    dag_id: str,
    task_id: str,
    run_id: str,
    map_index: MapIndex,
    try_number: TryNumber = None,
) -> HTMLResponse:
    place = await _place(dag_id, task_id, run_id, map_index, try_number)
    execution = await _execution(place)
    here = _here(request)
    ids = (dag_id, task_id, run_id)
    page = _pages.get_template("execution.html").render(
        execution=execution,
        logs=await _logs(place),
        logs_url=here + route("api/logs", *ids, map_index=map_index, try_number=place.attempt.try_number),
        try_links=[(n, here + route("ti", *ids, map_index=map_index, try_number=n)) for n in place.tries],
    )
    return HTMLResponse(page)


# -- the catalog ----------------------------------------------------------------------------------


def _catalog() -> FsspecCatalog:
    return FsspecCatalog(config.catalog_url())


def _signer() -> Any:
    from airflow.configuration import conf
    from itsdangerous import URLSafeTimedSerializer

    return URLSafeTimedSerializer(conf.get("api", "secret_key"), salt="airflow-provider-executors.evict")


def _key_fields(key: CacheKey) -> dict[str, str]:
    return dataclasses.asdict(key)


@app.get("/catalog", response_class=HTMLResponse)
async def catalog_page(request: Request, user: GetUserDep) -> HTMLResponse:
    catalog = _catalog()
    entries = await catalog.list_entries()
    by_dag = {entry.reference: access.producing_dag(entry) for entry in entries}
    readable = {  # one decision per DAG, not per entry (each may ask the metadata DB)
        dag_id: await asyncio.to_thread(access.may, user, "GET", dag_id) for dag_id in set(by_dag.values())
    }
    rows = [
        {**entry.describe(), "dag_id": by_dag[entry.reference] or "", "fields": _key_fields(entry.key)}
        for entry in entries
        if readable[by_dag[entry.reference]]
    ]
    page = _pages.get_template("catalog.html").render(root=catalog.root, rows=rows, here=_here(request))
    return HTMLResponse(page)


async def _entry_to_evict(user: Any, key: CacheKey) -> tuple[FsspecCatalog, str | None]:
    catalog = _catalog()
    entry = await catalog.get_entry(key)
    if entry is None:
        raise HTTPException(404, f"no catalog entry {key}")
    dag_id = access.producing_dag(entry)
    if not await asyncio.to_thread(access.may, user, "PUT", dag_id):
        raise HTTPException(403, f"evicting {key} needs edit access to DAG {dag_id or '(every DAG)'}")
    return catalog, dag_id


@app.get("/catalog/evict", response_class=HTMLResponse)
async def confirm_eviction(
    request: Request,
    user: GetUserDep,
    project: str = "",
    domain: str = "",
    dataset: str = Query(min_length=1),
    version: str = Query(min_length=1),
    tag: str = Query(min_length=1),
) -> HTMLResponse:
    key = CacheKey(project, domain, dataset, version, tag)
    _, dag_id = await _entry_to_evict(user, key)
    token = _signer().dumps({"key": _key_fields(key), "user": user.get_id()})
    page = _pages.get_template("confirm.html").render(
        key=str(key), dag_id=dag_id, token=token,
        action=_here(request) + "/catalog/evict", back=_here(request) + "/catalog",
    )  # fmt: skip
    return HTMLResponse(page)


@app.post("/catalog/evict", response_class=HTMLResponse)
async def evict(request: Request, user: GetUserDep, token: Annotated[str, Form()]) -> HTMLResponse:
    """Evicts the entry named by a confirmation page's token (the token is the confirmation: it
    names the entry and the user, is signed with the api-server's secret and expires)."""
    from itsdangerous import BadSignature

    try:
        confirmed = _signer().loads(token, max_age=EVICT_TOKEN_SECONDS)
        key = CacheKey(**confirmed["key"])
    except (BadSignature, KeyError, TypeError):
        raise HTTPException(
            400, "this confirmation is not valid (expired or altered): confirm again"
        ) from None
    if confirmed.get("user") != user.get_id():
        raise HTTPException(403, "this confirmation was given to another user")
    catalog, _ = await _entry_to_evict(user, key)
    removed = await catalog.evict(key)
    page = _pages.get_template("evicted.html").render(
        key=str(key), removed=removed, back=_here(request) + "/catalog"
    )
    return HTMLResponse(page)
