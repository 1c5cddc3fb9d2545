"""The "Executor run" extra link: the execution's page in its backend, or its Execution view."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

from airflow_provider.identity import split_node_id
from airflow_provider.ui.paths import base_path, view_path

if TYPE_CHECKING:
    from airflow.sdk.types import TaskInstanceKey

    from executors import Executor, TaskContext

RUN_URL_XCOM_KEY = "executor_run_url"


def run_url(executor: Executor, ctx: TaskContext) -> str:
    """The link of an execution: what its executor's ``get_run_url`` gives (Ray's dashboard page),
    except a ``file://`` URL (the local executor's folder), which neither the Airflow UI renders nor
    a browser on another machine opens: that execution's link is its Execution view."""
    url = executor.get_run_url(ctx) or ""
    if not url.startswith("file://"):
        return url
    ident = ctx.task_execution_id.id
    execution = ident.node_execution_id.execution_id
    task_id, map_index = split_node_id(ident.node_execution_id.node_id)
    path = view_path(
        execution.domain, task_id, execution.name, map_index=map_index, try_number=ident.retry_attempt + 1
    )
    return base_path() + path


class ExecutorRunLink(BaseOperatorLink):
    """Points at what the executor's ``get_run_url`` returned when the execution started.

    Its XCom is the one the operator and the trigger push (``executor_run_url``): Airflow stores a
    link's value under ``xcom_key`` at a task's end, and the UI reads it from there, so one key
    serves both, and a task that ends in the triggerer (no task runner) still shows its link.
    """

    name = "Executor run"

    @property
    def xcom_key(self) -> str:
        return RUN_URL_XCOM_KEY

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.bases.xcom import BaseXCom

        url = BaseXCom.get_value(ti_key=ti_key, key=RUN_URL_XCOM_KEY)  # type: ignore[arg-type]
        return str(url) if url else ""
