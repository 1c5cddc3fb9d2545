"""The Execution view and the Catalog page, served by Airflow's own api-server app (plugin mounted
by Airflow, auth by Airflow's auth manager) over a real run of a real task on the local executor."""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from airflow_provider import config
from airflow_provider.identity import Attempt
from tests.airflow_provider.dagtest import DagTestRun
from tests.airflow_provider.ui.conftest import Api

DAG, TASK = "provider_test_ui", "square"


def view(run: DagTestRun, kind: str = "api/ti", **query: Any) -> str:
    run_id = urllib.parse.quote(run.run_id, safe="")
    return f"/executors/{kind}/{DAG}/{TASK}/{run_id}?" + urllib.parse.urlencode({"map_index": -1, **query})


def folder_of(run: DagTestRun) -> Path:
    return Path(Attempt(DAG, run.run_id, TASK, -1, 1).folder(config.data_dir()))


def test_the_view_shows_the_timeline_typed_values_cache_and_logs(api: Api, ui_run: DagTestRun) -> None:
    resp = api.get(view(ui_run))
    assert resp.status_code == 200, resp.text
    shown = resp.json()
    assert shown["folder"] == str(folder_of(ui_run))
    assert shown["executor"] == "local" and shown["phase"] == "SUCCEEDED" and shown["final"]
    assert [e["phase"] for e in shown["events"]][-1] == "SUCCEEDED"
    assert "RUNNING" in [e["phase"] for e in shown["events"]]
    assert shown["inputs"] == [{"name": "x", "type": "integer", "kind": "value", "text": "7"}]
    outputs = {v["name"]: v for v in shown["outputs"]}
    assert outputs["square"]["text"] == "49" and outputs["note"]["type"] == "string"
    assert shown["cache"]["status"] == "CACHE_POPULATED"
    assert shown["cache"]["key"].startswith(f"flyte_task-{DAG}.{TASK}@1-"), shown["cache"]
    assert shown["command"][0] == "python" and shown["problems"] == []

    logs = api.get(view(ui_run, "api/logs")).json()
    assert logs["logs"]["stdout"]["text"] == "squaring 7\n"
    assert logs["logs"]["stderr"]["text"] == "to stderr\n"


def test_the_page_escapes_what_the_task_wrote(api: Api, ui_run: DagTestRun) -> None:
    page = api.get(view(ui_run, "ti"))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "&lt;b&gt;not bold&lt;/b&gt;" in page.text and "<b>not bold</b>" not in page.text
    assert "squaring 7" in page.text and ">SUCCEEDED<" in page.text


def test_the_run_link_of_a_local_execution_is_its_view(ui_run: DagTestRun) -> None:
    link = ui_run.xcoms[(TASK, -1, "executor_run_url")]
    assert (
        link
        == f"/executors/ti/{DAG}/{TASK}/{urllib.parse.quote(ui_run.run_id, safe='')}?map_index=-1&try_number=1"
    )


def test_who_cannot_read_the_dag_cannot_read_its_execution(api: Api, ui_run: DagTestRun) -> None:
    for kind in ("api/ti", "api/logs", "ti"):
        assert api.get(view(ui_run, kind), user="outsider").status_code == 403, kind
        assert api.get(view(ui_run, kind), user="viewer").status_code == 200, kind
    assert api.client.get(view(ui_run)).status_code == 401  # no credentials at all
    page = api.get(view(ui_run, "ti"), user="outsider", headers={"Accept": "text/html"})
    assert page.status_code == 403 and 'id="refused"' in page.text


def test_an_unknown_task_instance_or_try_is_404(api: Api, ui_run: DagTestRun) -> None:
    assert api.get(view(ui_run, try_number=5)).status_code == 404
    hostile = urllib.parse.quote("../../../etc", safe="")
    assert api.get(f"/executors/api/ti/{DAG}/{TASK}/{hostile}").status_code == 404
    assert api.get(view(ui_run, map_index=-2)).status_code == 422
    assert api.get(view(ui_run, map_index="x")).status_code == 422


def test_an_unmapped_tab_with_its_map_index_unfilled_is_the_unmapped_instance(
    api: Api, ui_run: DagTestRun
) -> None:
    """The UI fills ``{MAP_INDEX}`` only for a mapped task instance (Airflow 3.3.2, seen in Chromium)."""
    resp = api.get(view(ui_run, map_index="{MAP_INDEX}"))
    assert resp.status_code == 200 and resp.json()["map_index"] == -1


def test_a_recorded_folder_outside_the_data_dir_is_named_not_read(
    api: Api, ui_run: DagTestRun, tmp_path: Path
) -> None:
    """The task state store's record is the task's to write; it never decides what the view reads."""
    from airflow.models.task_state_store import TaskStateStoreModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with create_session() as session:
        row = session.scalar(
            select(TaskStateStoreModel).where(
                TaskStateStoreModel.dag_id == DAG,
                TaskStateStoreModel.run_id == ui_run.run_id,
                TaskStateStoreModel.key == "executors.execution",
            )
        )
        assert row is not None, "the operator records its execution in the task state store"
        original = row.value
        record = json.loads(row.value)
        # What the Task State Store tab shows beside its "Clear All": the record says what clearing costs.
        assert (
            record["about"].startswith("Kept by airflow-provider-executors")
            and "run twice" in record["about"]
        )
        record["driver"]["task_ctx"]["data_dir"] = str(elsewhere)
        row.value = json.dumps(record)
    try:
        shown = api.get(view(ui_run)).json()
    finally:
        with create_session() as session:
            row = session.scalar(
                select(TaskStateStoreModel).where(TaskStateStoreModel.run_id == ui_run.run_id)
            )
            row.value = original
    assert shown["elsewhere"] == str(elsewhere)
    assert shown["folder"] == str(folder_of(ui_run)) and shown["outputs"]


def test_a_fifo_for_a_log_is_refused_without_waiting(api: Api, ui_run: DagTestRun) -> None:
    stderr = folder_of(ui_run) / "logs" / "stderr.log"
    kept = stderr.read_bytes()
    stderr.unlink()
    os.mkfifo(stderr)
    try:
        started = time.monotonic()
        logs = api.get(view(ui_run, "api/logs")).json()["logs"]
        assert time.monotonic() - started < 10
    finally:
        stderr.unlink()
        stderr.write_bytes(kept)
    assert "cannot be shown" in logs["stderr"]["text"] and "FIFO" in logs["stderr"]["text"]
    assert logs["stdout"]["text"] == "squaring 7\n"


def _entry_row(page: str) -> str:
    """The catalog page's row of this suite's entry (other suites may have entries too)."""
    start = page.index('<tr class="entry">')
    while True:
        row = page[start : page.index("</tr>", start)]
        if f"{DAG}.{TASK}" in row or '<tr class="entry">' not in page[start + 1 :]:
            return row
        start = page.index('<tr class="entry">', start + 1)


def test_the_catalog_lists_only_entries_of_readable_dags(api: Api, ui_run: DagTestRun) -> None:
    page = api.get("/executors/catalog")
    assert page.status_code == 200
    assert f"{DAG}.{TASK}" in page.text and DAG in _entry_row(page.text)
    assert f"{DAG}.{TASK}" not in api.get("/executors/catalog", user="outsider").text


def test_evicting_needs_edit_rights_and_a_confirmation(api: Api, ui_run: DagTestRun) -> None:
    page = api.get("/executors/catalog").text
    row = _entry_row(page)
    href = row.split('class="evict" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    assert api.get(href, user="viewer").status_code == 403  # may read, may not edit
    assert api.get(href, user="outsider").status_code == 403

    confirm = api.get(href)
    assert confirm.status_code == 200 and "Evict this catalog entry?" in confirm.text
    token = confirm.text.split('name="token" value="', 1)[1].split('"', 1)[0]
    assert api.post("/executors/catalog/evict", user="viewer", data={"token": token}).status_code == 403
    assert api.post("/executors/catalog/evict", data={"token": token + "x"}).status_code == 400
    entries_before = [e for e in _entries() if f"{DAG}.{TASK}" in e.key.dataset]
    assert len(entries_before) == 1

    done = api.post("/executors/catalog/evict", data={"token": token})
    assert done.status_code == 200 and "Evicted" in done.text
    assert [e for e in _entries() if f"{DAG}.{TASK}" in e.key.dataset] == []


def _entries() -> list[Any]:
    import asyncio

    from executors.catalog import FsspecCatalog

    return asyncio.run(FsspecCatalog(config.catalog_url()).list_entries())


@pytest.mark.parametrize("kind", ["api/ti", "ti"])
def test_a_running_or_missing_folder_still_shows(
    api: Api, ui_run: DagTestRun, kind: str, tmp_path: Path
) -> None:
    """A try whose folder lost its files (cleaned up, or not written yet) shows what is missing."""
    folder = folder_of(ui_run)
    moved = tmp_path / "moved"
    folder.rename(moved)
    try:
        resp = api.get(view(ui_run, kind))
    finally:
        moved.rename(folder)
    assert resp.status_code == 200
    if kind == "api/ti":
        assert resp.json()["phase"] == "UNKNOWN"
        assert resp.json()["final"], "Airflow says the try ended: the page stops polling"
        assert "task.pb: not there" in resp.json()["problems"]
