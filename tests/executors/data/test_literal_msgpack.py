"""STRUCT values as flytekit's msgpack ``Binary`` literals (executors.data.literal_msgpack and its use)."""

from __future__ import annotations

import math
from typing import Any

import msgpack
import pytest
from flyteidl.core import interface_pb2, literals_pb2, types_pb2

from executors.core.errors import LiteralConversionError
from executors.data.literal_msgpack import (
    MAX_NESTING,
    MSGPACK_TAG,
    annotate_msgpack,
    is_msgpack_struct,
    pack,
    unpack,
)
from executors.data.literals import (
    from_literal_map,
    literal_type_from_python,
    to_literal,
    to_literal_map,
    to_python,
)

STRUCT = types_pb2.LiteralType(simple=types_pb2.STRUCT)
MSGPACK = annotate_msgpack(types_pb2.LiteralType(simple=types_pb2.STRUCT))


def binary(data: bytes, tag: str = MSGPACK_TAG) -> literals_pb2.Literal:
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(binary=literals_pb2.Binary(value=data, tag=tag)))


def test_the_annotation_is_flytekits() -> None:
    assert is_msgpack_struct(MSGPACK)
    assert not is_msgpack_struct(STRUCT)
    other = types_pb2.LiteralType(simple=types_pb2.STRUCT)
    other.annotation.annotations.update({"cache-key-metadata": {"serialization-format": "json"}})
    assert not is_msgpack_struct(other)
    assert literal_type_from_python(dict) == MSGPACK


VALUE = {"i": 1, "f": 2.5, "s": "x", "b": True, "n": None, "l": [1, [2, {"k": -3}]], "d": {}, "t": (4, 5)}


def test_written_exactly_as_flytekit_writes_it() -> None:
    literal = to_literal(VALUE, MSGPACK, path="input 'd'")
    assert literal.scalar.binary.tag == "msgpack"
    # flytekit: msgpack.dumps(python_val) for a dict (msgpack's defaults: use_bin_type, float64).
    assert literal.scalar.binary.value == msgpack.dumps(VALUE)
    assert literal.metadata == {} and not literal.hash


def test_ints_stay_ints() -> None:
    back = to_python(to_literal(VALUE, MSGPACK, path="input 'd'"), MSGPACK)
    assert back == {**VALUE, "t": [4, 5]}
    assert type(back["i"]) is int and type(back["l"][1][1]["k"]) is int and type(back["f"]) is float


def test_without_the_annotation_a_json_struct_is_written_as_before() -> None:
    literal = to_literal({"a": 1}, STRUCT, path="input 'd'")
    assert literal.scalar.WhichOneof("value") == "generic"
    assert to_python(literal, STRUCT) == {"a": 1.0}


@pytest.mark.parametrize("declared", [STRUCT, MSGPACK, None], ids=["struct", "msgpack", "inferred"])
def test_either_encoding_is_read_whatever_the_declared_type(declared: types_pb2.LiteralType | None) -> None:
    as_binary = to_literal({"a": 1}, MSGPACK, path="p")
    as_struct = to_literal({"a": 1}, STRUCT, path="p")
    assert to_python(as_binary, declared) == {"a": 1}
    assert type(to_python(as_binary, declared)["a"]) is int
    assert to_python(as_struct, declared) == {"a": 1.0}


def test_in_collections_maps_and_unions() -> None:
    list_type = types_pb2.LiteralType(collection_type=MSGPACK)
    map_type = types_pb2.LiteralType(map_value_type=MSGPACK)
    optional = literal_type_from_python(dict | None)
    values = [{"x": 1}, {"x": 2, "y": [3]}]
    assert to_python(to_literal(values, list_type, path="p"), list_type) == values
    assert to_python(to_literal({"k": values[0]}, map_type, path="p")) == {"k": values[0]}
    literal = to_literal(values[1], optional, path="p")
    assert literal.scalar.union.value.scalar.binary.tag == "msgpack"
    assert literal.scalar.union.type == optional.union_type.variants[0]
    assert to_python(literal, optional) == values[1]
    assert to_python(to_literal(None, optional, path="p"), optional) is None


def test_msgpack_takes_what_a_struct_cannot() -> None:
    value = {1: "int key", "nan": math.inf, "big": 2**64 - 1, "small": -(2**63)}
    back = to_python(to_literal(value, MSGPACK, path="p"), MSGPACK)
    assert back == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([1], "input 'd': expected struct, got list [1]"),
        (
            {"a": {1, 2}},
            "input 'd'['a']: expected a JSON-like value (dict, list, str, int, float, bool, None), got set",
        ),
        ({"a": b"x"}, "input 'd'['a']: expected a JSON-like value"),
        ({(1, 2): 1}, "input 'd'[(1, 2)]: expected a str or int key, got tuple"),
        ({True: 1}, "input 'd'[True]: expected a str or int key, got bool True"),
        (
            {"a": [2**64]},
            "input 'd'['a'][0]: expected an integer in [-9223372036854775808, 18446744073709551615]",
        ),
        (
            {"a": ["ok", "\ud800"]},
            "input 'd'['a'][1]: expected a string encodable as UTF-8 (no lone surrogates)",
        ),
        ({"\udfff": 1}, "input 'd'['\\udfff']: expected a string encodable as UTF-8"),
    ],
    ids=["not-a-mapping", "set", "bytes", "tuple-key", "bool-key", "int-range", "surrogate", "surrogate-key"],
)
def test_write_errors_name_the_element(value: Any, message: str) -> None:
    with pytest.raises(LiteralConversionError) as caught:
        to_literal(value, MSGPACK, path="input 'd'")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xc1", "output 'o0': expected msgpack bytes holding a JSON-like value, got undecodable bytes"),
        (msgpack.packb({"a": 1}) + b"\x01", "undecodable bytes (ExtraData"),
        (msgpack.packb({"a": msgpack.ExtType(5, b"x")}), "extension type 5"),
        (msgpack.packb({"t": msgpack.Timestamp(1)}), "output 'o0'['t']: expected a JSON-like value"),
        (msgpack.packb({"b": b"raw"}, use_bin_type=True), "output 'o0'['b']: expected a JSON-like value"),
        (b"\x81\xa1a\xa3\xed\xa0\x80", "undecodable bytes (UnicodeDecodeError"),
        (b"\x91" * 2000 + b"\x01", "undecodable bytes"),
        (
            msgpack.packb([1, 2]),
            "output 'o0': expected struct, got msgpack binary literal holding list [1, 2]",
        ),
    ],
    ids=["garbage", "trailing", "ext", "timestamp", "bin", "bad-utf8", "too-deep-for-msgpack", "not-a-map"],
)
def test_read_errors_name_the_output(data: bytes, message: str) -> None:
    with pytest.raises(LiteralConversionError) as caught:
        to_python(binary(data), MSGPACK, path="output 'o0'")
    assert message in str(caught.value)


def test_a_binary_literal_of_another_tag_is_not_a_struct() -> None:
    with pytest.raises(
        LiteralConversionError, match=r"expected struct, got binary literal \(tag 'pickle', 3 bytes\)"
    ):
        to_python(binary(b"abc", tag="pickle"), MSGPACK)
    with pytest.raises(LiteralConversionError, match="expected a supported literal"):
        to_python(binary(b"abc", tag="pickle"))


def test_nesting_is_bounded_both_ways() -> None:
    deep: Any = 1
    for _ in range(MAX_NESTING):
        deep = [deep]
    assert unpack(pack({"k": deep[0]}, "p"), "p", finite=False) == {"k": deep[0]}
    with pytest.raises(LiteralConversionError, match=r"nested at most 100 levels deep"):
        pack({"k": deep}, "p")
    data = msgpack.packb({"k": deep})
    with pytest.raises(LiteralConversionError, match=r"^output 'o0'\['k'\].*nested at most 100 levels deep"):
        to_python(binary(data), MSGPACK, path="output 'o0'")


def test_nan_is_read_for_inputs_and_refused_for_outputs() -> None:
    variables = interface_pb2.VariableMap()
    variables.variables["d"].type.CopyFrom(MSGPACK)
    literal_map = to_literal_map({"d": {"a": [1.0, math.nan]}}, variables)
    assert math.isnan(from_literal_map(literal_map, variables, kind="input")["d"]["a"][1])
    with pytest.raises(LiteralConversionError, match=r"^output 'd'\['a'\]\[1\]: expected a finite number"):
        from_literal_map(literal_map, variables)
    with pytest.raises(LiteralConversionError, match=r"^output 'd'\['a'\]\[1\]: expected a finite number"):
        from_literal_map(literal_map)  # inferred too
