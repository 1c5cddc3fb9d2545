"""Who an Airflow task attempt is, in Flyte's terms, and where its data lives.

Mapping (documented in the README): a DAG run is a workflow execution (project ``airflow``,
domain = DAG id, name = run id); a task (with its map index) is a node; Airflow's ``try_number``
1, 2, ... is Flyte's ``retry_attempt`` 0, 1, .... The task identifier is the template's own id when
it has one (templates serialized by Flyte keep their project/domain/name/version), else
``airflow/<dag_id>/<dag_id>.<task_id>``.
"""

from __future__ import annotations

import hashlib
import urllib.parse

from flyteidl.core import identifier_pb2, tasks_pb2

from executors.storage import join

PROJECT = "airflow"
_MAX_SEGMENT = 120


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


def path_segment(name: str) -> str:
    """One safe path segment for any string: no separators, no ``.``/``..``, bounded length.

    Anything outside ``[A-Za-z0-9_.:+=@,-]`` is percent-encoded (so distinct names stay distinct and
    readable), a segment of dots is encoded whole, and a very long segment keeps a readable head
    plus a hash of the whole.
    """
    encoded = urllib.parse.quote(name, safe="-_.:+=@,")
    if encoded.strip(".") == "":
        encoded = encoded.replace(".", "%2E") or "%00"
    if len(encoded) > _MAX_SEGMENT:
        digest = hashlib.sha256(name.encode()).hexdigest()[:16]
        head = encoded[: _MAX_SEGMENT - 17]
        head = head[: head.rfind("%")] if "%" in head[-2:] else head  # never cut an escape in half
        encoded = f"{head}~{digest}"
    return encoded


def execution_folder(
    base: str, *, dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int
) -> str:
    """``{base}/{dag_id}/{run_id}/{task_id}[/{map_index}]/{try_number}`` with each part made safe."""
    parts = [dag_id, run_id, task_id]
    if map_index >= 0:
        parts.append(str(map_index))
    parts.append(str(try_number))
    return join(base, *(path_segment(p) for p in parts))
