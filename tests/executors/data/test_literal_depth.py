"""Protobuf's parse depth limit, measured, and the converters refusing values that would cross it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flyteidl.core import interface_pb2, literals_pb2, types_pb2
from google.protobuf import message as protobuf_message

from executors.core.errors import LiteralConversionError
from executors.data.literal_depth import (
    MAX_DEPTH,
    PROTOBUF_MAX_DEPTH,
    ROOT_LITERAL_DEPTH,
    NestingTooDeepError,
    message_depth,
    type_depth_bound,
)
from executors.data.literals import literal_type_from_python, to_literal, to_literal_map

INTEGER = types_pb2.LiteralType(simple=types_pb2.INTEGER)
STRUCT = types_pb2.LiteralType(simple=types_pb2.STRUCT)
MSGPACK_STRUCT = literal_type_from_python(dict)


def parses(literal_map: literals_pb2.LiteralMap) -> bool:
    try:
        literals_pb2.LiteralMap.FromString(literal_map.SerializeToString())
    except protobuf_message.DecodeError:
        return False
    return True


# -- the limit itself, measured on raw literals built in place (no converter involved) ----------------

Step = Callable[[literals_pb2.Literal], literals_pb2.Literal]
Leaf = Callable[[literals_pb2.Literal], None]


def _list(literal: literals_pb2.Literal) -> literals_pb2.Literal:
    return literal.collection.literals.add()


def _map(literal: literals_pb2.Literal) -> literals_pb2.Literal:
    return literal.map.literals["k"]


def _union(literal: literals_pb2.Literal) -> literals_pb2.Literal:
    literal.scalar.union.type.simple = types_pb2.INTEGER
    return literal.scalar.union.value


def _int(literal: literals_pb2.Literal) -> None:
    literal.scalar.primitive.integer = 1


def _timestamp(literal: literals_pb2.Literal) -> None:
    literal.scalar.primitive.datetime.seconds = 1


def _empty_list(literal: literals_pb2.Literal) -> None:
    literal.collection.SetInParent()


def _none(literal: literals_pb2.Literal) -> None:
    literal.scalar.none_type.SetInParent()


def nested(levels: int, step: Step, leaf: Leaf) -> literals_pb2.LiteralMap:
    literal_map = literals_pb2.LiteralMap()
    literal = literal_map.literals["x"]
    for _ in range(levels):
        literal = step(literal)
    leaf(literal)
    return literal_map


@pytest.mark.parametrize("step", [_list, _map, _union], ids=["list", "map", "union"])
@pytest.mark.parametrize(
    "leaf", [_int, _timestamp, _empty_list, _none], ids=["int", "datetime", "empty", "none"]
)
def test_protobuf_parses_exactly_up_to_its_depth_limit(step: Step, leaf: Leaf) -> None:
    """upb refuses depth 101 (the root at 0), counting map entries and empty messages too: the
    figure MAX_DEPTH is derived from. message_depth must agree with the parser on every shape."""
    depths = []
    for levels in range(20, 60):
        literal_map = nested(levels, step, leaf)
        depth = message_depth(literal_map)
        assert parses(literal_map) is (depth <= PROTOBUF_MAX_DEPTH), (levels, depth)
        depths.append(depth)
    assert min(depths) <= PROTOBUF_MAX_DEPTH < max(depths)  # both sides of the limit were tried


def test_a_variable_literal_sits_two_below_the_map() -> None:
    literal_map = nested(0, _list, _int)  # LiteralMap -> entry -> Literal -> Scalar -> Primitive
    assert message_depth(literal_map) == ROOT_LITERAL_DEPTH + 2


def test_the_byte_size_bound_never_underestimates() -> None:
    for levels in range(0, 40, 3):
        for step in (_list, _map, _union):
            literal_map = nested(levels, step, _none)
            assert message_depth(literal_map) <= type_depth_bound(literal_map)


def test_a_list_nested_about_fifty_deep_is_already_too_deep_for_protobuf() -> None:
    assert not parses(nested(49, _list, _int))
    assert MAX_DEPTH < PROTOBUF_MAX_DEPTH


# -- the converters: everything they accept parses back; one level more is refused --------------------


def nested_list_type(levels: int) -> types_pb2.LiteralType:
    literal_type = INTEGER
    for _ in range(levels):
        literal_type = types_pb2.LiteralType(collection_type=literal_type)
    return literal_type


def nested_map_type(levels: int) -> types_pb2.LiteralType:
    literal_type = INTEGER
    for _ in range(levels):
        literal_type = types_pb2.LiteralType(map_value_type=literal_type)
    return literal_type


def optional_chain_type(levels: int) -> types_pb2.LiteralType:
    literal_type = INTEGER
    for _ in range(levels):
        union = types_pb2.LiteralType()
        union.union_type.variants.add().CopyFrom(literal_type)
        union.union_type.variants.add().simple = types_pb2.NONE
        literal_type = union
    return literal_type


def wrap_list(levels: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


def wrap_dict(levels: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(levels):
        value = {"k": value}
    return value


Shape = tuple[Callable[[int], types_pb2.LiteralType], Callable[[int], Any]]

SHAPES: dict[str, Shape] = {
    "list": (nested_list_type, wrap_list),
    "list-empty-leaf": (nested_list_type, lambda n: wrap_list(n - 1, [])),
    "map": (nested_map_type, wrap_dict),
    "map-of-primitives": (lambda n: nested_map_type(n), lambda n: wrap_dict(n)),
    "union": (optional_chain_type, lambda n: 1),
    "struct-objects": (lambda n: STRUCT, lambda n: wrap_dict(n)),
    "struct-lists": (lambda n: STRUCT, lambda n: {"k": wrap_list(n)}),
    "struct-empty-object": (lambda n: STRUCT, lambda n: wrap_dict(n, {})),
    "list-of-struct": (lambda n: types_pb2.LiteralType(collection_type=STRUCT), lambda n: [wrap_dict(n)]),
}


def accepted(literal_type: types_pb2.LiteralType, value: Any) -> literals_pb2.LiteralMap | None:
    variables = interface_pb2.VariableMap()
    variables.variables["x"].type.CopyFrom(literal_type)  # in place: a constructor would parse it
    try:
        return to_literal_map({"x": value}, variables)
    except NestingTooDeepError:
        return None


@pytest.mark.parametrize("shape", list(SHAPES), ids=list(SHAPES))
def test_converters_accept_up_to_the_limit_and_refuse_beyond(shape: str) -> None:
    make_type, make_value = SHAPES[shape]
    deepest_accepted = None
    for levels in range(1, 60):
        literal_map = accepted(make_type(levels), make_value(levels))
        if literal_map is None:
            break
        assert parses(literal_map), levels
        assert message_depth(literal_map) <= MAX_DEPTH
        deepest_accepted = message_depth(literal_map)
    else:
        pytest.fail("nothing refused up to 60 levels")
    # Refused only once the next level would cross the limit: at most one level's worth (3 messages)
    # below it.
    assert deepest_accepted is not None and deepest_accepted > MAX_DEPTH - 3


def test_the_error_names_the_input_and_the_depth() -> None:
    with pytest.raises(NestingTooDeepError) as caught:
        to_literal_map(
            {"xs": wrap_list(60)},
            interface_pb2.VariableMap(variables={"xs": interface_pb2.Variable(type=nested_list_type(60))}),
        )
    error = caught.value
    assert isinstance(error, LiteralConversionError)
    assert str(error).startswith("input 'xs'[0][0]")
    assert f"expected a value nested at most {MAX_DEPTH} protobuf messages deep" in str(error)
    assert f"got one nested {error.depth} protobuf messages deep" in str(error)
    assert error.depth > MAX_DEPTH and error.path.startswith("input 'xs'[0][0][0]")
    assert len(str(error)) < 300  # the long path is shortened in the message


def test_a_deep_union_type_counts_too() -> None:
    """A union literal carries its chosen variant's type: a deeply nested *type* (here a JSON schema
    in a STRUCT's metadata) is as deep as a value."""
    union = types_pb2.LiteralType()
    variant = union.union_type.variants.add()
    variant.simple = types_pb2.STRUCT
    variant.metadata.update(wrap_dict(40))
    union.union_type.variants.add().simple = types_pb2.NONE
    assert to_literal(None, union, path="input 'u'").scalar.union.type.simple == types_pb2.NONE
    with pytest.raises(NestingTooDeepError, match=r"^input 'u': expected a value nested"):
        to_literal({}, union, path="input 'u'")


def test_a_union_does_not_hide_the_depth_error_behind_its_next_variant() -> None:
    union = types_pb2.LiteralType()
    union.union_type.variants.add().CopyFrom(nested_list_type(60))
    union.union_type.variants.add().simple = types_pb2.NONE  # the next variant, which must not be tried
    with pytest.raises(NestingTooDeepError):
        to_literal(wrap_list(60), union, path="input 'u'")
    variables = interface_pb2.VariableMap()
    variables.variables["u"].type.CopyFrom(union)
    with pytest.raises(NestingTooDeepError):
        to_literal_map({"u": wrap_list(60)}, variables)


def test_msgpack_structs_nest_no_protobuf_but_are_bounded() -> None:
    """A msgpack value is bytes to protobuf: no protobuf depth, but a nesting limit of its own."""
    literal = to_literal(wrap_dict(90), MSGPACK_STRUCT, path="input 'd'")
    assert message_depth(literal) == 2  # Literal -> Scalar -> Binary
    with pytest.raises(NestingTooDeepError, match=r"^input 'd'\['k'\].*nested at most 100 levels deep"):
        to_literal(wrap_dict(101), MSGPACK_STRUCT, path="input 'd'")


def test_a_union_takes_a_later_variant_that_can_encode_the_value() -> None:
    union = types_pb2.LiteralType()
    union.union_type.variants.add().map_value_type.CopyFrom(nested_list_type(59))
    union.union_type.variants.add().CopyFrom(MSGPACK_STRUCT)
    literal = to_literal({"k": wrap_list(59)}, union, path="input 'u'")
    assert literal.scalar.union.type == MSGPACK_STRUCT
    assert literal.scalar.union.value.scalar.binary.tag == "msgpack"
