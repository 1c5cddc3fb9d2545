"""Getting a ``TaskTemplate``: from an object, its JSON form, a serialized file, or a command.

A DAG author with a template serialized by Flyte's own tools points at the file (``.pb`` binary or
``.json``, at any fsspec URL); one with no template passes a command and Python types and gets one
built (:func:`build_task_template`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

from flyteidl.core import identifier_pb2, tasks_pb2
from google.protobuf import json_format
from google.protobuf.unknown_fields import UnknownFieldSet

from executors.core.cache import Cache
from executors.core.errors import DataNotFoundError, TaskTemplateError
from executors.data.literals import interface_from_python
from executors.data.storage import DataStore

TaskTemplateSource: TypeAlias = tasks_pb2.TaskTemplate | Mapping[str, Any] | str | os.PathLike[str]


def template_from_dict(data: Mapping[str, Any], *, where: str = "task_template") -> tasks_pb2.TaskTemplate:
    """Parse the protobuf JSON form (``MessageToDict``) of a TaskTemplate."""
    try:
        return json_format.ParseDict(dict(data), tasks_pb2.TaskTemplate())
    except json_format.ParseError as exc:
        raise TaskTemplateError(f"{where}: not a valid TaskTemplate in JSON form: {exc}") from exc


def template_to_dict(template: tasks_pb2.TaskTemplate) -> dict[str, Any]:
    """The JSON form shown in the Airflow UI and accepted back by :func:`template_from_dict`."""
    return json_format.MessageToDict(template, preserving_proto_field_name=True)  # type: ignore[no-any-return]


def parse_template_bytes(data: bytes, *, where: str) -> tasks_pb2.TaskTemplate:
    """Binary protobuf, or its JSON form when the bytes start like JSON."""
    if data.lstrip()[:1] == b"{":
        try:
            return json_format.Parse(data.decode("utf-8"), tasks_pb2.TaskTemplate())
        except (json_format.ParseError, UnicodeDecodeError) as exc:
            raise TaskTemplateError(f"{where}: not a valid TaskTemplate in JSON form: {exc}") from exc
    template = tasks_pb2.TaskTemplate()
    try:
        template.ParseFromString(data)
    except Exception as exc:
        raise TaskTemplateError(
            f"{where}: not a valid serialized TaskTemplate ({len(data)} bytes; truncated or another "
            f"message type?): {exc}"
        ) from exc
    # Bytes of another message (a flytekit TaskSpec, a LiteralMap, ...) often parse "successfully"
    # into garbage; every real template has a type, a readable name and no unknown fields.
    if (
        not data
        or not template.type
        or not template.id.name.isprintable()
        or len(UnknownFieldSet(template)) > 0
        or len(UnknownFieldSet(template.id)) > 0
    ):
        raise TaskTemplateError(
            f"{where}: does not hold a TaskTemplate ({len(data)} bytes; another message type, "
            "e.g. a TaskSpec? a TaskTemplate has at least a type)"
        )
    return template


async def load_task_template(source: TaskTemplateSource, store: DataStore) -> tasks_pb2.TaskTemplate:
    """Resolve any accepted form to a ``TaskTemplate``. Errors name the file and what is wrong."""
    if isinstance(source, tasks_pb2.TaskTemplate):
        return source
    if isinstance(source, Mapping):
        return template_from_dict(source)
    reference = os.fspath(source)
    try:
        data = await store.read_bytes(reference)
    except DataNotFoundError as exc:
        raise TaskTemplateError(f"task template file {reference} not found") from exc
    # Any other DataStoreError (the store is down) propagates as it is: retryable, not bad input.
    return parse_template_bytes(data, where=f"task template file {reference}")


def build_task_template(
    command: Sequence[str],
    *,
    name: str,
    inputs: Mapping[str, Any] | None = None,
    outputs: Mapping[str, Any] | None = None,
    environment: Mapping[str, str] | None = None,
    image: str = "",
    version: str = "",
    cache: Cache | None = None,
    retries: int = 0,
    secrets: Sequence[tuple[str, str] | Mapping[str, str]] = (),
) -> tasks_pb2.TaskTemplate:
    """Build a container TaskTemplate from a command and Python types.

    ``cache``: cached in the catalog with these settings (``None``: not cached).
    ``secrets`` are ``(group, key)`` pairs (or dicts with ``group``, ``key``, ``env_var``): Flyte's
    ``security_context.secrets``, delivered as ``_FSEC_<GROUP>_<KEY>`` environment variables.

    ``inputs``/``outputs`` map variable names to Python annotations (``int``, ``list[str]``,
    ``dict[str, float]``, ``Optional[datetime]``, ...). The command may use Flyte's placeholders
    (``{{.input}}``, ``{{.outputPrefix}}``, ``{{.inputs.x}}``, ...); it must write ``outputs.pb``
    under ``{{.outputPrefix}}`` when outputs are declared.
    """
    if isinstance(command, str) or not command or not all(isinstance(a, str) for a in command):
        raise TaskTemplateError(f"command must be a non-empty list of strings, got {command!r:.100}")
    template = tasks_pb2.TaskTemplate(type="container")
    template.id.CopyFrom(
        identifier_pb2.Identifier(resource_type=identifier_pb2.TASK, name=name, version=version)
    )
    template.interface.CopyFrom(interface_from_python(inputs or {}, outputs or {}))
    template.container.image = image
    template.container.command.extend(command)
    for key, value in (environment or {}).items():
        template.container.env.add(key=key, value=value)
    if cache is not None:
        cache.apply(template.metadata)
    template.metadata.retries.retries = retries
    template.metadata.runtime.type = 0  # OTHER: not a flytekit task
    for secret in secrets:
        spec = dict(secret) if isinstance(secret, Mapping) else {"group": secret[0], "key": secret[1]}
        unknown = set(spec) - {"group", "key", "group_version", "env_var"}
        if unknown or not spec.get("group"):
            raise TaskTemplateError(f"secret {secret!r}: give (group, key) or a dict of group, key, env_var")
        template.security_context.secrets.add(**spec)
    return template
