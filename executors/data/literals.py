"""Conversion between plain Python values and Flyte literals, guided by declared literal types.

The executor core speaks Flyte's IDL (``inputs.pb`` / ``outputs.pb`` are ``LiteralMap`` messages) while
DAG authors speak Python. This module is the only place where the two meet:

* :func:`to_literal` / :func:`to_literal_map` turn Python values into literals, checking each value
  against the type its variable declares;
* :func:`to_python` / :func:`from_literal_map` turn literals back into plain Python values;
* :func:`literal_type_from_python` / :func:`interface_from_python` derive declared types from annotations;
* :func:`describe_type` renders a literal type for humans (error messages, UI).

Supported literal types: the simple types INTEGER, FLOAT, STRING, BOOLEAN, DATETIME, DURATION, NONE and
STRUCT, collections, string-keyed maps, blobs (carried as their URIs), structured datasets (carried as a
small typed reference ``{"uri", "format", "columns"}``, see :mod:`executors.data.literal_dataset`, so the
producer's format and column schema survive the trip through Python), unions and enums. Anything else
(BINARY, ERROR, schema, ...) is rejected with :class:`LiteralConversionError` rather than guessed at.

A STRUCT value is a JSON-like ``dict`` in one of two encodings, both read whatever the declared type
says: a protobuf ``Struct`` (numbers become floats), or flytekit's msgpack ``Binary`` (tag ``msgpack``,
ints stay ints; see :mod:`executors.data.literal_msgpack`), which is written when the declared type carries
flytekit's ``serialization-format: msgpack`` annotation, as flytekit declares dataclasses, pydantic
models and bare ``dict``. When the type's ``metadata`` holds a JSON schema (flytekit puts a
dataclass's there), values are checked against it both ways (:mod:`executors.data.literal_schema`).

Every conversion error names *where* the offending value sits (``input 'xs'[3]``, ``input 'm'['key']``,
``input 'p'.x`` for a schema field), what was expected and what was given, so the message alone lets a
DAG author fix the cause. Values protobuf could write but not read back are refused when written:
literals nested deeper than protobuf parses (:mod:`executors.data.literal_depth`) and strings UTF-8 cannot
encode (lone surrogates); NaN and infinity are refused where JSON is required (a ``Struct``, and
outputs read by :func:`from_literal_map`, which go to XCom).

Large homogeneous collections of primitives (the common case for fan-out inputs) take a fast path: the
element type is dispatched once per collection and elements are written straight into the repeated field,
with no per-element path formatting, type description or ``repr`` unless an element is rejected.
"""

from __future__ import annotations

import datetime
import enum
import math
import os
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from flyteidl.core import interface_pb2, literals_pb2, types_pb2

from executors.core.errors import InterfaceMismatchError, LiteralConversionError
from executors.data import literal_depth, literal_msgpack
from executors.data.dataframes import dataframe_kind, dataset_literal_type
from executors.data.files import Directory, File
from executors.data.literal_dataset import dataset_reference, fill_dataset
from executors.data.literal_depth import MAX_DEPTH, ROOT_LITERAL_DEPTH, NestingTooDeepError
from executors.data.literal_json import (
    UnencodableStringError,
    given,
    key_path,
    non_finite,
    python_from_struct,
    write_struct,
)
from executors.data.literal_schema import check_schema
from executors.data.record_types import is_record_instance, is_record_type, plain, record_literal_type

__all__ = [
    "describe_type",
    "from_literal_map",
    "interface_from_python",
    "literal_type_from_python",
    "to_literal",
    "to_literal_map",
    "to_python",
    "type_admits_none",
]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

_SIMPLE_NAMES: dict[int, str] = {
    types_pb2.NONE: "none",
    types_pb2.INTEGER: "integer",
    types_pb2.FLOAT: "float",
    types_pb2.STRING: "string",
    types_pb2.BOOLEAN: "boolean",
    types_pb2.DATETIME: "datetime",
    types_pb2.DURATION: "duration",
    types_pb2.BINARY: "binary",
    types_pb2.ERROR: "error",
    types_pb2.STRUCT: "struct",
}

# The Primitive oneof field that carries each simple type, and the exact Python types whose values the
# fast collection/map paths may hand to protobuf unchecked. Exact types (not isinstance) on purpose: bool
# is an int subclass and must never pass as an integer, and odd subclasses go through the checked path.
_PRIMITIVE_FIELDS: dict[int, str] = {
    types_pb2.INTEGER: "integer",
    types_pb2.FLOAT: "float_value",
    types_pb2.STRING: "string_value",
    types_pb2.BOOLEAN: "boolean",
    types_pb2.DATETIME: "datetime",
    types_pb2.DURATION: "duration",
}
# Primitive fields read as-is (no conversion), which inference of large collections inlines.
_PLAIN_FIELDS = frozenset({"integer", "float_value", "string_value", "boolean"})
_FAST_PYTHON_TYPES: dict[int, frozenset[type]] = {
    types_pb2.INTEGER: frozenset({int}),
    types_pb2.FLOAT: frozenset({float, int}),
    types_pb2.STRING: frozenset({str}),
    types_pb2.BOOLEAN: frozenset({bool}),
}

_SUPPORTED_ANNOTATIONS = (
    "a supported type (int, float, str, bool, datetime, date, timedelta, None, list[T], dict[str, T], "
    "dict, Optional[T], an Enum, a dataclass, a pydantic model, pandas.DataFrame, pyarrow.Table, File, "
    "Directory)"
)
_NO_TUPLE = (
    "a type Flyte can carry: Flyte has no tuple type (flytekit refuses tuple too); return a NamedTuple "
    "for several outputs, or use list[T] or a dataclass"
)


# --------------------------------------------------------------------------------------------------------
# Describing types and values
# --------------------------------------------------------------------------------------------------------


def describe_type(literal_type: types_pb2.LiteralType) -> str:
    """Render a literal type the way a Python author would read it.

    Examples: ``integer``, ``list[integer]``, ``dict[str, float]``, ``blob(format='csv', single)``,
    ``blob(multipart)``, ``structured_dataset(format='parquet')``, ``union[integer, none]``,
    ``enum['a', 'b']``. A type with nothing set renders as ``unset``.
    """
    kind = literal_type.WhichOneof("type")
    if kind == "simple":
        return _SIMPLE_NAMES.get(literal_type.simple, f"simple({literal_type.simple})")
    if kind == "collection_type":
        return f"list[{describe_type(literal_type.collection_type)}]"
    if kind == "map_value_type":
        return f"dict[str, {describe_type(literal_type.map_value_type)}]"
    if kind == "blob":
        blob = literal_type.blob
        dimensionality = "multipart" if blob.dimensionality == types_pb2.BlobType.MULTIPART else "single"
        if blob.format:
            return f"blob(format={blob.format!r}, {dimensionality})"
        return f"blob({dimensionality})"
    if kind == "structured_dataset_type":
        fmt = literal_type.structured_dataset_type.format
        return f"structured_dataset(format={fmt!r})" if fmt else "structured_dataset"
    if kind == "union_type":
        return "union[" + ", ".join(describe_type(v) for v in literal_type.union_type.variants) + "]"
    if kind == "enum_type":
        return "enum[" + ", ".join(repr(str(v)) for v in literal_type.enum_type.values) + "]"
    if kind == "schema":
        return "schema"
    return "unset"


def _mismatch(path: str, literal_type: types_pb2.LiteralType, value: Any) -> LiteralConversionError:
    return LiteralConversionError(path, describe_type(literal_type), given(value))


def _describe_literal(literal: literals_pb2.Literal) -> str:
    """Name the shape of a literal for error messages (``integer literal 3``, ``collection literal``...)."""
    kind = literal.WhichOneof("value")
    if kind == "scalar":
        scalar = literal.scalar
        scalar_kind = scalar.WhichOneof("value")
        if scalar_kind == "primitive":
            field = scalar.primitive.WhichOneof("value")
            if field is None:
                return "empty primitive literal"
            name = {"float_value": "float", "string_value": "string"}.get(field, field)
            value = getattr(scalar.primitive, field)
            shown = value.ToJsonString() if field in ("datetime", "duration") else repr(value)
            return f"{name} literal {shown:.60}"
        if scalar_kind == "none_type":
            return "none literal"
        if scalar_kind == "generic":
            return "struct literal"
        if scalar_kind == "binary":
            return f"binary literal (tag {scalar.binary.tag!r:.30}, {len(scalar.binary.value)} bytes)"
        if scalar_kind == "blob":
            return f"blob literal {scalar.blob.uri!r:.60}"
        if scalar_kind == "structured_dataset":
            return f"structured_dataset literal {scalar.structured_dataset.uri!r:.60}"
        if scalar_kind == "union":
            return f"union literal of {_describe_literal(scalar.union.value)}"
        if scalar_kind is None:
            return "empty scalar literal"
        return f"{scalar_kind} literal"
    if kind == "collection":
        return f"collection literal of {len(literal.collection.literals)} element(s)"
    if kind == "map":
        return f"map literal of {len(literal.map.literals)} entry(ies)"
    if kind is None:
        return "empty literal"
    return f"{kind} literal"


def type_admits_none(literal_type: types_pb2.LiteralType) -> bool:
    """True if ``None`` is a valid value: the NONE simple type, or a union with such a variant (any depth)."""
    kind = literal_type.WhichOneof("type")
    if kind == "simple":
        return bool(literal_type.simple == types_pb2.NONE)
    if kind == "union_type":
        return any(type_admits_none(v) for v in literal_type.union_type.variants)
    return False


# --------------------------------------------------------------------------------------------------------
# Python -> Literal
# --------------------------------------------------------------------------------------------------------

# Errors that say more than a union's "expected union[...]": a variant took the value but could not
# encode it. When no other variant takes the value, the first such error is raised.
_DEFINITIVE_ERRORS = (NestingTooDeepError, UnencodableStringError)

# How many sub-messages below its Literal each simple type's value nests (Scalar -> Primitive ->
# Timestamp for a datetime): what the depth check needs without building anything.
_SIMPLE_DEPTHS: dict[int, int] = {types_pb2.DATETIME: 3, types_pb2.DURATION: 3}


def to_literal(value: Any, literal_type: types_pb2.LiteralType, *, path: str) -> literals_pb2.Literal:
    """Convert ``value`` into a literal of ``literal_type``.

    ``path`` describes the value for error messages (e.g. ``input 'x'``); nested elements extend it
    (``input 'xs'[3]``, ``input 'm'['key']``, ``input 'p'.x``).

    Accepted values per declared type:

    * INTEGER: ``int`` in the int64 range (``bool`` is rejected although it subclasses ``int``);
    * FLOAT: ``float`` or ``int`` (not ``bool``); STRING: ``str``; BOOLEAN: ``bool``;
    * DATETIME: ``datetime.datetime`` (naive means UTC, aware is converted to UTC), ``datetime.date``
      (its midnight, as flytekit writes a date) or an ISO-8601 string, because Jinja-templated Airflow
      inputs arrive as strings; DURATION: ``datetime.timedelta``;
    * NONE: ``None`` only;
    * STRUCT: a JSON-like mapping (nested dict/list/tuple/str/int/float/bool/None), or a dataclass or
      pydantic instance, written as its JSON-like form (:func:`executors.data.record_types.plain`, as
      is a mapping for a type with a schema, so it may hold such instances). With flytekit's
      msgpack annotation it is written as a msgpack ``Binary`` exactly as flytekit writes it (ints stay
      ints; int keys, NaN and infinity allowed); without it, as a protobuf ``Struct``: str keys only,
      no NaN or infinity, and numbers stored as doubles, so integers come back as floats (and lose
      precision beyond 2**53). A JSON schema in the type's ``metadata`` is checked;
    * collection: ``list`` or ``tuple``; map: a mapping with ``str`` keys;
    * blob: a URI ``str``, an ``os.PathLike``, or a ``File`` / ``Directory`` (its ``uri``, never a
      download); the declared type is copied into the literal's metadata;
    * structured dataset: a URI (the metadata comes from the declared type), or a reference mapping
      ``{"uri": ..., "format": ..., "columns": [...]}`` as :func:`to_python` returns it (its format and
      columns, i.e. the producer's, win; see :func:`executors.data.literal_dataset.fill_dataset`);
    * union: ``None`` goes to a NONE variant if there is one, otherwise the first variant accepting the
      value wins (flytekit's rule for ``Optional``);
    * enum: a ``str`` among the declared values (an ``enum.Enum`` member is taken by its value, an
      ``int`` value by its decimal string, as an int-valued Enum is declared).

    Strings must be encodable as UTF-8, and the literal must not nest deeper than protobuf can parse
    back (:data:`executors.data.literal_depth.MAX_DEPTH`). Raises :class:`LiteralConversionError` on any
    mismatch or an unsupported declared type.
    """
    literal = literals_pb2.Literal()
    _fill(literal, value, literal_type, path, ROOT_LITERAL_DEPTH)
    return literal


def _fill(
    target: literals_pb2.Literal, value: Any, literal_type: types_pb2.LiteralType, path: str, depth: int
) -> None:
    """Write ``value`` into the empty literal ``target``, which sits ``depth`` messages below the root of
    the file that will hold it (see :mod:`executors.data.literal_depth`).

    Writing in place (rather than returning a fresh literal) lets nested collections and maps be built
    without copying every sub-message into its parent.
    """
    kind = literal_type.WhichOneof("type")
    if kind == "simple":
        _fill_simple(target, value, literal_type, path, depth)
    elif kind == "collection_type":
        _fill_collection(target, value, literal_type, path, depth)
    elif kind == "map_value_type":
        _fill_map(target, value, literal_type, path, depth)
    elif kind == "blob":
        literal_depth.check_depth(path, depth + 4)  # Scalar -> Blob -> BlobMetadata -> BlobType
        blob = target.scalar.blob
        uri = _uri(value, literal_type, path)
        try:
            blob.uri = uri
        except UnicodeEncodeError:
            raise UnencodableStringError(path, uri) from None
        blob.metadata.type.CopyFrom(literal_type.blob)
    elif kind == "structured_dataset_type":
        dataset = target.scalar.structured_dataset
        fill_dataset(
            dataset,
            value,
            literal_type.structured_dataset_type,
            path=path,
            expected=describe_type(literal_type),
        )
        # Scalar -> StructuredDataset -> metadata -> StructuredDatasetType, then its columns' types.
        _check_message_depth(path, depth + 4, dataset.metadata.structured_dataset_type)
    elif kind == "union_type":
        _fill_union(target, value, literal_type, path, depth)
    elif kind == "enum_type":
        member = value.value if isinstance(value, enum.Enum) else value
        if isinstance(member, int) and not isinstance(member, bool):
            member = str(member)  # an int-valued Enum: Flyte's enum values are strings
        if not isinstance(member, str) or member not in literal_type.enum_type.values:
            raise _mismatch(path, literal_type, value)
        literal_depth.check_depth(path, depth + 2)
        target.scalar.primitive.string_value = member
    else:
        raise LiteralConversionError(
            path,
            f"a supported literal type, but {describe_type(literal_type)} is not supported",
            given(value),
        )


def _check_message_depth(path: str, depth: int, message: Any) -> None:
    """Check that ``message``, placed at ``depth``, nests within the limit (exactly only when the cheap
    bound says it might not)."""
    if depth + literal_depth.type_depth_bound(message) > MAX_DEPTH:
        literal_depth.check_depth(path, depth + literal_depth.message_depth(message))


def _fill_simple(
    target: literals_pb2.Literal, value: Any, literal_type: types_pb2.LiteralType, path: str, depth: int
) -> None:
    simple = literal_type.simple
    if depth + 3 > MAX_DEPTH and simple != types_pb2.STRUCT:
        literal_depth.check_depth(path, depth + _SIMPLE_DEPTHS.get(simple, 2))
    if simple == types_pb2.INTEGER:
        if not isinstance(value, int) or isinstance(value, bool) or not _INT64_MIN <= value <= _INT64_MAX:
            raise _mismatch(path, literal_type, value)
        target.scalar.primitive.integer = value
    elif simple == types_pb2.FLOAT:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _mismatch(path, literal_type, value)
        try:
            target.scalar.primitive.float_value = float(value)
        except OverflowError:  # an int too large for a double
            raise _mismatch(path, literal_type, value) from None
    elif simple == types_pb2.STRING:
        # Checked here, not left to protobuf: upb silently accepts bytes for string fields.
        if not isinstance(value, str):
            raise _mismatch(path, literal_type, value)
        try:
            target.scalar.primitive.string_value = value
        except UnicodeEncodeError:
            raise UnencodableStringError(path, value) from None
    elif simple == types_pb2.BOOLEAN:
        if not isinstance(value, bool):
            raise _mismatch(path, literal_type, value)
        target.scalar.primitive.boolean = value
    elif simple == types_pb2.DATETIME:
        _fill_datetime(target, value, literal_type, path)
    elif simple == types_pb2.DURATION:
        if not isinstance(value, datetime.timedelta):
            raise _mismatch(path, literal_type, value)
        target.scalar.primitive.duration.FromTimedelta(value)
    elif simple == types_pb2.NONE:
        if value is not None:
            raise _mismatch(path, literal_type, value)
        target.scalar.none_type.SetInParent()
    elif simple == types_pb2.STRUCT:
        _fill_struct(target, value, literal_type, path, depth)
    else:
        raise LiteralConversionError(
            path,
            f"a supported literal type, but {describe_type(literal_type)} is not supported",
            given(value),
        )


def _fill_struct(
    target: literals_pb2.Literal, value: Any, literal_type: types_pb2.LiteralType, path: str, depth: int
) -> None:
    if is_record_instance(value) or (isinstance(value, Mapping) and literal_type.HasField("metadata")):
        value = plain(value)  # a dataclass / pydantic model, or a dict of a record type holding some
    if not isinstance(value, Mapping):
        raise _mismatch(path, literal_type, value)
    if literal_msgpack.is_msgpack_struct(literal_type):
        literal_depth.check_depth(path, depth + 2)  # Scalar -> Binary: msgpack does not nest messages
        data = literal_msgpack.pack(value, path)
        check_schema(dict(value), literal_type, path)
        binary = target.scalar.binary
        binary.value = data
        binary.tag = literal_msgpack.MSGPACK_TAG
    else:
        write_struct(target.scalar.generic, value, path, depth + 2)  # Scalar -> Struct
        check_schema(dict(value), literal_type, path)


def _fill_datetime(
    target: literals_pb2.Literal, value: Any, literal_type: types_pb2.LiteralType, path: str
) -> None:
    moment = value
    if isinstance(moment, str):
        try:
            moment = datetime.datetime.fromisoformat(moment)
        except ValueError:
            raise LiteralConversionError(
                path, f"{describe_type(literal_type)} (a datetime or an ISO-8601 string)", given(value)
            ) from None
    if isinstance(moment, datetime.date) and not isinstance(moment, datetime.datetime):
        moment = datetime.datetime.combine(moment, datetime.time.min)  # a date is its midnight, as flytekit
    if not isinstance(moment, datetime.datetime):
        raise _mismatch(path, literal_type, value)
    try:
        # FromDatetime goes through utctimetuple(): naive values are taken as UTC, aware ones converted.
        target.scalar.primitive.datetime.FromDatetime(moment)
    except (ValueError, OverflowError):  # outside the Timestamp range once shifted to UTC
        raise _mismatch(path, literal_type, value) from None


def _fast_write_failed(
    exc: Exception, path: str, element_type: types_pb2.LiteralType, item: Any
) -> LiteralConversionError:
    """The error for an element the fast paths could not write: a string UTF-8 cannot encode, or a
    number out of range (int64 for integers, a double for floats)."""
    if isinstance(exc, UnicodeEncodeError) and isinstance(item, str):
        return UnencodableStringError(path, item)
    return _mismatch(path, element_type, item)


def _fill_collection(
    target: literals_pb2.Literal, value: Any, literal_type: types_pb2.LiteralType, path: str, depth: int
) -> None:
    if not isinstance(value, (list, tuple)):
        raise _mismatch(path, literal_type, value)
    element_type = literal_type.collection_type
    literals = target.collection.literals
    literal_depth.check_depth(path, depth + 1)  # the LiteralCollection
    # Mark the collection as set even when empty: an empty list is still a collection literal.
    target.collection.SetInParent()
    fast_types = (
        _FAST_PYTHON_TYPES.get(element_type.simple) if element_type.WhichOneof("type") == "simple" else None
    )
    if fast_types is not None and set(map(type, value)) <= fast_types:
        if value:
            # Elements are Literals two below, their Primitive two below those.
            literal_depth.check_depth(f"{path}[0]", depth + 4)
        # Homogeneous primitives: one type check for the whole list (set(map(type, ...)) runs in C), then
        # a tight loop writing straight into the repeated field. add() + attribute assignment is several
        # times faster with upb than building Literal(...) objects and extending, which copies each one.
        add = literals.add
        simple = element_type.simple
        try:
            if simple == types_pb2.INTEGER:
                for item in value:
                    add().scalar.primitive.integer = item
            elif simple == types_pb2.FLOAT:
                for item in value:
                    add().scalar.primitive.float_value = item
            elif simple == types_pb2.STRING:
                for item in value:
                    add().scalar.primitive.string_value = item
            else:
                for item in value:
                    add().scalar.primitive.boolean = item
        except (ValueError, OverflowError) as exc:
            # An int outside int64 (or too large for a double), or a string UTF-8 cannot encode. The
            # failed element was already added, so the current length points right at it.
            index = len(literals) - 1
            raise _fast_write_failed(exc, f"{path}[{index}]", element_type, value[index]) from None
        return
    for index, item in enumerate(value):
        _fill(literals.add(), item, element_type, f"{path}[{index}]", depth + 2)


def _map_entry(entries: Any, key: str, path: str) -> literals_pb2.Literal:
    try:
        return entries[key]
    except UnicodeEncodeError:
        raise UnencodableStringError(key_path(path, key), key) from None


def _fill_map(
    target: literals_pb2.Literal, value: Any, literal_type: types_pb2.LiteralType, path: str, depth: int
) -> None:
    if not isinstance(value, Mapping):
        raise _mismatch(path, literal_type, value)
    value_type = literal_type.map_value_type
    entries = target.map.literals
    literal_depth.check_depth(path, depth + 1)  # the LiteralMap
    target.map.SetInParent()
    if set(map(type, value)) - {str}:
        for candidate in value:
            if not isinstance(candidate, str):
                raise LiteralConversionError(key_path(path, candidate), "a str key", given(candidate))
    fast_types = (
        _FAST_PYTHON_TYPES.get(value_type.simple) if value_type.WhichOneof("type") == "simple" else None
    )
    if fast_types is not None and set(map(type, value.values())) <= fast_types:
        if value:
            # LiteralMap -> map entry -> Literal -> Scalar -> Primitive.
            literal_depth.check_depth(key_path(path, next(iter(value))), depth + 5)
        simple = value_type.simple
        key: Any = None
        try:
            if simple == types_pb2.INTEGER:
                for key, item in value.items():
                    entries[key].scalar.primitive.integer = item
            elif simple == types_pb2.FLOAT:
                for key, item in value.items():
                    entries[key].scalar.primitive.float_value = item
            elif simple == types_pb2.STRING:
                for key, item in value.items():
                    entries[key].scalar.primitive.string_value = item
            else:
                for key, item in value.items():
                    entries[key].scalar.primitive.boolean = item
        except (ValueError, OverflowError) as exc:
            _map_entry(entries, key, path)  # raises if the key is the string UTF-8 cannot encode
            raise _fast_write_failed(exc, key_path(path, key), value_type, value[key]) from None
        return
    for key, item in value.items():
        _fill(_map_entry(entries, key, path), item, value_type, key_path(path, key), depth + 3)


def _is_none_type(literal_type: types_pb2.LiteralType) -> bool:
    return bool(literal_type.WhichOneof("type") == "simple" and literal_type.simple == types_pb2.NONE)


def _fill_union(
    target: literals_pb2.Literal, value: Any, literal_type: types_pb2.LiteralType, path: str, depth: int
) -> None:
    # Literal -> Scalar -> Union -> the value's Literal and the chosen variant's LiteralType.
    inner_depth = depth + 3
    variants = literal_type.union_type.variants
    union = target.scalar.union
    inner = union.value  # filled in place: no copy of a (possibly large) value
    candidates: typing.Iterable[types_pb2.LiteralType] = variants
    if value is None:
        # None goes to a NONE variant first (flytekit's rule for Optional), then to any taking it.
        candidates = sorted(variants, key=lambda variant: not _is_none_type(variant))
    definitive: LiteralConversionError | None = None
    for variant in candidates:
        try:
            _fill(inner, value, variant, path, inner_depth)
            _check_message_depth(path, inner_depth, variant)
        except _DEFINITIVE_ERRORS as exc:
            definitive = definitive or exc
        except LiteralConversionError:
            pass
        else:
            union.type.CopyFrom(variant)
            return
        inner.Clear()
    target.Clear()
    if definitive is not None:
        raise definitive
    raise _mismatch(path, literal_type, value)


def _uri(value: Any, literal_type: types_pb2.LiteralType, path: str) -> str:
    if isinstance(value, (File, Directory)):
        uri: Any = value.uri  # its location, never a download (which os.fspath would start)
    else:
        uri = os.fspath(value) if isinstance(value, os.PathLike) else value
    if not isinstance(uri, str) or not uri:
        raise _mismatch(path, literal_type, value)
    return uri


# --------------------------------------------------------------------------------------------------------
# Literal -> Python
# --------------------------------------------------------------------------------------------------------


def to_python(
    literal: literals_pb2.Literal,
    literal_type: types_pb2.LiteralType | None = None,
    *,
    path: str = "value",
    finite: bool = False,
) -> Any:
    """Convert a literal back into a plain Python value.

    integer -> ``int``, float -> ``float``, string -> ``str``, boolean -> ``bool``, datetime -> aware UTC
    ``datetime.datetime`` (nanoseconds are truncated to microseconds), duration -> ``datetime.timedelta``,
    none -> ``None``, struct -> ``dict`` (from a protobuf ``Struct`` numbers are ``float``; from a msgpack
    ``Binary`` ints stay ``int``), collection -> ``list``, map -> ``dict``, blob -> its URI ``str``,
    structured dataset -> its typed reference ``{"uri": str, "format": str, "columns": [{"name": str,
    "type": dict}]}`` (the producer's metadata, all keys always present; :func:`to_literal` takes it
    back), union -> the value of the literal it wraps, enum -> ``str``.

    With ``literal_type`` the literal must have the declared shape, otherwise
    :class:`LiteralConversionError` is raised naming ``path``; a struct is checked against the JSON
    schema of the type's ``metadata``, if any. With ``literal_type=None`` the literal's own structure
    decides the conversion. With ``finite``, NaN and infinity (anywhere in the value) raise: JSON, and
    so XCom, cannot hold them.
    """
    if literal_type is None:
        return _infer(literal, path, finite)
    return _read(literal, literal_type, path, finite)


def _literal_mismatch(
    path: str, literal_type: types_pb2.LiteralType, literal: literals_pb2.Literal
) -> LiteralConversionError:
    return LiteralConversionError(path, describe_type(literal_type), _describe_literal(literal))


def _read_primitive(primitive: Any, field: str, path: str, finite: bool) -> Any:
    if field == "datetime":
        return primitive.datetime.ToDatetime(tzinfo=datetime.UTC)
    if field == "duration":
        return primitive.duration.ToTimedelta()
    value = getattr(primitive, field)
    if finite and field == "float_value" and not math.isfinite(value):
        raise non_finite(path, value)
    return value


def _check_finite(values: typing.Iterable[float], paths: Callable[[int], str]) -> None:
    """Raise for the first NaN or infinity among ``values`` (one C-level pass when there is none)."""
    values = list(values)
    if not all(map(math.isfinite, values)):
        index = next(i for i, v in enumerate(values) if not math.isfinite(v))
        raise non_finite(paths(index), values[index])


def _read_struct(
    literal: literals_pb2.Literal, literal_type: types_pb2.LiteralType, path: str, finite: bool
) -> dict[str, Any]:
    """A STRUCT in either encoding: a protobuf ``Struct`` or a msgpack ``Binary``."""
    scalar_kind = literal.scalar.WhichOneof("value") if literal.WhichOneof("value") == "scalar" else None
    if scalar_kind == "generic":
        value: Any = python_from_struct(literal.scalar.generic, path, finite)
    elif scalar_kind == "binary" and literal.scalar.binary.tag == literal_msgpack.MSGPACK_TAG:
        value = literal_msgpack.unpack(literal.scalar.binary.value, path, finite=finite)
        if not isinstance(value, dict):
            raise LiteralConversionError(
                path, describe_type(literal_type), f"msgpack binary literal holding {given(value)}"
            )
    else:
        raise _literal_mismatch(path, literal_type, literal)
    check_schema(value, literal_type, path)
    return typing.cast(dict[str, Any], value)


def _read(literal: literals_pb2.Literal, literal_type: types_pb2.LiteralType, path: str, finite: bool) -> Any:
    kind = literal_type.WhichOneof("type")
    if kind == "simple":
        simple = literal_type.simple
        field = _PRIMITIVE_FIELDS.get(simple)
        if field is not None:
            primitive = literal.scalar.primitive
            # A set primitive oneof implies Literal.scalar.primitive is the literal's shape.
            if primitive.WhichOneof("value") != field:
                raise _literal_mismatch(path, literal_type, literal)
            return _read_primitive(primitive, field, path, finite)
        if simple == types_pb2.NONE:
            scalar_kind = (
                literal.scalar.WhichOneof("value") if literal.WhichOneof("value") == "scalar" else None
            )
            if scalar_kind != "none_type":
                raise _literal_mismatch(path, literal_type, literal)
            return None
        if simple == types_pb2.STRUCT:
            return _read_struct(literal, literal_type, path, finite)
        raise LiteralConversionError(
            path,
            f"a supported literal type, but {describe_type(literal_type)} is not supported",
            _describe_literal(literal),
        )
    if kind == "collection_type":
        return _read_collection(literal, literal_type, path, finite)
    if kind == "map_value_type":
        return _read_map(literal, literal_type, path, finite)
    if kind == "blob":
        if literal.WhichOneof("value") != "scalar" or literal.scalar.WhichOneof("value") != "blob":
            raise _literal_mismatch(path, literal_type, literal)
        return str(literal.scalar.blob.uri)
    if kind == "structured_dataset_type":
        if (
            literal.WhichOneof("value") != "scalar"
            or literal.scalar.WhichOneof("value") != "structured_dataset"
        ):
            raise _literal_mismatch(path, literal_type, literal)
        return dataset_reference(literal.scalar.structured_dataset)
    if kind == "union_type":
        return _read_union(literal, literal_type, path, finite)
    if kind == "enum_type":
        primitive = literal.scalar.primitive
        if (
            primitive.WhichOneof("value") != "string_value"
            or primitive.string_value not in literal_type.enum_type.values
        ):
            raise _literal_mismatch(path, literal_type, literal)
        return str(primitive.string_value)
    raise LiteralConversionError(
        path,
        f"a supported literal type, but {describe_type(literal_type)} is not supported",
        _describe_literal(literal),
    )


def _read_collection(
    literal: literals_pb2.Literal, literal_type: types_pb2.LiteralType, path: str, finite: bool
) -> list[Any]:
    if literal.WhichOneof("value") != "collection":
        raise _literal_mismatch(path, literal_type, literal)
    element_type = literal_type.collection_type
    literals = literal.collection.literals
    field = (
        _PRIMITIVE_FIELDS.get(element_type.simple) if element_type.WhichOneof("type") == "simple" else None
    )
    if field is not None and field not in ("datetime", "duration"):
        # Tight loop for primitives: one oneof check per element, the path is only built on failure.
        out: list[Any] = []
        append = out.append
        for element in literals:
            primitive = element.scalar.primitive
            if primitive.WhichOneof("value") != field:
                raise _literal_mismatch(f"{path}[{len(out)}]", element_type, element)
            append(getattr(primitive, field))
        if finite and field == "float_value":
            _check_finite(out, lambda index: f"{path}[{index}]")
        return out
    return [
        _read(element, element_type, f"{path}[{index}]", finite) for index, element in enumerate(literals)
    ]


def _read_map(
    literal: literals_pb2.Literal, literal_type: types_pb2.LiteralType, path: str, finite: bool
) -> dict[str, Any]:
    if literal.WhichOneof("value") != "map":
        raise _literal_mismatch(path, literal_type, literal)
    value_type = literal_type.map_value_type
    entries = literal.map.literals
    field = _PRIMITIVE_FIELDS.get(value_type.simple) if value_type.WhichOneof("type") == "simple" else None
    if field is not None and field not in ("datetime", "duration"):
        out: dict[str, Any] = {}
        for key, element in entries.items():
            primitive = element.scalar.primitive
            if primitive.WhichOneof("value") != field:
                raise _literal_mismatch(key_path(path, key), value_type, element)
            out[key] = getattr(primitive, field)
        if finite and field == "float_value":
            keys = list(out)
            _check_finite(out.values(), lambda index: key_path(path, keys[index]))
        return out
    return {key: _read(element, value_type, key_path(path, key), finite) for key, element in entries.items()}


def _shape(literal_type: types_pb2.LiteralType) -> types_pb2.LiteralType:
    """The type without its tag, metadata and annotation: what decides how a value is converted."""
    stripped = types_pb2.LiteralType()
    stripped.CopyFrom(literal_type)
    for field in ("structure", "metadata", "annotation"):
        stripped.ClearField(field)
    return stripped


def _read_union(
    literal: literals_pb2.Literal, literal_type: types_pb2.LiteralType, path: str, finite: bool
) -> Any:
    variants = literal_type.union_type.variants
    is_union_literal = (
        literal.WhichOneof("value") == "scalar" and literal.scalar.WhichOneof("value") == "union"
    )
    if is_union_literal and literal.scalar.union.HasField("type"):
        stored = literal.scalar.union.type
        inner = literal.scalar.union.value
        # Match the stored variant exactly first, then by shape: literals written by flytekit carry its
        # own structure tags ("int"), which differ from ours ("integer") for the very same type.
        for variant in variants:
            if variant == stored:
                return _read(inner, variant, path, finite)
        stored_shape = _shape(stored)
        for variant in variants:
            if _shape(variant) == stored_shape:
                return _read(inner, variant, path, finite)
        raise LiteralConversionError(
            path, describe_type(literal_type), f"union literal holding {describe_type(stored)}"
        )
    # A bare literal (or a union literal without its type): whichever variant reads it first. Some
    # producers write an Optional's value unwrapped.
    candidate = literal.scalar.union.value if is_union_literal else literal
    for variant in variants:
        try:
            return _read(candidate, variant, path, finite)
        except LiteralConversionError:
            continue
    raise _literal_mismatch(path, literal_type, literal)


def _infer(literal: literals_pb2.Literal, path: str, finite: bool) -> Any:
    kind = literal.WhichOneof("value")
    if kind == "scalar":
        scalar = literal.scalar
        scalar_kind = scalar.WhichOneof("value")
        if scalar_kind == "primitive":
            field = scalar.primitive.WhichOneof("value")
            if field is not None:
                return _read_primitive(scalar.primitive, field, path, finite)
        elif scalar_kind == "none_type":
            return None
        elif scalar_kind == "generic":
            return python_from_struct(scalar.generic, path, finite)
        elif scalar_kind == "binary" and scalar.binary.tag == literal_msgpack.MSGPACK_TAG:
            return literal_msgpack.unpack(scalar.binary.value, path, finite=finite)
        elif scalar_kind == "blob":
            return str(scalar.blob.uri)
        elif scalar_kind == "structured_dataset":
            return dataset_reference(scalar.structured_dataset)
        elif scalar_kind == "union":
            if scalar.union.HasField("type"):
                return _read(scalar.union.value, scalar.union.type, path, finite)
            return _infer(scalar.union.value, path, finite)
    elif kind == "collection":
        out: list[Any] = []
        append = out.append
        for element in literal.collection.literals:
            primitive = element.scalar.primitive
            field = primitive.WhichOneof("value")
            # Plain primitives inline; anything else recurses, and only then is the element's path built.
            if field in _PLAIN_FIELDS:
                item = getattr(primitive, field)
                if finite and field == "float_value" and not math.isfinite(item):
                    raise non_finite(f"{path}[{len(out)}]", item)
                append(item)
            else:
                append(_infer(element, f"{path}[{len(out)}]", finite))
        return out
    elif kind == "map":
        result: dict[str, Any] = {}
        for key, element in literal.map.literals.items():
            primitive = element.scalar.primitive
            field = primitive.WhichOneof("value")
            if field in _PLAIN_FIELDS:
                item = getattr(primitive, field)
                if finite and field == "float_value" and not math.isfinite(item):
                    raise non_finite(key_path(path, key), item)
                result[key] = item
            else:
                result[key] = _infer(element, key_path(path, key), finite)
        return result
    raise LiteralConversionError(
        path,
        "a supported literal (primitive, none, struct, msgpack binary, blob, structured_dataset, union, "
        "collection, map)",
        _describe_literal(literal),
    )


# --------------------------------------------------------------------------------------------------------
# Literal maps against interfaces
# --------------------------------------------------------------------------------------------------------


def _names(names: typing.Iterable[Any]) -> str:
    """``'a', 'b'`` in sorted order (protobuf maps have no meaningful order), or ``(none)``."""
    return ", ".join(sorted(repr(name) for name in names)) or "(none)"


def _plural(kind: str, names: typing.Sized) -> str:
    return kind if len(names) == 1 else f"{kind}s"


def to_literal_map(
    values: Mapping[str, Any], variables: interface_pb2.VariableMap, *, kind: str = "input"
) -> literals_pb2.LiteralMap:
    """Convert ``values`` into a literal map matching the declared ``variables``.

    Every declared variable must be given, except one whose type admits ``None`` (see
    :func:`type_admits_none`): missing means ``None`` for it. A missing required variable or an
    undeclared key raises :class:`InterfaceMismatchError` naming the offenders and the declared names.
    Values are converted with :func:`to_literal`, the path being ``f"{kind} '{name}'"``.
    """
    declared = variables.variables
    unknown = [name for name in values if not isinstance(name, str) or name not in declared]
    if unknown:
        raise InterfaceMismatchError(
            f"unknown {_plural(kind, unknown)} {_names(unknown)}; declared {kind}s: {_names(declared)}"
        )
    missing = [
        name
        for name, variable in declared.items()
        if name not in values and not type_admits_none(variable.type)
    ]
    if missing:
        raise InterfaceMismatchError(
            f"missing {_plural(kind, missing)} {_names(missing)}; declared {kind}s: {_names(declared)}"
        )
    literal_map = literals_pb2.LiteralMap()
    for name, variable in declared.items():
        _fill(
            literal_map.literals[name],
            values.get(name),
            variable.type,
            f"{kind} '{name}'",
            ROOT_LITERAL_DEPTH,
        )
    return literal_map


def from_literal_map(
    literal_map: literals_pb2.LiteralMap,
    variables: interface_pb2.VariableMap | None = None,
    *,
    kind: str = "output",
    finite: bool | None = None,
) -> dict[str, Any]:
    """Convert a literal map into plain Python values (see :func:`to_python`).

    With ``variables`` every declared variable must be present (else :class:`InterfaceMismatchError`
    naming it) and is converted against its declared type; literals that are not declared are still
    returned, converted by inference. Without ``variables`` everything is inferred.

    ``finite`` (default: ``kind == "output"``) refuses NaN and infinity anywhere in the values, naming
    where (``output 'o0'``, ``output 'xs'[2]``): outputs go to XCom, which is JSON. Inputs may carry
    them, as protobuf does.
    """
    if finite is None:
        finite = kind == "output"
    literals = literal_map.literals
    result: dict[str, Any] = {}
    if variables is not None:
        declared = variables.variables
        missing = [name for name in declared if name not in literals]
        if missing:
            verb = "is" if len(missing) == 1 else "are"
            raise InterfaceMismatchError(
                f"{_plural(kind, missing)} {_names(missing)} {verb} missing from the literal map "
                f"(it holds: {_names(literals)}; declared {kind}s: {_names(declared)})"
            )
        for name, variable in declared.items():
            result[name] = _read(literals[name], variable.type, f"{kind} '{name}'", finite)
    for name, literal in literals.items():
        if name not in result:
            result[name] = _infer(literal, f"{kind} '{name}'", finite)
    return result


# --------------------------------------------------------------------------------------------------------
# Python annotations -> literal types
# --------------------------------------------------------------------------------------------------------


def _simple(simple: int) -> types_pb2.LiteralType:
    return types_pb2.LiteralType(simple=simple)


def _msgpack_struct() -> types_pb2.LiteralType:
    return literal_msgpack.annotate_msgpack(_simple(types_pb2.STRUCT))


_ANNOTATION_TYPES: dict[Any, Callable[[], types_pb2.LiteralType]] = {
    int: lambda: _simple(types_pb2.INTEGER),
    float: lambda: _simple(types_pb2.FLOAT),
    str: lambda: _simple(types_pb2.STRING),
    bool: lambda: _simple(types_pb2.BOOLEAN),
    datetime.datetime: lambda: _simple(types_pb2.DATETIME),
    datetime.date: lambda: _simple(types_pb2.DATETIME),  # flytekit's mapping: midnight UTC of the day
    datetime.timedelta: lambda: _simple(types_pb2.DURATION),
    None: lambda: _simple(types_pb2.NONE),
    type(None): lambda: _simple(types_pb2.NONE),
    # A bare dict has no value type to declare: a JSON-like STRUCT, as msgpack the way flytekit declares
    # and writes it (so ints stay ints).
    dict: lambda: _msgpack_struct(),
}


def _enum_values(tp: type[enum.Enum], path: str) -> list[str]:
    values = [member.value for member in tp]
    if values and all(isinstance(value, str) for value in values):
        return values
    if values and all(isinstance(value, int) and not isinstance(value, bool) for value in values):
        return [str(value) for value in values]
    raise LiteralConversionError(path, "an Enum whose values are all str or all int", repr(tp))


def _blob_type(tp: Any) -> types_pb2.LiteralType | None:
    """``File`` / ``Directory`` (``Annotated[File, "csv"]`` names a format) as flytekit declares
    ``FlyteFile`` / ``FlyteDirectory``: a single-part or a multipart blob."""
    base, metadata = tp, tuple[Any, ...]()
    if typing.get_origin(tp) is typing.Annotated:
        base, metadata = typing.get_args(tp)[0], tuple(getattr(tp, "__metadata__", ()))
    if base is not File and base is not Directory:
        return None
    blob = types_pb2.BlobType(format=next((m for m in metadata if isinstance(m, str)), ""))
    if base is Directory:
        blob.dimensionality = types_pb2.BlobType.MULTIPART
    return types_pb2.LiteralType(blob=blob)


def literal_type_from_python(tp: Any, *, path: str = "type") -> types_pb2.LiteralType:
    """Derive the literal type of a Python annotation.

    Supported: ``int``, ``float``, ``str``, ``bool``, ``datetime.datetime``, ``datetime.date``
    (DATETIME, as flytekit maps it: the day's midnight), ``datetime.timedelta``, ``None`` /
    ``type(None)``, ``list[T]``, ``dict[str, T]``, bare ``dict`` (STRUCT with flytekit's msgpack
    annotation, as flytekit declares it), ``Optional[T]`` / ``T | None`` / ``Union[...]`` (a union
    whose variants carry ``structure.tag`` = their :func:`describe_type`, as flytekit tags union
    variants), ``enum.Enum`` subclasses whose values are all ``str``, or all ``int`` (an enum type;
    Flyte's enum values are strings, so an int value ``1`` is declared and carried as ``"1"``), and
    dataclasses and pydantic models (flytekit's msgpack STRUCT with the class's JSON schema, see
    :mod:`executors.data.record_types`), and ``pandas.DataFrame`` / ``pyarrow.Table`` (a structured
    dataset as flytekit declares it; ``Annotated[pandas.DataFrame, {"a": int}]`` declares columns, see
    :mod:`executors.data.dataframes`), and :class:`~executors.data.files.File` /
    :class:`~executors.data.files.Directory` (a single-part / multipart blob, as flytekit declares
    ``FlyteFile`` / ``FlyteDirectory``). ``tuple`` is refused as flytekit refuses it (Flyte has no
    tuple type). Anything else raises :class:`LiteralConversionError` naming ``path``.
    """
    try:
        factory = _ANNOTATION_TYPES.get(tp)
    except TypeError:  # unhashable "annotation" (e.g. a list instance)
        factory = None
    if factory is not None:
        return factory()
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return types_pb2.LiteralType(enum_type=types_pb2.EnumType(values=_enum_values(tp, path)))
    if is_record_type(tp):
        return record_literal_type(tp, path=path, field_type=literal_type_from_python)
    if dataframe_kind(tp) is not None:
        return dataset_literal_type(tp, path=path, column_type=literal_type_from_python)
    blob = _blob_type(tp)
    if blob is not None:
        return blob
    if typing.get_origin(tp) is typing.Annotated:  # metadata means something only for DataFrames
        return literal_type_from_python(typing.get_args(tp)[0], path=path)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is tuple or origin is tuple:
        raise LiteralConversionError(path, _NO_TUPLE, repr(tp))
    if origin is list and len(args) == 1:
        return types_pb2.LiteralType(
            collection_type=literal_type_from_python(args[0], path=f"{path} list element")
        )
    if origin is dict:
        if not args:  # typing.Dict without parameters
            return _msgpack_struct()
        key_type, value_type = args
        if key_type is not str:
            raise LiteralConversionError(f"{path} dict key", "str", repr(key_type))
        return types_pb2.LiteralType(
            map_value_type=literal_type_from_python(value_type, path=f"{path} dict value")
        )
    if origin is typing.Union or origin is types.UnionType:
        union = types_pb2.LiteralType()
        for arg in args:
            variant = union.union_type.variants.add()
            variant.CopyFrom(literal_type_from_python(arg, path=f"{path} union variant"))
            variant.structure.tag = describe_type(variant)
        return union
    raise LiteralConversionError(path, _SUPPORTED_ANNOTATIONS, repr(tp))


def interface_from_python(
    inputs: Mapping[str, Any], outputs: Mapping[str, Any]
) -> interface_pb2.TypedInterface:
    """Build a typed interface from ``{name: annotation}`` mappings (see :func:`literal_type_from_python`).

    Each variable's description is its name. Errors name the variable (``input 'x'``, ``output 'y'``).
    """
    interface = interface_pb2.TypedInterface()
    for kind, annotated, variable_map in (
        ("input", inputs, interface.inputs),
        ("output", outputs, interface.outputs),
    ):
        variable_map.SetInParent()
        for name, annotation in annotated.items():
            variable = variable_map.variables[name]
            variable.type.CopyFrom(literal_type_from_python(annotation, path=f"{kind} '{name}'"))
            variable.description = name
    return interface
