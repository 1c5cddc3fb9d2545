"""Provider metadata read by Airflow's providers manager (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

from airflow_provider import __version__
from airflow_provider.config import CATALOG_CONN_TYPES, OPTIONS, SECTION


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-executors",
        "name": "Task executors (Flyte-style)",
        "description": "Run typed Flyte tasks on pluggable executors (local process, Ray, ...) with "
        "deferrable operators, phase-to-state mapping and XCom outputs.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Task executors",
                "external-doc-url": "https://pypi.org/project/airflow-provider-executors/",
                "tags": ["software"],
            }
        ],
        "operators": [
            {"integration-name": "Task executors", "python-modules": ["airflow_provider.operators"]}
        ],
        "triggers": [{"integration-name": "Task executors", "python-modules": ["airflow_provider.triggers"]}],
        "hooks": [{"integration-name": "Task executors", "python-modules": ["airflow_provider.hooks"]}],
        "connection-types": [
            {
                "connection-type": "executor",
                "hook-class-name": "airflow_provider.hooks.ExecutorHook",
                "hook-name": "Task executor",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "login"],
                    "relabeling": {
                        "host": "Backend address",
                        "port": "Port (only for an address without http:// or https://)",
                        "password": "Token",
                    },
                    "placeholders": {"host": "http://127.0.0.1:8265"},
                },
                # The extra's keys are the executor's keyword arguments; the form lists the ones a
                # person sets most (an empty field is left out; other keys go in the extra JSON).
                "conn-fields": {
                    "max_concurrent": {
                        "label": "Max concurrent (local)",
                        "description": "local executor: executions at once on this machine; empty: no limit",
                        "schema": {"type": ["integer", "null"]},
                    },
                    "request_timeout": {
                        "label": "Request timeout, seconds (ray)",
                        "description": "Ray executor: seconds per call to the dashboard; empty: 30",
                        "schema": {"type": ["number", "null"]},
                    },
                    "runtime_env": {
                        "label": "Runtime env JSON (ray)",
                        "description": 'Ray executor: the job\'s runtime_env, e.g. {"pip": ["pandas"]}',
                        "schema": {"type": ["string", "null"]},
                    },
                },
            },
            _catalog_connection_type(CATALOG_CONN_TYPES[0], "CatalogHook", "Task executor catalog"),
            _catalog_connection_type(
                CATALOG_CONN_TYPES[1],
                "OldNameCatalogHook",
                "Task executor catalog (old type name: re-type as executor-catalog)",
            ),
        ],
        "task-decorators": [{"name": "executor", "class-name": "airflow_provider.decorators.executor_task"}],
        "cli": ["airflow_provider.cli.get_cli_commands"],
        "extra-links": ["airflow_provider.links.ExecutorRunLink"],
        # Its listener stops an execution when a user marks the task failed/success (listener.py).
        "plugins": [
            {"name": "provider_executors", "plugin-class": "airflow_provider.plugin.ExecutorsProviderPlugin"}
        ],
        "config": {
            SECTION: {
                "description": "Defaults of the task-executor provider (ExecutorOperator, ExecutorTrigger).",
                "options": {name: {**option, "version_added": "0.1.0"} for name, option in OPTIONS.items()},
            }
        },
    }


def _catalog_connection_type(conn_type: str, hook_class: str, hook_name: str) -> dict[str, Any]:
    """The catalog's connection form, under its name and under its old one (``executor_catalog``)."""
    return {
        "connection-type": conn_type,
        "hook-class-name": f"airflow_provider.hooks.{hook_class}",
        "hook-name": hook_name,
        "ui-field-behaviour": {
            "hidden-fields": ["host", "schema", "port"],
            "relabeling": {"login": "Access key (optional)", "password": "Secret key (optional)"},
        },
        "conn-fields": {
            "root": {
                "label": "Catalog root URL",
                "description": "fsspec URL of the catalog: a folder, s3://bucket/prefix, gs://...",
                "schema": {"type": "string"},
            },
            "storage_options": {
                "label": "Storage options (JSON)",
                "description": 'fsspec options of that store, e.g. {"endpoint_url": "..."}',
                "schema": {"type": ["string", "null"]},
            },
            "max_age": {
                "label": "Max age (seconds)",
                "description": "entries older than this are misses; empty: no limit",
                "schema": {"type": ["integer", "null"]},
            },
        },
    }
