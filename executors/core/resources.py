"""Resource requests/limits as a DAG author writes them, as Flyte's ``core.Resources``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flyteidl.core import tasks_pb2

# A Kubernetes-style quantity: 2, 0.5, 500m, 4Gi, 1e3 ...
_QUANTITY = re.compile(
    r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?(n|u|m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$"
)

_NAMES = {
    "cpu": tasks_pb2.Resources.CPU,
    "gpu": tasks_pb2.Resources.GPU,
    "memory": tasks_pb2.Resources.MEMORY,
    "mem": tasks_pb2.Resources.MEMORY,
    "storage": tasks_pb2.Resources.STORAGE,
    "ephemeral_storage": tasks_pb2.Resources.EPHEMERAL_STORAGE,
}


def resources_from_mapping(
    spec: Mapping[str, Any] | None, *, where: str = "resources"
) -> tasks_pb2.Resources | None:
    """``{"cpu": "2", "memory": "4Gi"}`` (requests) or ``{"requests": {...}, "limits": {...}}``.

    Values are Kubernetes-style quantities (``"500m"``, ``"2"``, ``"4Gi"``); numbers are accepted.
    An unknown resource name is a ValueError naming it and listing the known ones.
    """
    if not spec or not any(spec.values()):
        return None
    if set(spec) <= {"requests", "limits"}:
        requests, limits = spec.get("requests") or {}, spec.get("limits") or {}
    else:
        requests, limits = spec, {}
    resources = tasks_pb2.Resources()
    for kind, entries, target in (
        ("requests", requests, resources.requests),
        ("limits", limits, resources.limits),
    ):
        for name, value in entries.items():
            key = str(name).lower()
            if key not in _NAMES:
                known = ", ".join(sorted(_NAMES))
                raise ValueError(f"{where}.{kind}: unknown resource {name!r}; known: {known}")
            text = str(value).strip()
            if isinstance(value, bool) or not _QUANTITY.match(text):
                raise ValueError(
                    f"{where}.{kind}.{name}: {value!r} is not a quantity (examples: 2, 0.5, 500m, 4Gi)"
                )
            target.add(name=_NAMES[key], value=text)
    return resources


def resource_value(resources: tasks_pb2.Resources, name: int, *, limits: bool = False) -> str | None:
    """The value of one resource entry (requests by default), or ``None``."""
    for entry in resources.limits if limits else resources.requests:
        if entry.name == name:
            return str(entry.value)
    return None


def merged_resources(
    template: tasks_pb2.Resources, override: tasks_pb2.Resources | None
) -> tasks_pb2.Resources:
    """The template's resources with the override's entries replacing same-named ones."""
    if override is None:
        return template
    out = tasks_pb2.Resources()
    for field in ("requests", "limits"):
        base = {e.name: e.value for e in getattr(template, field)}
        base.update({e.name: e.value for e in getattr(override, field)})
        getattr(out, field).extend(
            tasks_pb2.Resources.ResourceEntry(name=k, value=v) for k, v in base.items()
        )
    return out
