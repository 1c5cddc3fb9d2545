"""Hooks: executor settings and the result catalog, kept in Airflow connections."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from airflow.sdk import BaseHook, Connection

from airflow_provider.config import CATALOG_CONN_TYPES
from executors.catalog import FsspecCatalog
from executors.data.storage import DataStore, protocol_of


def _extra(conn: Connection, conn_id: str) -> dict[str, Any]:
    if not conn.extra:
        return {}
    try:
        extra = json.loads(conn.extra)
    except ValueError as exc:
        raise ValueError(f"connection {conn_id!r}: extra is not valid JSON: {exc}") from exc
    if not isinstance(extra, dict):
        raise ValueError(f"connection {conn_id!r}: extra must be a JSON object")
    return extra


def _field(extra: dict[str, Any], name: str) -> Any:
    """A declared form field, stored plain or with the legacy ``extra__<type>__`` prefix (of the
    type's current name or of its old one)."""
    for key in (name, *(f"extra__{t}__{name}" for t in CATALOG_CONN_TYPES)):
        if key in extra:
            return extra[key]
    return None


class ExecutorHook(BaseHook):
    """Reads an ``executor`` connection into executor keyword arguments.

    Connection fields: host (the backend address, e.g. a Ray dashboard URL), password (a token,
    masked in logs), extra (a JSON object of further executor keyword arguments: see
    docs/executors.md for each executor's; the form shows the common ones as fields, and a field
    left empty, stored as ``null`` or ``""``, is no argument).
    """

    conn_name_attr = "executor_conn_id"
    default_conn_name = "executor_default"
    conn_type = "executor"
    hook_name = "Task executor"

    def __init__(self, executor_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.executor_conn_id = executor_conn_id

    @staticmethod
    def config_from_connection(conn: Connection, conn_id: str) -> dict[str, Any]:
        # The form's fields land in the extra as their names; one left empty is no argument.
        config = {
            k: v
            for k, v in _extra(conn, conn_id).items()
            if not k.startswith("extra__") and v is not None and v != ""
        }
        if conn.host:
            host = conn.host if "://" in conn.host else f"http://{conn.host}"
            if conn.port and "://" not in conn.host:
                host = f"{host}:{conn.port}"
            config["address"] = host
        if conn.password:
            config["token"] = conn.password
        return config

    def executor_config(self) -> dict[str, Any]:
        return self.config_from_connection(self.get_connection(self.executor_conn_id), self.executor_conn_id)

    async def aexecutor_config(self) -> dict[str, Any]:
        conn = await self.aget_connection(self.executor_conn_id)
        return self.config_from_connection(conn, self.executor_conn_id)


class CatalogHook(BaseHook):
    """The result catalog behind an ``executor-catalog`` connection (or one of the old type
    name, ``executor_catalog``).

    Fields: ``root`` (fsspec URL of the catalog: a folder, ``s3://bucket/prefix``, ...),
    ``storage_options`` (JSON object of fsspec options for that store), ``max_age`` (seconds; older
    entries are misses). Login/password, when set, become the store's ``key``/``secret`` (what
    s3fs and most object stores call them) and are masked in logs.
    """

    conn_name_attr = "catalog_conn_id"
    default_conn_name = "executor_catalog_default"
    conn_type = CATALOG_CONN_TYPES[0]
    hook_name = "Task executor catalog"

    def __init__(self, catalog_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.catalog_conn_id = catalog_conn_id

    @classmethod
    def catalog_from_connection(cls, conn: Connection, conn_id: str) -> FsspecCatalog:
        extra = _extra(conn, conn_id)
        root = _field(extra, "root") or conn.host
        if not root:
            raise ValueError(f"connection {conn_id!r}: set the catalog root URL (field 'root')")
        options = _field(extra, "storage_options") or {}
        if isinstance(options, str):
            options = json.loads(options) if options.strip() else {}
        if not isinstance(options, dict):
            raise ValueError(f"connection {conn_id!r}: storage_options must be a JSON object")
        if conn.login:
            options.setdefault("key", conn.login)
        if conn.password:
            options.setdefault("secret", conn.password)
        max_age = _field(extra, "max_age")
        store = DataStore({protocol_of(root): options})
        return FsspecCatalog(
            root, store=store, max_age=dt.timedelta(seconds=float(max_age)) if max_age else None
        )

    def get_catalog(self) -> FsspecCatalog:
        return self.catalog_from_connection(self.get_connection(self.catalog_conn_id), self.catalog_conn_id)

    async def aget_catalog(self) -> FsspecCatalog:
        conn = await self.aget_connection(self.catalog_conn_id)
        return self.catalog_from_connection(conn, self.catalog_conn_id)


class OldNameCatalogHook(CatalogHook):
    """``CatalogHook`` registered under the old type name, ``executor_catalog``, so that stored
    connections of that type still open in the UI's form (Airflow keys a form by hook class)."""

    conn_type = CATALOG_CONN_TYPES[1]
    hook_name = "Task executor catalog (old type name: re-type as executor-catalog)"
