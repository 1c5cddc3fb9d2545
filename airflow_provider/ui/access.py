"""Who may see and change what, decided by Airflow's auth manager.

An execution belongs to its DAG: reading its view needs read access to the DAG's task instances
(its logs: to the task logs), as Airflow's own task instance pages do (the app's routes use
Airflow's ``requires_access_dag``). A catalog entry belongs to the DAG whose execution produced it
(Flyte's domain is the DAG id, see :mod:`airflow_provider.identity`): listing it needs read access
to that DAG, evicting it edit access. An entry whose producer is not an Airflow DAG needs the same
access to every DAG.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from airflow_provider.identity import PROJECT
from executors.catalog.store import CatalogEntry


def producing_dag(entry: CatalogEntry) -> str | None:
    """The DAG whose execution produced ``entry``; ``None`` for a producer outside Airflow."""
    try:
        source = json.loads(entry.source_execution or "{}")
    except ValueError:
        return None
    execution = ((source.get("node_execution_id") or {}).get("execution_id")) or {}
    if execution.get("project") != PROJECT or not execution.get("domain"):
        return None
    return str(execution["domain"])


def may(user: Any, method: Literal["GET", "PUT"], dag_id: str | None) -> bool:
    """Whether ``user`` may read (``GET``) or edit (``PUT``) the DAG ``dag_id`` (``None``: all DAGs)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
    from airflow.models.dag import DagModel

    team = DagModel.get_team_name(dag_id) if dag_id else None
    details = DagDetails(id=dag_id, team_name=team) if dag_id else None
    return bool(get_auth_manager().is_authorized_dag(method=method, details=details, user=user))
