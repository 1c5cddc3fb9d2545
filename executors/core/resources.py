"""Resource requests/limits as a DAG author writes them, as Flyte's ``core.Resources``."""

from __future__ import annotations

import math
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


_PARSED_QUANTITY = re.compile(
    r"^\s*(?P<number>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*(?P<suffix>[A-Za-z]*)\s*$"
)
_SUFFIXES: dict[str, float] = {
    "": 1.0,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}


def parse_quantity(value: str | float | int, *, what: str = "quantity") -> float:
    """A Kubernetes resource quantity as a number: ``"500m"`` -> 0.5, ``"2"`` -> 2.0,
    ``"1Gi"`` -> 1073741824.0, ``"1.5G"`` -> 1.5e9, ``"1e3"`` -> 1000.0.

    Suffixes are case-sensitive, as in Kubernetes (``m`` is milli, ``M`` mega). A value that is
    not a quantity, negative, or not finite is a ValueError naming ``what``.
    """
    if isinstance(value, bool):
        raise ValueError(f"{what}: {value!r} is not a resource quantity")
    if isinstance(value, int | float):
        number = float(value)
    else:
        match = _PARSED_QUANTITY.match(str(value))
        if match is None or match.group("suffix") not in _SUFFIXES:
            known = ", ".join(s for s in _SUFFIXES if s)
            raise ValueError(
                f"{what}: {value!r} is not a resource quantity (a number with an optional suffix: {known})"
            )
        number = float(match.group("number")) * _SUFFIXES[match.group("suffix")]
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{what}: {value!r} must be a finite, non-negative quantity")
    return number
