"""Record types: dataclasses and pydantic models as flytekit's msgpack STRUCT literals.

flytekit (>= 1.14) declares a dataclass or a pydantic model as ``simple: STRUCT`` with three extras,
all mirrored here so that a task of ours and a flytekit task declaring the same class agree:

* ``metadata``: the class's JSON schema (for a dataclass, the object schema flytekit writes: typed
  ``properties``, ``required`` = the fields without a default, ``additionalProperties: false``;
  for a pydantic model, its own ``model_json_schema()``), against which values are checked both
  ways (:mod:`executors.data.literal_schema`);
* ``annotation``: ``serialization-format: msgpack``, so the value is a msgpack ``Binary``;
* ``structure.dataclass_type``: each field's own literal type.

A record *value* travels as its JSON-like form (:func:`plain`): fields by name, enums by value,
``datetime`` / ``date`` as ISO-8601 strings and ``timedelta`` as seconds, exactly the msgpack
flytekit writes. Turning that form back into instances is the runner's job
(:mod:`executors.runtime.annotated_values`), guided by :func:`record_fields`.

This module imports neither pydantic nor flytekit: a pydantic model is recognised by its methods.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from flyteidl.core import types_pb2

from executors.core.errors import LiteralConversionError
from executors.data import literal_msgpack

__all__ = [
    "RecordField",
    "is_record_instance",
    "is_record_type",
    "json_schema",
    "plain",
    "record_fields",
    "record_literal_type",
]

FieldType = Callable[..., types_pb2.LiteralType]
"""``field_type(annotation, *, path=...)``: the literal type of a field (``literal_type_from_python``,
passed in by the caller, which imports this module)."""

_SCHEMA_FIELD_TYPES = (
    "int, float, str, bool, datetime, date, timedelta, an Enum, list[T], dict[str, T], dict, "
    "Optional[T], a dataclass or a pydantic model"
)


@dataclasses.dataclass(frozen=True)
class RecordField:
    """One field of a record type: its name, its annotation, and whether it may be left out."""

    name: str
    annotation: Any
    has_default: bool
    default: Any = None
    """The default as a JSON-like value (a ``default_factory`` is called once), when there is one."""
    from_factory: bool = False
    """The default comes from a ``default_factory`` (the schema then states no default)."""


def is_pydantic_model(tp: Any) -> bool:
    """True for a pydantic (v2) model class, recognised without importing pydantic."""
    return (
        isinstance(tp, type)
        and callable(getattr(tp, "model_json_schema", None))
        and isinstance(getattr(tp, "model_fields", None), Mapping)
    )


def is_record_type(tp: Any) -> bool:
    """True for a dataclass or a pydantic model *class*."""
    return (isinstance(tp, type) and dataclasses.is_dataclass(tp)) or is_pydantic_model(tp)


def is_record_instance(value: Any) -> bool:
    """True for an *instance* of a dataclass or of a pydantic model."""
    return not isinstance(value, type) and is_record_type(type(value))


def record_fields(tp: type) -> list[RecordField]:
    """The fields of a dataclass or pydantic model, in declaration order, annotations resolved."""
    if is_pydantic_model(tp):
        found = []
        for name, info in typing.cast(Mapping[str, Any], tp.model_fields).items():  # type: ignore[attr-defined]
            required = bool(info.is_required())
            default = None
            if not required:
                default = info.default_factory() if info.default_factory is not None else info.default
            factory = not required and info.default_factory is not None
            found.append(RecordField(name, info.annotation, not required, plain(default), factory))
        return found
    hints = typing.get_type_hints(tp)
    result = []
    for item in dataclasses.fields(tp):
        if item.default is not dataclasses.MISSING:
            result.append(RecordField(item.name, hints[item.name], True, plain(item.default)))
        elif item.default_factory is not dataclasses.MISSING:
            default = plain(item.default_factory())
            result.append(RecordField(item.name, hints[item.name], True, default, from_factory=True))
        else:
            result.append(RecordField(item.name, hints[item.name], False))
    return result


def record_literal_type(tp: type, *, path: str, field_type: FieldType) -> types_pb2.LiteralType:
    """The literal type flytekit declares for the record class ``tp`` (see the module docstring).

    Raises :class:`LiteralConversionError` naming ``path.field`` for a field no Flyte type carries.
    """
    schema = tp.model_json_schema() if is_pydantic_model(tp) else json_schema(tp, path=path)  # type: ignore[attr-defined]
    literal_type = literal_msgpack.annotate_msgpack(types_pb2.LiteralType(simple=types_pb2.STRUCT))
    literal_type.metadata.update(schema)
    for item in record_fields(tp):
        field_literal_type = field_type(item.annotation, path=f"{path}.{item.name}")
        literal_type.structure.dataclass_type[item.name].CopyFrom(field_literal_type)
    return literal_type


def json_schema(tp: type, *, path: str) -> dict[str, Any]:
    """The JSON schema flytekit writes for the dataclass ``tp``: an object schema, nested dataclasses
    inline. A class that contains itself has no inline schema and is refused, naming the field."""
    return _object_schema(tp, path, frozenset())


def _object_schema(tp: type, path: str, active: frozenset[type]) -> dict[str, Any]:
    if tp in active:
        raise LiteralConversionError(
            path, "a dataclass that does not contain itself (its schema would be infinite)", repr(tp)
        )
    properties: dict[str, Any] = {}
    required: list[str] = []
    for item in record_fields(tp):
        schema = _field_schema(item.annotation, f"{path}.{item.name}", active | {tp})
        if not item.has_default:
            required.append(item.name)
        elif not item.from_factory:
            schema = {**schema, "default": item.default}
        properties[item.name] = schema
    return {
        "type": "object",
        "title": tp.__name__,
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


_SCALAR_SCHEMAS: dict[Any, dict[str, Any]] = {
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string"},
    bool: {"type": "boolean"},
    datetime.datetime: {"type": "string", "format": "date-time"},
    datetime.date: {"type": "string", "format": "date"},
    datetime.timedelta: {"type": "number", "format": "time-delta"},
    type(None): {"type": "null"},
    None: {"type": "null"},
    dict: {"type": "object"},
}


def _field_schema(annotation: Any, path: str, active: frozenset[type]) -> dict[str, Any]:
    try:
        scalar = _SCALAR_SCHEMAS.get(annotation)
    except TypeError:  # unhashable
        scalar = None
    if scalar is not None:
        return dict(scalar)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return {"enum": [member.value for member in annotation]}
    if is_pydantic_model(annotation):
        # Its own schema keeps its definitions at its root ($defs): only the shape is asserted here.
        return {"type": "object", "title": annotation.__name__}
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return _object_schema(annotation, path, active)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is list and len(args) == 1:
        return {"type": "array", "items": _field_schema(args[0], f"{path}[]", active)}
    if origin is dict and len(args) == 2 and args[0] is str:
        return {
            "type": "object",
            "additionalProperties": _field_schema(args[1], f"{path}[]", active),
            "propertyNames": {"type": "string"},
        }
    if origin is typing.Union or origin is types.UnionType:
        return {"anyOf": [_field_schema(arg, path, active) for arg in args]}
    raise LiteralConversionError(path, _SCHEMA_FIELD_TYPES, repr(annotation))


def plain(value: Any) -> Any:
    """The JSON-like form of ``value`` as flytekit's msgpack holds it: records as ``{field: value}``,
    enums by value, ``datetime`` / ``date`` as ISO-8601 strings, ``timedelta`` as seconds, tuples as
    lists; anything else as it is (the msgpack writer then refuses what is not JSON-like)."""
    if is_pydantic_model(type(value)):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {item.name: plain(getattr(value, item.name)) for item in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    return value
