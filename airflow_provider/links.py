"""The "Executor run" extra link: the execution's page (or log folder) in its backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk.types import TaskInstanceKey

RUN_URL_XCOM_KEY = "executor_run_url"


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
