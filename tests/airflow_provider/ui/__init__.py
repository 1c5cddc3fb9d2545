"""Tests of the provider's pages (the Execution view, the Catalog page)."""

from __future__ import annotations

import urllib.parse

from airflow_provider.identity import Attempt
from airflow_provider.ui.paths import PREFIX


def folder_of_view_link(link: str, data_dir: str) -> str:
    """The execution folder that an Execution view link shows (what the view's lookup builds)."""
    parts = urllib.parse.urlsplit(link)
    assert parts.path.startswith(f"{PREFIX}/ti/"), link
    dag_id, task_id, run_id = (urllib.parse.unquote(p) for p in parts.path[len(PREFIX) + 4 :].split("/"))
    query = dict(urllib.parse.parse_qsl(parts.query))
    attempt = Attempt(dag_id, run_id, task_id, int(query["map_index"]), int(query["try_number"]))
    return attempt.folder(data_dir)
