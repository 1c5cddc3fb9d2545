"""STRUCT values as msgpack: the ``Binary`` literals flytekit (1.14 and later) writes.

flytekit declares a dataclass, a pydantic model or a bare ``dict`` as ``simple: STRUCT`` with the
annotation ``{"cache-key-metadata": {"serialization-format": "msgpack"}}`` (and, for the first two,
the JSON schema in ``LiteralType.metadata``), and writes the value as
``Literal(scalar=Scalar(binary=Binary(value=<msgpack bytes>, tag="msgpack")))``. Unlike a protobuf
``Struct`` this keeps integers integers.

:func:`pack` writes the bytes as flytekit does (``msgpack.packb`` with its defaults, so a flytekit
consumer reads them); :func:`unpack` reads them safely: strings decoded as UTF-8 (``raw=False``),
int keys allowed (``strict_map_key=False``, as flytekit reads a ``Dict[int, T]`` field), extension
types refused (no hook runs any code), and the result checked to be JSON-like: no ``bytes``, no
timestamps, no nesting beyond :data:`MAX_NESTING` levels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgpack  # type: ignore[import-untyped]
from flyteidl.core import types_pb2

from executors.core.errors import LiteralConversionError
from executors.data.literal_json import JsonRules, check_json_value, given, raise_unencodable

__all__ = ["MAX_NESTING", "MSGPACK_TAG", "annotate_msgpack", "is_msgpack_struct", "pack", "unpack"]

MSGPACK_TAG = "msgpack"
"""``Binary.tag`` of a msgpack literal (flytekit's ``MESSAGEPACK``)."""

CACHE_KEY_METADATA = "cache-key-metadata"
SERIALIZATION_FORMAT = "serialization-format"

MAX_NESTING = 100
"""The deepest nesting (dict and list levels) a msgpack value may have (msgpack itself refuses to
write beyond 511 and to read beyond 1024 levels; Python's recursion limit comes soon after)."""

_INT64_MIN = -(2**63)
_UINT64_MAX = 2**64 - 1


def _rules(*, finite: bool) -> JsonRules:
    return JsonRules(
        int_keys=True,
        finite=finite,
        int_min=_INT64_MIN,
        int_max=_UINT64_MAX,
        object_step=1,
        list_step=1,
        max_depth=MAX_NESTING,
        depth_unit="levels",
    )


def is_msgpack_struct(literal_type: types_pb2.LiteralType) -> bool:
    """True if ``literal_type`` asks for msgpack (flytekit's serialization-format annotation)."""
    if not literal_type.HasField("annotation"):
        return False
    metadata = literal_type.annotation.annotations.fields.get(CACHE_KEY_METADATA)
    if metadata is None or metadata.WhichOneof("kind") != "struct_value":
        return False
    serialization = metadata.struct_value.fields.get(SERIALIZATION_FORMAT)
    return serialization is not None and serialization.string_value == MSGPACK_TAG


def annotate_msgpack(literal_type: types_pb2.LiteralType) -> types_pb2.LiteralType:
    """Add flytekit's msgpack annotation to ``literal_type`` (in place) and return it."""
    literal_type.annotation.annotations.update({CACHE_KEY_METADATA: {SERIALIZATION_FORMAT: MSGPACK_TAG}})
    return literal_type


def pack(value: Mapping[Any, Any], path: str) -> bytes:
    """The msgpack bytes of the JSON-like ``value`` (NaN and infinity allowed: msgpack holds them).

    Raises :class:`LiteralConversionError` naming the offending element.
    """
    top = dict(value)
    check_json_value(top, path, _rules(finite=False), 0)
    try:
        return bytes(msgpack.packb(top))
    except UnicodeEncodeError as error:
        raise_unencodable(top, path, error)


def _refuse_extension(code: int, data: bytes) -> Any:
    raise ValueError(f"extension type {code} ({len(data)} bytes) is not a JSON-like value")


def unpack(data: bytes, path: str, *, finite: bool) -> Any:
    """The JSON-like value held by msgpack ``data``. With ``finite``, NaN and infinity raise.

    Raises :class:`LiteralConversionError` naming ``path`` (or the offending element) when the bytes
    are not msgpack, hold trailing bytes, or hold anything not JSON-like.
    """
    try:
        value = msgpack.unpackb(
            data, raw=False, strict_map_key=False, use_list=True, ext_hook=_refuse_extension
        )
    except Exception as exc:  # msgpack raises ExtraData, FormatError, StackError, ValueError, TypeError...
        raise LiteralConversionError(
            path,
            "msgpack bytes holding a JSON-like value",
            f"undecodable bytes ({type(exc).__name__}: {exc!s:.80}; {len(data)} bytes {given(data[:20])})",
        ) from None
    check_json_value(value, path, _rules(finite=finite), 0)
    return value
