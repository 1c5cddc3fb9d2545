"""The provider's Airflow plugin: it ships the listener that stops executions on user actions.

Airflow loads it from the ``airflow.plugins`` entry point (every process, default settings) and,
with ``[core] lazy_discover_providers = False``, from the ``plugins`` entry of the provider info;
the api-server then calls :data:`airflow_provider.listener.listener` when a user sets task states.
"""

from __future__ import annotations

from airflow.sdk.plugins_manager import AirflowPlugin

from airflow_provider.listener import listener


class ExecutorsProviderPlugin(AirflowPlugin):
    name = "provider_executors"
    listeners = [listener]
