"""The provider's Airflow plugin: the listener that stops executions on user actions, and the pages.

Airflow loads it from the ``airflow.plugins`` entry point (every process, default settings) and,
with ``[core] lazy_discover_providers = False``, from the ``plugins`` entry of the provider info;
the api-server then calls :data:`airflow_provider.listener.listener` when a user sets task states,
and mounts the pages' FastAPI app (:mod:`airflow_provider.ui.app`) at ``/executors``.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.plugins_manager import AirflowPlugin

from airflow_provider.listener import listener
from airflow_provider.ui.paths import CATALOG_HREF, PREFIX, VIEW_HREF

# The pages run their own script (the live log) and post a form (an eviction): the UI's default
# iframe sandbox ("allow-forms") would block the first; the pages are this provider's, served by
# the api-server itself, so they keep its origin.
_SANDBOX = "allow-scripts allow-same-origin allow-forms"


class ExecutorsProviderPlugin(AirflowPlugin):
    name = "provider_executors"
    listeners = [listener]
    external_views = [
        {
            "name": "Execution",
            "href": VIEW_HREF,
            "destination": "task_instance",
            "url_route": "execution",
            "sandbox": _SANDBOX,
        },
        {
            "name": "Executors catalog",
            "href": CATALOG_HREF,
            "destination": "nav",
            "category": "browse",
            "url_route": "executors-catalog",
            "sandbox": _SANDBOX,
        },
    ]

    @property  # read when the api-server mounts the apps, never set
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """Built when the api-server asks: workers and the triggerer load this plugin too (for the
        listener) and should not import FastAPI and the pages for nothing."""
        from airflow_provider.ui.app import app

        return [{"app": app, "url_prefix": PREFIX, "name": "Task executors"}]
