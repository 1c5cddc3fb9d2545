"""A stand-in for the part of Airflow's RuntimeTaskInstance that ExecutorOperator uses, for tests
(and benchmarks) that call ``execute()`` directly instead of going through ``dag.test()``."""

from __future__ import annotations

import dataclasses
import json
from typing import Any


@dataclasses.dataclass
class FakeTI:
    task_id: str
    dag_id: str = "unit_dag"
    run_id: str = "manual__unit"
    try_number: int = 1
    map_index: int = -1
    start_date: Any = None
    """When the try started (an aware datetime), as Airflow sets it; ``None``: unknown."""
    xcoms: dict[str, Any] = dataclasses.field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        json.dumps(value)  # XCom values must be JSON-safe
        self.xcoms[key] = value
