"""JSON-like Python values: describing them, checking them, and the protobuf ``Struct`` they become.

A STRUCT variable carries a JSON-like value: a ``dict`` whose values are dicts, lists (or tuples),
``str``, ``int``, ``float``, ``bool`` or ``None``. Two encodings carry it (see
:mod:`executors.data.literal_msgpack` for the second): a protobuf ``Struct`` (flytekit before 1.14, and
ours without the msgpack annotation) and a msgpack ``Binary``. This module checks a value against
the rules of either, naming the offending element (``input 's'['a'][1]``), and converts between
Python and ``Struct``:

* a ``Struct`` has str keys only and no NaN or infinity (it is JSON: flytekit reads it through
  ``MessageToJson``, which refuses them), holds numbers as doubles (so integers come back as floats),
  and nests three protobuf messages per object level and two per list level, within protobuf's depth
  limit (:mod:`executors.data.literal_depth`);
* msgpack also takes int keys (flytekit writes a ``Dict[int, T]`` field so), NaN and infinity, and
  integers in [-2**63, 2**64), which it keeps as integers.

Strings must be encodable as UTF-8 (no lone surrogates such as ``'\\ud800'``): an encoding error
names the path of the string.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple, NoReturn

from google.protobuf import struct_pb2

from executors.core.errors import LiteralConversionError
from executors.data import literal_depth
from executors.data.literal_depth import NestingTooDeepError

__all__ = [
    "JSON_LIKE",
    "JsonRules",
    "UnencodableStringError",
    "check_json_value",
    "given",
    "key_path",
    "non_finite",
    "python_from_struct",
    "raise_unencodable",
    "struct_rules",
    "write_struct",
]

JSON_LIKE = "a JSON-like value (dict, list, str, int, float, bool, None)"

# The largest int a double holds without overflowing (float(2**1024) raises OverflowError).
_FLOAT_INT_MAX = 2**1024 - 2**970


class UnencodableStringError(LiteralConversionError):
    """A string UTF-8 cannot encode (a lone surrogate): protobuf and msgpack refuse it."""

    def __init__(self, variable: str, text: str) -> None:
        super().__init__(variable, "a string encodable as UTF-8 (no lone surrogates)", given(text))


def given(value: Any) -> str:
    """The ``given`` part of an error: type name plus a truncated repr, so huge values cannot flood logs."""
    return f"{type(value).__name__} {value!r:.60}"


def key_path(path: str, key: Any) -> str:
    """``path['key']``: where a dict entry sits."""
    return f"{path}[{key!r}]"


def non_finite(path: str, value: float) -> LiteralConversionError:
    """The error for NaN or infinity where JSON is required."""
    return LiteralConversionError(
        path,
        "a finite number (JSON has no NaN or infinity, so neither a Struct nor XCom holds one)",
        given(value),
    )


class JsonRules(NamedTuple):
    """What an encoding of JSON-like values accepts, and how deep it nests."""

    int_keys: bool
    """Whether ``int`` dict keys are accepted besides ``str``."""
    finite: bool
    """Whether floats must be finite."""
    int_min: int
    int_max: int
    """The accepted range of integers."""
    object_step: int
    list_step: int
    """How much deeper one object (dict) or list level nests."""
    max_depth: int
    """The deepest level a value may reach (levels counted with the steps above)."""
    depth_unit: str
    """What a level is, for error messages: ``protobuf messages``, ``levels``."""


def struct_rules() -> JsonRules:
    """The rules of a protobuf ``Struct`` (depths in protobuf messages, see the module docstring)."""
    return JsonRules(
        int_keys=False,
        finite=True,
        int_min=-_FLOAT_INT_MAX,
        int_max=_FLOAT_INT_MAX,
        object_step=3,
        list_step=2,
        max_depth=literal_depth.MAX_DEPTH,
        depth_unit="protobuf messages",
    )


def _too_deep(path: str, rules: JsonRules, depth: int) -> LiteralConversionError:
    return NestingTooDeepError(path, depth, unit=rules.depth_unit, limit=rules.max_depth)


def check_json_value(value: Any, path: str, rules: JsonRules, depth: int) -> None:
    """Check that ``value`` is JSON-like under ``rules``; ``depth`` is the level of its container slot
    (for a ``Struct``: the depth of the ``Value`` message holding it).

    Raises :class:`LiteralConversionError` naming the first offending element. Strings are not checked
    for encodability here (it costs a pass over every string): the encoders catch the error and call
    :func:`raise_unencodable`.
    """
    if value is None or isinstance(value, (str, bool)):
        return
    if isinstance(value, int):
        if not rules.int_min <= value <= rules.int_max:
            raise LiteralConversionError(
                path, f"an integer in [{rules.int_min}, {rules.int_max}]", given(value)
            )
        return
    if isinstance(value, float):
        if rules.finite and not math.isfinite(value):
            raise non_finite(path, value)
        return
    if isinstance(value, dict):
        inner = depth + rules.object_step
        # An empty object is one message (level) below its slot; entries sit a whole step below.
        reached = inner if value else depth + 1
        if reached > rules.max_depth:
            raise _too_deep(path, rules, reached)
        for key, item in value.items():
            if not (
                isinstance(key, str)
                or (rules.int_keys and isinstance(key, int) and not isinstance(key, bool))
            ):
                raise LiteralConversionError(
                    key_path(path, key), "a str or int key" if rules.int_keys else "a str key", given(key)
                )
            check_json_value(item, key_path(path, key), rules, inner)
        return
    if isinstance(value, (list, tuple)):
        inner = depth + rules.list_step
        reached = inner if value else depth + 1
        if reached > rules.max_depth:
            raise _too_deep(path, rules, reached)
        for index, item in enumerate(value):
            check_json_value(item, f"{path}[{index}]", rules, inner)
        return
    raise LiteralConversionError(path, JSON_LIKE, given(value))


def _unencodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _find_unencodable(value: Any, path: str) -> tuple[str, str] | None:
    """``(path, string)`` of the first key or string in ``value`` that UTF-8 cannot encode."""
    if isinstance(value, str):
        return (path, value) if _unencodable(value) else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and _unencodable(key):
                return key_path(path, key), key
            found = _find_unencodable(item, key_path(path, key))
            if found is not None:
                return found
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _find_unencodable(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def raise_unencodable(value: Any, path: str, error: UnicodeEncodeError) -> NoReturn:
    """Raise the :class:`LiteralConversionError` naming the string of ``value`` that caused ``error``."""
    where, text = _find_unencodable(value, path) or (path, str(error.object))
    raise UnencodableStringError(where, text) from None


def write_struct(target: struct_pb2.Struct, value: Mapping[str, Any], path: str, depth: int) -> None:
    """Fill the empty ``target`` (a ``Struct`` message at protobuf depth ``depth``) with ``value``."""
    rules = struct_rules()
    # The Struct itself is one object level: its entries' Values sit two below it.
    reached = depth + 2 if value else depth
    if reached > rules.max_depth:
        raise _too_deep(path, rules, reached)
    for key, item in value.items():
        if not isinstance(key, str):
            raise LiteralConversionError(key_path(path, key), "a str key", given(key))
        check_json_value(item, key_path(path, key), rules, depth + 2)
    # update({}) alone would leave the field unset, and an empty dict must still be a struct.
    target.SetInParent()
    try:
        target.update(value)
    except UnicodeEncodeError as error:
        target.Clear()
        raise_unencodable(value, path, error)


def _python_from_value(value: struct_pb2.Value, path: str, finite: bool) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        if finite and not math.isfinite(number):
            raise non_finite(path, number)
        return number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return python_from_struct(value.struct_value, path, finite)
    if kind == "list_value":
        return [
            _python_from_value(item, f"{path}[{index}]", finite)
            for index, item in enumerate(value.list_value.values)
        ]
    return None  # null_value, or nothing set (which MessageToJson also reads as null)


def python_from_struct(struct: struct_pb2.Struct, path: str, finite: bool) -> dict[str, Any]:
    """The ``dict`` a ``Struct`` holds (numbers as ``float``). With ``finite``, NaN and infinity (which a
    ``Struct`` can hold in binary form, though not as JSON) raise, naming their path."""
    return {key: _python_from_value(item, key_path(path, key), finite) for key, item in struct.fields.items()}
