"""Checking STRUCT values against the JSON schema their literal type carries.

flytekit puts the JSON schema of a dataclass (mashumaro's) or of a pydantic model in
``LiteralType.metadata``. :func:`check_schema` checks a value against it, in both directions (a
value written for such a type, a value read from one), and names the offending field the way the
other conversion errors do: ``input 'p'.x: expected integer, got str 'one'`` (``.field`` for an
object's field, ``[3]`` for a list element, ``['a b']`` for a key that is not an identifier).

JSON schema semantics hold as they are: an ``int`` is a valid ``number``, and a whole ``float`` is a
valid ``integer`` (so a Struct written by old flytekit, whose numbers are all doubles, passes). The
draft is the one the schema's ``$schema`` names, else 2020-12; ``format`` is not asserted, and no
remote ``$ref`` is ever fetched (jsonschema's default registry would: ours retrieves nothing).
Metadata that is not a usable JSON schema (it is free-form in flyteidl) checks nothing.

``jsonschema`` is imported on the first type that has metadata, so tasks without one never pay for it.
A list of thousands of dataclasses would spend most of its conversion in jsonschema, so the schemas
flytekit writes (types, properties, required fields, items, ``anyOf``, string enums, local ``$ref``)
are also compiled into a plain predicate that accepts what jsonschema accepts; jsonschema runs only
for a value the predicate refuses (to name the violation) or a schema it does not cover.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from flyteidl.core import types_pb2

from executors.core.errors import LiteralConversionError
from executors.data.literal_json import given, python_from_struct

__all__ = ["check_schema", "field_path"]

Predicate = Callable[[Any], bool]

_CACHE_SIZE = 256
_validators: dict[bytes, Any] = {}
_lock = threading.Lock()


def field_path(path: str, parts: Iterable[Any]) -> str:
    """``path`` extended by JSON-schema path parts: ``.field``, ``[3]``, ``['not an identifier']``."""
    for part in parts:
        identifier = isinstance(part, str) and part.isidentifier()
        path = f"{path}.{part}" if identifier else f"{path}[{part!r}]"
    return path


def _is_array(checker: Any, instance: Any) -> bool:
    return isinstance(instance, (list, tuple))


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_TYPES: dict[str, Predicate] = {
    "integer": _is_integer,
    "number": _is_number,
    "string": lambda value: isinstance(value, str),
    "boolean": lambda value: isinstance(value, bool),
    "null": lambda value: value is None,
    "array": lambda value: isinstance(value, (list, tuple)),
    "object": lambda value: isinstance(value, dict),
}
# Keywords that assert nothing (``format`` is not asserted by default either).
_ANNOTATIONS = frozenset(
    {"title", "description", "default", "examples", "$comment", "format", "readOnly", "writeOnly"}
    | {"deprecated"}
)
_ROOT_ONLY = frozenset({"$schema", "$id", "$defs", "definitions"})


class _Uncompilable(Exception):
    """The schema uses something the predicate does not cover: jsonschema alone checks it."""


def _all(checks: list[Predicate]) -> Predicate:
    def check(value: Any) -> bool:
        return all(test(value) for test in checks)

    return check


def _type(argument: Any) -> Predicate:
    names = [argument] if isinstance(argument, str) else argument
    if not isinstance(names, list) or not names or any(name not in _TYPES for name in names):
        raise _Uncompilable
    tests = [_TYPES[name] for name in names]
    return lambda value: any(test(value) for test in tests)


def _properties(fields: dict[str, Predicate]) -> Predicate:
    def check(value: Any) -> bool:
        if not isinstance(value, dict):
            return True
        return all(test(value[name]) for name, test in fields.items() if name in value)

    return check


def _required(names: list[Any]) -> Predicate:
    return lambda value: not isinstance(value, dict) or all(name in value for name in names)


def _additional(known: frozenset[Any], extra: Predicate | None) -> Predicate:
    def check(value: Any) -> bool:
        if not isinstance(value, dict):
            return True
        return all(key in known or (extra is not None and extra(item)) for key, item in value.items())

    return check


def _items(each: Predicate) -> Predicate:
    return lambda value: not isinstance(value, (list, tuple)) or all(map(each, value))


def _any_of(options: list[Predicate]) -> Predicate:
    return lambda value: any(option(value) for option in options)


def _string_enum(allowed: frozenset[str]) -> Predicate:
    return lambda value: isinstance(value, str) and value in allowed


def _string_keys(value: Any) -> bool:
    return not isinstance(value, dict) or all(isinstance(key, str) for key in value)


def _ref(argument: Any, root: dict[str, Any], active: frozenset[str]) -> Predicate:
    reference = str(argument)
    prefix = next((p for p in ("#/$defs/", "#/definitions/") if reference.startswith(p)), None)
    if prefix is None or reference in active:  # remote, or recursive: left to jsonschema
        raise _Uncompilable
    definitions = root.get(prefix[2:-1])
    target = definitions.get(reference[len(prefix) :]) if isinstance(definitions, dict) else None
    if target is None:
        raise _Uncompilable
    return _compile(target, root, active | {reference})


def _compile(schema: Any, root: dict[str, Any], active: frozenset[str]) -> Predicate:
    """A predicate true exactly for the values the (Draft 2020-12) ``schema`` accepts; raises
    :class:`_Uncompilable` for a keyword it does not cover."""
    if schema is True:
        return lambda value: True
    if not isinstance(schema, dict):
        raise _Uncompilable
    checks: list[Predicate] = []
    declared = schema.get("properties", {})
    for keyword, argument in schema.items():
        if keyword in _ANNOTATIONS or (keyword in _ROOT_ONLY and schema is root):
            continue
        if keyword == "type":
            checks.append(_type(argument))
        elif keyword == "properties" and isinstance(argument, dict):
            checks.append(_properties({name: _compile(sub, root, active) for name, sub in argument.items()}))
        elif keyword == "required" and isinstance(argument, list):
            checks.append(_required(argument))
        elif keyword == "additionalProperties" and "patternProperties" not in schema:
            extra = None if argument is False else _compile(argument, root, active)
            checks.append(_additional(frozenset(declared), extra))
        elif keyword == "items":
            checks.append(_items(_compile(argument, root, active)))
        elif keyword == "anyOf" and isinstance(argument, list) and argument:
            checks.append(_any_of([_compile(sub, root, active) for sub in argument]))
        elif keyword == "enum" and isinstance(argument, list) and all(isinstance(a, str) for a in argument):
            # Only strings: jsonschema's equality (1 == 1.0 but 1 != True) is not ``in``.
            checks.append(_string_enum(frozenset(argument)))
        elif keyword == "propertyNames" and argument == {"type": "string"}:
            checks.append(_string_keys)
        elif keyword == "$ref":
            checks.append(_ref(argument, root, active))
        else:
            raise _Uncompilable
    return _all(checks)


def _predicate(schema: dict[str, Any]) -> Predicate | None:
    try:
        return _compile(schema, schema, frozenset())
    except (_Uncompilable, RecursionError):
        return None


def _validator(literal_type: types_pb2.LiteralType) -> Any:
    """``(validator, predicate or None)`` for the type's schema (cached by the schema's bytes), or
    ``None`` when the type carries no usable schema."""
    if not literal_type.HasField("metadata") or not literal_type.metadata.fields:
        return None
    key = literal_type.metadata.SerializeToString(deterministic=True)
    cached = _validators.get(key, _validators)
    if cached is not _validators:
        return cached
    import referencing
    from jsonschema import exceptions, validators  # type: ignore[import-untyped]

    schema = python_from_struct(literal_type.metadata, "metadata", finite=False)
    validator: Any = None
    try:
        cls = validators.validator_for(schema, default=validators.Draft202012Validator)
        cls.check_schema(schema)
        # A tuple is written as a list (both encoders do so), so it is a JSON array here too.
        checker = cls.TYPE_CHECKER.redefine("array", _is_array)
        # An empty registry that retrieves nothing: jsonschema's default one fetches remote $refs.
        full = validators.extend(cls, type_checker=checker)(schema, registry=referencing.Registry())
        fast = _predicate(schema) if cls is validators.Draft202012Validator else None
        validator = (full, fast)
    except (exceptions.SchemaError, exceptions.UnknownType, TypeError, ValueError, LookupError):
        validator = None
    with _lock:
        if len(_validators) >= _CACHE_SIZE:
            _validators.clear()
        _validators[key] = validator
    return validator


def _error(error: Any, path: str) -> LiteralConversionError:
    where = field_path(path, error.absolute_path)
    instance = error.instance
    kind = error.validator
    if kind == "type":
        expected = error.validator_value
        names = [expected] if isinstance(expected, str) else list(expected)
        return LiteralConversionError(where, " or ".join(str(name) for name in names), given(instance))
    if kind == "required" and isinstance(instance, dict):
        missing = next((name for name in error.validator_value if name not in instance), None)
        if missing is not None:
            return LiteralConversionError(
                field_path(where, [missing]), "a value (a required field)", "nothing"
            )
    if kind == "additionalProperties" and isinstance(instance, dict):
        declared = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        extra = next((name for name in instance if name not in declared), None)
        if extra is not None:
            fields = ", ".join(sorted(str(name) for name in declared)) or "none"
            return LiteralConversionError(
                field_path(where, [extra]),
                f"no such field (declared fields: {fields})",
                given(instance[extra]),
            )
    if kind == "enum":
        return LiteralConversionError(where, f"one of {error.validator_value!r:.100}", given(instance))
    if kind == "const":
        return LiteralConversionError(where, f"{error.validator_value!r:.100}", given(instance))
    return LiteralConversionError(
        where, f"a value matching the schema ({error.message:.100})", given(instance)
    )


def check_schema(value: Any, literal_type: types_pb2.LiteralType, path: str) -> None:
    """Check ``value`` against the JSON schema in ``literal_type.metadata`` (if it holds one).

    Raises :class:`LiteralConversionError` for the most relevant violation (jsonschema's
    ``best_match``), naming the field.
    """
    validator = _validator(literal_type)
    if validator is None:
        return
    full, fast = validator
    if fast is not None and fast(value):
        return
    from jsonschema import exceptions

    try:
        error = exceptions.best_match(full.iter_errors(value))
    except Exception:  # an unusable schema (an unresolvable $ref, ...): it checks nothing
        return
    if error is not None:
        raise _error(error, path)
