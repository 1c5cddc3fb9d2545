"""How deeply a literal may nest: protobuf refuses to parse messages nested beyond a fixed depth.

Protobuf *writes* a message of any depth but refuses to *read* one nested too deeply: upb (the
Python runtime) and C++ stop at 100 levels of sub-messages below the message being parsed
(``Exceeded upb_DecodeOptions_MaxDepth``). A literal nests several messages per level of the value
(``Literal -> LiteralCollection -> Literal`` for a list, ``Literal -> LiteralMap -> map entry ->
Literal`` for a map, ``Struct -> map entry -> Value`` for a JSON object), so a list nested about 48
deep already writes an ``inputs.pb`` nobody can read back. The converters count the depth as they
build a literal and refuse one that would cross :data:`MAX_DEPTH`, naming the value.

Depths are counted like upb counts them: the parsed message (the ``LiteralMap`` of ``inputs.pb``) is
at depth 0 and every sub-message one below its parent. The limits were measured, and a test keeps
measuring them (``tests/executors/data/test_literal_depth.py``).
"""

from __future__ import annotations

from typing import Any

from executors.core.errors import LiteralConversionError

__all__ = [
    "MAX_DEPTH",
    "PROTOBUF_MAX_DEPTH",
    "ROOT_LITERAL_DEPTH",
    "NestingTooDeepError",
    "check_depth",
    "message_depth",
    "type_depth_bound",
]

PROTOBUF_MAX_DEPTH = 100
"""The deepest sub-message upb (and C++ protobuf) parse: depth 100 parses, depth 101 does not."""

MAX_DEPTH = PROTOBUF_MAX_DEPTH - 4
"""The deepest sub-message a literal we write may hold. Four levels below protobuf's limit leave room
for the literal map to travel wrapped in one more message (an event, an admin record) than the file
that holds it."""

ROOT_LITERAL_DEPTH = 2
"""The depth of a variable's literal in ``inputs.pb`` / ``outputs.pb`` (``LiteralMap`` -> map entry ->
``Literal``), and equally in a catalog entry (``Artifact`` -> ``ArtifactData`` -> ``Literal``)."""


class NestingTooDeepError(LiteralConversionError):
    """A value would nest deeper than protobuf can parse back. ``depth`` is the depth it reached,
    ``path`` the full path of the value (the message shortens a long one)."""

    def __init__(self, variable: str, depth: int, *, unit: str = "protobuf messages", limit: int = MAX_DEPTH):
        self.depth = depth
        self.path = variable
        super().__init__(
            _shorten(variable),
            f"a value nested at most {limit} {unit} deep (deeper ones cannot be parsed back; a list level "
            "is 2 messages, a dict level 3)"
            if unit == "protobuf messages"
            else f"a value nested at most {limit} {unit} deep",
            f"one nested {depth} {unit} deep",
        )


def _shorten(path: str) -> str:
    """A path of a deeply nested value is long (``[0]`` per level): keep its start (the variable) and end."""
    return path if len(path) <= 80 else f"{path[:48]}...{path[-24:]}"


def check_depth(path: str, depth: int) -> None:
    """Raise :class:`NestingTooDeepError` if a sub-message at ``depth`` would cross :data:`MAX_DEPTH`."""
    if depth > MAX_DEPTH:
        raise NestingTooDeepError(path, depth)


def _is_repeated(field: Any) -> bool:
    # protobuf >= 5.29 has is_repeated (and deprecates label); older versions only label.
    is_repeated = getattr(field, "is_repeated", None)
    if is_repeated is not None:
        return bool(is_repeated)
    return bool(field.label == field.LABEL_REPEATED)


def message_depth(message: Any) -> int:
    """How many levels of sub-messages ``message`` holds below itself (0 for one without any).

    A map field counts its entry message as a level, as protobuf's wire format (and so its parser)
    does.
    """
    deepest = 0
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if _is_repeated(field):
            if field.message_type.GetOptions().map_entry:
                deepest = max(deepest, 1)
                if field.message_type.fields_by_name["value"].message_type is not None:
                    for item in value.values():
                        deepest = max(deepest, 2 + message_depth(item))
            else:
                for item in value:
                    deepest = max(deepest, 1 + message_depth(item))
        else:
            deepest = max(deepest, 1 + message_depth(value))
    return deepest


def type_depth_bound(message: Any) -> int:
    """A cheap upper bound of :func:`message_depth`: every nesting level costs at least two bytes
    (a tag and a length), so a message of ``n`` bytes nests at most ``n // 2`` levels."""
    return int(message.ByteSize()) // 2
