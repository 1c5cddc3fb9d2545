"""Where the provider's pages are: the URLs the plugin declares and the run link points at.

Imported by the worker and the triggerer (the local executor's "Executor run" link is the
Execution view), so it imports nothing heavy.
"""

from __future__ import annotations

import urllib.parse

PREFIX = "/executors"
"""Where the plugin's FastAPI app is mounted in the api-server."""

VIEW_HREF = PREFIX + "/ti/{DAG_ID}/{TASK_ID}/{RUN_ID}?map_index={MAP_INDEX}"
"""The task-instance tab's URL template (the Airflow UI fills in and URL-encodes the ids). The run
id is last: it is the one id that may hold a ``/``."""

CATALOG_HREF = PREFIX + "/catalog"


def _quote(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def base_path() -> str:
    """The path under which Airflow serves its UI (``[api] base_url``'s path), without the final
    ``/``: ``""`` for an api-server at the root of its host."""
    from airflow.sdk import conf

    base_url = conf.get("api", "base_url", fallback="") or ""
    return urllib.parse.urlsplit(base_url).path.rstrip("/")


def route(
    kind: str, dag_id: str, task_id: str, run_id: str, *, map_index: int = -1, try_number: int | None = None
) -> str:
    """``/{kind}/{dag_id}/{task_id}/{run_id}?map_index=..[&try_number=..]`` within the app, each id
    URL-encoded (``kind``: ``ti``, the page; ``api/ti``, its JSON; ``api/logs``, its logs)."""
    query = {"map_index": str(map_index)}
    if try_number is not None:
        query["try_number"] = str(try_number)
    path = f"/{kind}/{_quote(dag_id)}/{_quote(task_id)}/{_quote(run_id)}"
    return f"{path}?{urllib.parse.urlencode(query)}"


def view_path(
    dag_id: str, task_id: str, run_id: str, *, map_index: int = -1, try_number: int | None = None
) -> str:
    """The Execution view of one try (``try_number=None``: the latest), relative to ``base_path``."""
    return PREFIX + route("ti", dag_id, task_id, run_id, map_index=map_index, try_number=try_number)
