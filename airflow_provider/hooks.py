"""ExecutorHook: executor settings kept in an Airflow connection (address, credentials)."""

from __future__ import annotations

import json
from typing import Any

from airflow.sdk import BaseHook


class ExecutorHook(BaseHook):
    """Reads an ``executor`` connection into executor keyword arguments.

    Connection fields: host (the backend address, e.g. a Ray dashboard URL), password (a token,
    masked in logs), extra (a JSON object of further executor keyword arguments).
    """

    conn_name_attr = "executor_conn_id"
    default_conn_name = "executor_default"
    conn_type = "executor"
    hook_name = "Task executor"

    def __init__(self, executor_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.executor_conn_id = executor_conn_id

    def executor_config(self) -> dict[str, Any]:
        conn = self.get_connection(self.executor_conn_id)
        config: dict[str, Any] = {}
        if conn.extra:
            try:
                extra = json.loads(conn.extra)
            except ValueError as exc:
                raise ValueError(
                    f"connection {self.executor_conn_id!r}: extra is not valid JSON: {exc}"
                ) from exc
            if not isinstance(extra, dict):
                raise ValueError(f"connection {self.executor_conn_id!r}: extra must be a JSON object")
            config.update(extra)
        if conn.host:
            config["address"] = conn.host if "://" in conn.host else f"http://{conn.host}:{conn.port or 80}"
        if conn.password:
            config["token"] = conn.password
        return config
