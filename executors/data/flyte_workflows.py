"""Workflows serialized by flytekit: reading ``pyflyte package`` output and workflow closures.

``pyflyte package`` writes a tarball of protobuf files, one entity each, named
``<n>_<name>_<kind>.pb``: kind ``1`` a ``TaskSpec``, ``2`` a ``WorkflowSpec`` (the workflow and
the sub-workflows it uses), ``3`` a ``LaunchPlan`` (the workflow's default inputs). A
``WorkflowClosure`` file (``.pb`` or its JSON) holds one workflow and its tasks. :func:`load` reads
either into a :class:`WorkflowPackage`, which answers by name: ``workflow("pkg.wf")``,
``task(identifier)``, ``defaults("pkg.wf")``. Entities are matched by name only: a package made by
``pyflyte package`` has no project, domain or version.

Nothing here knows Airflow; :mod:`airflow_provider.flyte_workflows` builds a DAG from a package.
"""

from __future__ import annotations

import dataclasses
import re
import tarfile
from pathlib import Path
from typing import Any

from flyteidl.admin import launch_plan_pb2, task_pb2, workflow_pb2
from flyteidl.core import identifier_pb2, literals_pb2, tasks_pb2, workflow_closure_pb2
from flyteidl.core import workflow_pb2 as core_workflow_pb2
from google.protobuf import json_format
from google.protobuf.message import DecodeError

from executors.core.errors import TaskTemplateError

__all__ = ["WorkflowPackage", "load"]

_ENTITY = re.compile(r"^\d+_(?P<name>.+)_(?P<kind>[123])\.pb$")


@dataclasses.dataclass
class WorkflowPackage:
    """Workflows, their sub-workflows and tasks, and launch plan defaults, by name."""

    workflows: dict[str, core_workflow_pb2.WorkflowTemplate] = dataclasses.field(default_factory=dict)
    tasks: dict[str, tasks_pb2.TaskTemplate] = dataclasses.field(default_factory=dict)
    default_inputs: dict[str, dict[str, literals_pb2.Literal]] = dataclasses.field(default_factory=dict)
    top_level: list[str] = dataclasses.field(default_factory=list)
    """The workflows the package holds as entities of their own (not only as sub-workflows)."""
    source: str = ""

    def workflow(self, name: str | None) -> core_workflow_pb2.WorkflowTemplate:
        """The workflow called ``name`` (its full name, ``module.function``, or the part after the
        last dot); with no name, the package's only top-level workflow."""
        if name is None:
            if len(self.top_level) != 1:
                raise TaskTemplateError(
                    f"{self.source}: holds {len(self.top_level)} workflows "
                    f"({', '.join(self.top_level) or 'none'}): say which one (workflow=...)"
                )
            name = self.top_level[0]
        found = self.workflows.get(name) or next(
            (w for full, w in self.workflows.items() if full.rsplit(".", 1)[-1] == name), None
        )
        if found is None:
            known = ", ".join(sorted(self.workflows)) or "none"
            raise TaskTemplateError(f"{self.source}: no workflow {name!r} (it holds: {known})")
        return found

    def task(self, identifier: identifier_pb2.Identifier, *, where: str) -> tasks_pb2.TaskTemplate:
        found = self.tasks.get(identifier.name)
        if found is None:
            raise TaskTemplateError(f"{where}: task {identifier.name!r} is not in {self.source}")
        return found

    def sub_workflow(
        self, identifier: identifier_pb2.Identifier, *, where: str
    ) -> core_workflow_pb2.WorkflowTemplate:
        found = self.workflows.get(identifier.name)
        if found is None:
            raise TaskTemplateError(f"{where}: sub-workflow {identifier.name!r} is not in {self.source}")
        return found

    def defaults(self, name: str) -> dict[str, literals_pb2.Literal]:
        """The default input literals of workflow ``name`` (from its launch plan), by input."""
        return dict(self.default_inputs.get(name, {}))

    def _add_spec(self, spec: workflow_pb2.WorkflowSpec) -> None:
        self.workflows[spec.template.id.name] = spec.template
        self.top_level.append(spec.template.id.name)
        for sub in spec.sub_workflows:
            self.workflows.setdefault(sub.id.name, sub)


def _parse(message: Any, data: bytes, where: str) -> Any:
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise TaskTemplateError(f"{where}: not a {type(message).__name__} ({exc})") from None
    return message


def _add_entity(package: WorkflowPackage, file_name: str, data: bytes, where: str) -> None:
    match = _ENTITY.match(file_name)
    if match is None:
        return
    kind = match.group("kind")
    if kind == "1":
        task = _parse(task_pb2.TaskSpec(), data, where).template
        package.tasks[task.id.name] = task
    elif kind == "2":
        package._add_spec(_parse(workflow_pb2.WorkflowSpec(), data, where))
    else:
        plan = _parse(launch_plan_pb2.LaunchPlan(), data, where)
        defaults = {
            name: parameter.default
            for name, parameter in plan.spec.default_inputs.parameters.items()
            if parameter.HasField("default")
        }
        package.default_inputs.setdefault(plan.spec.workflow_id.name, defaults)


def _closure(path: Path, data: bytes) -> WorkflowPackage:
    closure = workflow_closure_pb2.WorkflowClosure()
    if path.suffix == ".json":
        try:
            json_format.Parse(data.decode(), closure)
        except (json_format.ParseError, UnicodeDecodeError) as exc:
            raise TaskTemplateError(f"{path}: not a WorkflowClosure in JSON ({exc})") from None
    else:
        _parse(closure, data, str(path))
    package = WorkflowPackage(source=str(path))
    spec = workflow_pb2.WorkflowSpec(template=closure.workflow)
    package._add_spec(spec)
    for task in closure.tasks:
        package.tasks[task.id.name] = task
    return package


def load(source: str | Path) -> WorkflowPackage:
    """Read ``pyflyte package`` output (the ``.tgz``, or the folder it was extracted into), a
    ``WorkflowSpec`` file, or a ``WorkflowClosure`` file (``.pb`` or ``.json``).

    Raises :class:`~executors.core.errors.TaskTemplateError` naming the file for anything else.
    """
    path = Path(source)
    package = WorkflowPackage(source=str(path))
    if path.is_dir():
        for entry in sorted(path.iterdir()):
            _add_entity(package, entry.name, entry.read_bytes(), str(entry))
    elif tarfile.is_tarfile(path):
        with tarfile.open(path) as archive:
            for member in archive.getmembers():
                if member.isfile():
                    handle = archive.extractfile(member)
                    data = handle.read() if handle is not None else b""
                    name = member.name.rsplit("/", 1)[-1]
                    _add_entity(package, name, data, f"{path}:{member.name}")
    elif path.is_file():
        data = path.read_bytes()
        if path.suffix == ".json" or _looks_like_closure(data):
            return _closure(path, data)
        package._add_spec(_parse(workflow_pb2.WorkflowSpec(), data, str(path)))
    else:
        raise TaskTemplateError(f"{path}: no such file or folder")
    if not package.workflows:
        raise TaskTemplateError(f"{path}: holds no workflow (expected pyflyte package output)")
    return package


def _looks_like_closure(data: bytes) -> bool:
    """A ``WorkflowClosure`` has the workflow in field 1 and tasks in field 2; a ``WorkflowSpec``
    has the template in field 1 and sub-workflows in field 2: tell them apart by field 2's shape."""
    closure = workflow_closure_pb2.WorkflowClosure()
    try:
        closure.ParseFromString(data)
    except DecodeError:
        return False
    return bool(closure.tasks) and all(t.HasField("id") and t.type for t in closure.tasks)
