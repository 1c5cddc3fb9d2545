"""Run one DAG of ``dags/`` end to end with ``dag.test()`` and print each task's state and outputs.

Used by ``scripts/run-example.sh``; expects AIRFLOW_HOME and the DAGs folder to be set up.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys


def main(dag_id: str) -> int:
    path = os.path.join(os.environ["AIRFLOW__CORE__DAGS_FOLDER"], f"{dag_id}.py")
    spec = importlib.util.spec_from_file_location(dag_id, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[dag_id] = module  # as Airflow's importer does: a dataclass looks its module up there
    spec.loader.exec_module(module)
    run = module.dag.test()

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    print(f"\n=== {dag_id}: {run.state} ===")
    with create_session() as session:
        for ti in sorted(run.get_task_instances(session=session), key=lambda t: (t.task_id, t.map_index)):
            row = (
                session.query(XComModel)
                .filter_by(dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, map_index=ti.map_index)
                .filter(XComModel.key == "return_value")
                .one_or_none()
            )
            if row is None:
                shown = ""
            elif isinstance(row.value, str):
                shown = row.value
            else:
                shown = json.dumps(row.value, sort_keys=True)  # stable: the README shows this line
            value = f" -> {shown}" if shown else ""
            index = f"[{ti.map_index}]" if ti.map_index >= 0 else ""
            print(f"  {ti.task_id}{index}: {ti.state} (try {ti.try_number}){value}")
    return 0 if str(run.state) in ("success", "DagRunState.SUCCESS") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "executors_hello"))
