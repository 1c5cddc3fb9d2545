"""Who an Airflow task attempt is, in Flyte's terms, and where its data lives.

Mapping (documented in docs/flyte-compatibility.md): a DAG run is a workflow execution (project ``airflow``,
domain = DAG id, name = run id); a task (with its map index) is a node; Airflow's ``try_number``
1, 2, ... is Flyte's ``retry_attempt`` 0, 1, .... The task identifier is the template's own id when
it has one (templates serialized by Flyte keep their project/domain/name/version), else
``airflow/<dag_id>/<dag_id>.<task_id>``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from flyteidl.core import identifier_pb2, tasks_pb2

from executors import DataStore, OwnerReference
from executors.core.context import default_checkpoint_prefix
from executors.core.errors import DataStoreError
from executors.data.storage import join, path_segment

PROJECT = "airflow"


def node_id(task_id: str, map_index: int) -> str:
    """``task_id`` or ``task_id[3]`` for a mapped instance (brackets cannot occur in task ids)."""
    return task_id if map_index < 0 else f"{task_id}[{map_index}]"


def split_node_id(node: str) -> tuple[str, int]:
    """The inverse of :func:`node_id`: ``("task", 3)`` for ``task[3]``, ``("task", -1)`` for ``task``."""
    if node.endswith("]") and "[" in node:
        task_id, index = node[:-1].rsplit("[", 1)
        if index.isdigit():
            return task_id, int(index)
    return node, -1


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


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One try of one (mapped) Airflow task instance: who it is and where its executions live."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int

    @classmethod
    def of(cls, ti: Any) -> Attempt:
        map_index = getattr(ti, "map_index", -1)
        return cls(ti.dag_id, ti.run_id, ti.task_id, -1 if map_index is None else map_index, ti.try_number)

    @property
    def node(self) -> str:
        return node_id(self.task_id, self.map_index)

    @property
    def owner_id(self) -> str:
        """What an executor names to EnqueueOwner: the task instance, the same for every try."""
        return f"{self.dag_id}/{self.run_id}/{self.node}"

    def owns(self, ctx: Any) -> bool:
        """Whether the execution of ``ctx`` (a ``TaskContext``) is this try's."""
        ident = ctx.task_execution_id.id
        execution = ident.node_execution_id.execution_id
        return bool(
            execution.domain == self.dag_id
            and execution.name == self.run_id
            and ident.node_execution_id.node_id == self.node
            and ident.retry_attempt == max(0, self.try_number - 1)
        )

    def owner_reference(self) -> OwnerReference:
        return OwnerReference(kind="TaskInstance", name=f"{self.dag_id}.{self.node}")

    def identifier(self, template: tasks_pb2.TaskTemplate) -> identifier_pb2.TaskExecutionIdentifier:
        return task_execution_identifier(
            template, dag_id=self.dag_id, task_id=self.task_id, run_id=self.run_id,
            map_index=self.map_index, try_number=self.try_number,
        )  # fmt: skip

    def folder(self, data_dir: str, *, try_number: int | None = None) -> str:
        return execution_folder(
            data_dir, dag_id=self.dag_id, run_id=self.run_id, task_id=self.task_id,
            map_index=self.map_index, try_number=self.try_number if try_number is None else try_number,
        )  # fmt: skip

    async def previous_checkpoint(self, store: DataStore, data_dir: str) -> str:
        """Flyte's ``{{.prevCheckpointPrefix}}``: the checkpoint folder of the previous try, so a
        retried task (flytekit's ``current_context().checkpoint``) resumes where it left off; ``""``
        on the first try or when the previous try left no checkpoint folder."""
        if self.try_number <= 1:
            return ""
        checkpoint = default_checkpoint_prefix(self.folder(data_dir, try_number=self.try_number - 1))
        try:
            present = await store.exists(checkpoint)
        except DataStoreError:
            present = False  # a checkpoint is an optimisation: never fail a try over it
        return checkpoint if present else ""
