"""The provider's configuration section, ``[provider_executors]`` (env: ``AIRFLOW__PROVIDER_EXECUTORS__*``).

Every option has a default that works on a laptop; ``get_provider_info()`` declares the same options
so ``airflow config list`` shows them.
"""

from __future__ import annotations

import json
import os
from typing import Any

from executors.engine.policy import DEFAULT_POLICY

SECTION = "provider_executors"

CATALOG_CONN_TYPES = ("executor-catalog", "executor_catalog")
"""The catalog's connection type, then its old name. Airflow warns on every read of a connection
whose type holds a ``_`` (not allowed in an RFC 3986 scheme), so the type is ``executor-catalog``;
connections stored with the old name keep working (and keep the warning until re-typed)."""

OPTIONS: dict[str, dict[str, Any]] = {
    "data_dir": {
        "description": "fsspec URL under which each execution gets its folder "
        "({data_dir}/{dag_id}/{run_id}/{task_id}[/{map_index}]/{try}). Empty: $AIRFLOW_HOME/executions.",
        "type": "string",
        "example": "s3://my-bucket/airflow-executions",
        "default": "",
    },
    "catalog_url": {
        "description": "fsspec URL of the default result catalog (used when an operator names no "
        "catalog_conn_id). Empty: a 'catalog' folder beside the data dir.",
        "type": "string",
        "example": "s3://my-bucket/airflow-catalog",
        "default": "",
    },
    "default_deferrable": {
        "description": "Whether ExecutorOperator defers to the triggerer by default.",
        "type": "boolean",
        "example": "False",
        "default": "True",
    },
    "start_from_trigger": {
        "description": "Whether a deferrable ExecutorOperator whose arguments are known without a worker "
        "(no XComArg, not mapped) starts its tries in the triggerer, with no worker turn at the start. "
        "An operator's start_from_trigger argument wins.",
        "type": "boolean",
        "example": "False",
        "default": "True",
    },
    "end_from_trigger": {
        "description": "Whether a deferred ExecutorOperator task ends in the triggerer, "
        "which pushes its XComs, "
        "with no worker turn at the end. A worker still ends it when a listener (OpenLineage), a custom XCom "
        "backend or a downstream .expand() needs one, and for a permanent failure. An operator's "
        "end_from_trigger argument wins.",
        "type": "boolean",
        "example": "False",
        "default": "True",
    },
    "poll_interval": {
        "description": "Seconds between two status checks of a running execution.",
        "type": "float",
        "example": "10",
        "default": f"{DEFAULT_POLICY.interval:g}",
    },
    "output_interval": {
        "description": "Seconds between two copies of a running execution's new output into the Airflow "
        "task log, doubling up to 30 s while the task prints nothing (0: copy it once, when the "
        "execution ends).",
        "type": "float",
        "example": "2",
        "default": f"{DEFAULT_POLICY.output_interval:g}",
    },
    "unknown_limit": {
        "description": "Consecutive checks that could not determine the status (backend unreachable) "
        "before the attempt fails as retryable.",
        "type": "integer",
        "example": "20",
        "default": str(DEFAULT_POLICY.unknown_limit),
    },
    "call_timeout": {
        "description": "Seconds one executor call (start, check, kill) may take before it counts as a "
        "transient failure.",
        "type": "float",
        "example": "60",
        "default": f"{DEFAULT_POLICY.call_timeout:g}",
    },
    "executor_config": {
        "description": "JSON object: executor id to keyword arguments of that executor, "
        'e.g. {"local": {"max_concurrent": 8}}. An operator\'s executor_options are merged on top.',
        "type": "string",
        "example": '{"local": {"max_concurrent": 8}}',
        # Airflow str.format()s defaults: no braces here, empty means {}.
        "default": "",
    },
}


def _raw(key: str) -> str:
    from airflow.sdk import conf

    return str(conf.get(SECTION, key, fallback=OPTIONS[key]["default"]))


def data_dir() -> str:
    configured = _raw("data_dir").strip()
    if configured:
        return configured
    home = os.environ.get("AIRFLOW_HOME") or os.path.join(os.path.expanduser("~"), "airflow")
    return os.path.join(home, "executions")


def catalog_url() -> str:
    configured = _raw("catalog_url").strip()
    if configured:
        return configured
    return data_dir().rstrip("/").rsplit("/", 1)[0] + "/catalog"


def _flag(key: str) -> bool:
    return _raw(key).strip().lower() in ("true", "1", "yes", "on")


def default_deferrable() -> bool:
    return _flag("default_deferrable")


def start_from_trigger() -> bool:
    return _flag("start_from_trigger")


def end_from_trigger() -> bool:
    return _flag("end_from_trigger")


def _number(key: str, kind: type[float] | type[int], *, zero: bool = False) -> float:
    raw = _raw(key)
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"[{SECTION}] {key} must be a number, got {raw!r}") from None
    if value < 0 or (value == 0 and not zero) or value != value:
        kind_of = "zero or positive" if zero else "positive"
        raise ValueError(f"[{SECTION}] {key} must be {kind_of}, got {raw!r}")
    return value


def poll_interval() -> float:
    return _number("poll_interval", float)


def output_interval() -> float:
    return _number("output_interval", float, zero=True)


def unknown_limit() -> int:
    return int(_number("unknown_limit", int))


def call_timeout() -> float:
    return _number("call_timeout", float)


def executor_config(executor_id: str) -> dict[str, Any]:
    """The configured keyword arguments for one executor; a malformed option is a clear error."""
    raw = _raw("executor_config")
    try:
        parsed = json.loads(raw or "{}")
    except ValueError as exc:
        raise ValueError(f"[{SECTION}] executor_config is not valid JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise ValueError(f"[{SECTION}] executor_config must be a JSON object, got {type(parsed).__name__}")
    config = parsed.get(executor_id, {})
    if not isinstance(config, dict):
        raise ValueError(f"[{SECTION}] executor_config[{executor_id!r}] must be a JSON object")
    return config
