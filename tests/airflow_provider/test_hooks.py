"""The connection hooks: what a connection, as the UI's form stores it, gives an executor."""

from __future__ import annotations

import json

from airflow.sdk import Connection

from airflow_provider.get_provider_info import get_provider_info
from airflow_provider.hooks import ExecutorHook


def test_an_executor_connection_gives_its_fields_and_leaves_out_empty_ones() -> None:
    extra = {"max_concurrent": 4, "request_timeout": None, "runtime_env": "", "state_root": "/s"}
    conn = Connection(
        conn_id="c", conn_type="executor", host="ray:8265", password="t", extra=json.dumps(extra)
    )
    assert ExecutorHook.config_from_connection(conn, "c") == {
        "max_concurrent": 4,
        "state_root": "/s",
        "address": "http://ray:8265",
        "token": "t",
    }


def test_the_executor_form_lists_the_extra_keys_it_offers() -> None:
    [executor] = [c for c in get_provider_info()["connection-types"] if c["connection-type"] == "executor"]
    fields = executor["conn-fields"]
    assert set(fields) == {"max_concurrent", "request_timeout", "runtime_env"}
    assert all(f["description"] for f in fields.values())
