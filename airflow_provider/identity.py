"""Who an Airflow task attempt is, in Flyte's terms, and where its data lives.

Mapping (documented in the README): a DAG run is a workflow execution (project ``airflow``,
domain = DAG id, name = run id); a task (with its map index) is a node; Airflow's ``try_number``
1, 2, ... is Flyte's ``retry_attempt`` 0, 1, .... The task identifier is the template's own id when
it has one (templates serialized by Flyte keep their project/domain/name/version), else
``airflow/<dag_id>/<dag_id>.<task_id>``.
"""

from __future__ import annotations

from flyteidl.core import identifier_pb2, tasks_pb2

from executors.data.storage import join, path_segment

PROJECT = "airflow"


def node_id(task_id: str, map_index: int) -> str:
    """``task_id`` or ``task_id[3]`` for a mapped instance (brackets cannot occur in task ids)."""
    return task_id if map_index < 0 else f"{task_id}[{map_index}]"


def task_execution_identifier(
    template: tasks_pb2.TaskTemplate,
    *,
    dag_id: str,
    task_id: str,
    run_id: str,
    map_index: int,
    try_number: int,
) -> identifier_pb2.TaskExecutionIdentifier:
    ident = identifier_pb2.TaskExecutionIdentifier(retry_attempt=max(0, try_number - 1))
    if template.id.name:
        ident.task_id.CopyFrom(template.id)
    else:
        ident.task_id.CopyFrom(
            identifier_pb2.Identifier(
                resource_type=identifier_pb2.TASK, project=PROJECT, domain=dag_id, name=f"{dag_id}.{task_id}"
            )
        )
    ident.node_execution_id.node_id = node_id(task_id, map_index)
    execution = ident.node_execution_id.execution_id
    execution.project, execution.domain, execution.name = PROJECT, dag_id, run_id
    return ident


def execution_folder(
    base: str, *, dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int
) -> str:
    """``{base}/{dag_id}/{run_id}/{task_id}[/{map_index}]/{try_number}`` with each part made safe."""
    parts = [dag_id, run_id, task_id]
    if map_index >= 0:
        parts.append(str(map_index))
    parts.append(str(try_number))
    return join(base, *(path_segment(p) for p in parts))
