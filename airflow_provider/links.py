"""The "Executor run" extra link: the execution's page (or log folder) in its backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk.types import TaskInstanceKey

RUN_URL_XCOM_KEY = "executor_run_url"


class ExecutorRunLink(BaseOperatorLink):
    """Points at what the executor's ``get_run_url`` returned when the execution started."""

    name = "Executor run"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.bases.xcom import BaseXCom

        url = BaseXCom.get_value(ti_key=ti_key, key=RUN_URL_XCOM_KEY)  # type: ignore[arg-type]
        return str(url) if url else ""
