"""Tests of executors.data.literals: Python <-> Flyte literal conversion, interfaces and type descriptions."""

from __future__ import annotations

import datetime
import enum
import json
import math
import pathlib
import typing
from typing import Any

import pytest
from flyteidl.core import interface_pb2, literals_pb2, types_pb2
from google.protobuf import struct_pb2

from executors.core.errors import InterfaceMismatchError, LiteralConversionError
from executors.data.literals import (
    describe_type,
    from_literal_map,
    interface_from_python,
    literal_type_from_python,
    to_literal,
    to_literal_map,
    to_python,
    type_admits_none,
)

UTC = datetime.UTC

# --------------------------------------------------------------------------------------------------------
# Type builders (real flyteidl messages, built through their generated classes)
# --------------------------------------------------------------------------------------------------------


def simple(kind: int) -> types_pb2.LiteralType:
    return types_pb2.LiteralType(simple=kind)


def list_of(element: types_pb2.LiteralType) -> types_pb2.LiteralType:
    return types_pb2.LiteralType(collection_type=element)


def dict_of(value: types_pb2.LiteralType) -> types_pb2.LiteralType:
    return types_pb2.LiteralType(map_value_type=value)


def union_of(
    *variants: types_pb2.LiteralType, tags: typing.Sequence[str] | None = None
) -> types_pb2.LiteralType:
    result = types_pb2.LiteralType()
    for index, variant in enumerate(variants):
        added = result.union_type.variants.add()
        added.CopyFrom(variant)
        added.structure.tag = tags[index] if tags else describe_type(variant)
    return result


INTEGER = simple(types_pb2.INTEGER)
FLOAT = simple(types_pb2.FLOAT)
STRING = simple(types_pb2.STRING)
BOOLEAN = simple(types_pb2.BOOLEAN)
DATETIME = simple(types_pb2.DATETIME)
DURATION = simple(types_pb2.DURATION)
NONE = simple(types_pb2.NONE)
STRUCT = simple(types_pb2.STRUCT)
STRUCT_MSGPACK = types_pb2.LiteralType(simple=types_pb2.STRUCT)
STRUCT_MSGPACK.annotation.annotations.update({"cache-key-metadata": {"serialization-format": "msgpack"}})
BINARY = simple(types_pb2.BINARY)
ERROR = simple(types_pb2.ERROR)
BLOB_CSV = types_pb2.LiteralType(
    blob=types_pb2.BlobType(format="csv", dimensionality=types_pb2.BlobType.SINGLE)
)
BLOB_DIR = types_pb2.LiteralType(blob=types_pb2.BlobType(dimensionality=types_pb2.BlobType.MULTIPART))
DATASET = types_pb2.LiteralType(structured_dataset_type=types_pb2.StructuredDatasetType(format="parquet"))
ENUM_AB = types_pb2.LiteralType(enum_type=types_pb2.EnumType(values=["a", "b"]))
SCHEMA = types_pb2.LiteralType(schema=types_pb2.SchemaType())
OPTIONAL_INT = union_of(INTEGER, NONE)
INT_OR_STR = union_of(INTEGER, STRING)


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1


class Switch(enum.Enum):
    ON = True


class Letter(enum.Enum):
    A = "a"
    B = "b"


class Custom:
    pass


def scalar_literal(**primitive: Any) -> literals_pb2.Literal:
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(**primitive)))


def none_literal() -> literals_pb2.Literal:
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(none_type=literals_pb2.Void()))


# --------------------------------------------------------------------------------------------------------
# Round trips Python -> Literal -> Python
# --------------------------------------------------------------------------------------------------------

AWARE = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
PLUS_TWO = datetime.timezone(datetime.timedelta(hours=2))

ROUND_TRIPS: list[tuple[str, Any, types_pb2.LiteralType, Any]] = [
    ("int", 42, INTEGER, 42),
    ("int-negative", -7, INTEGER, -7),
    ("int-zero", 0, INTEGER, 0),
    ("float-zero", 0.0, FLOAT, 0.0),
    ("list-zeros", [0, 0], list_of(INTEGER), [0, 0]),
    ("dict-zero", {"z": 0.0}, dict_of(FLOAT), {"z": 0.0}),
    ("duration-zero", datetime.timedelta(0), DURATION, datetime.timedelta(0)),
    (
        "datetime-epoch",
        datetime.datetime(1970, 1, 1, tzinfo=UTC),
        DATETIME,
        datetime.datetime(1970, 1, 1, tzinfo=UTC),
    ),
    ("int64-max", 2**63 - 1, INTEGER, 2**63 - 1),
    ("int64-min", -(2**63), INTEGER, -(2**63)),
    ("float", 1.5, FLOAT, 1.5),
    ("float-from-int", 3, FLOAT, 3.0),
    ("string", "héllo", STRING, "héllo"),
    ("string-empty", "", STRING, ""),
    ("bool-true", True, BOOLEAN, True),
    ("bool-false", False, BOOLEAN, False),
    ("datetime-utc", AWARE, DATETIME, AWARE),
    (
        "datetime-offset-converted",
        datetime.datetime(2024, 5, 6, 9, 8, 9, tzinfo=PLUS_TWO),
        DATETIME,
        datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
    ),
    (
        "datetime-naive-is-utc",
        datetime.datetime(2024, 5, 6, 7, 8, 9),
        DATETIME,
        datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
    ),
    ("datetime-iso-z", "2024-05-06T07:08:09Z", DATETIME, datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)),
    (
        "datetime-iso-offset",
        "2024-05-06T09:08:09+02:00",
        DATETIME,
        datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
    ),
    (
        "datetime-iso-naive",
        "2024-05-06 07:08:09",
        DATETIME,
        datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
    ),
    (
        "datetime-epoch-before",
        datetime.datetime(1900, 1, 1, tzinfo=UTC),
        DATETIME,
        datetime.datetime(1900, 1, 1, tzinfo=UTC),
    ),
    (
        "duration",
        datetime.timedelta(days=2, seconds=3, microseconds=5),
        DURATION,
        datetime.timedelta(days=2, seconds=3, microseconds=5),
    ),
    ("date-is-its-midnight", datetime.date(2024, 1, 1), DATETIME, datetime.datetime(2024, 1, 1, tzinfo=UTC)),
    ("duration-negative", datetime.timedelta(seconds=-90), DURATION, datetime.timedelta(seconds=-90)),
    ("none", None, NONE, None),
    (
        "struct",
        {"a": 1, "b": [1, "x", None, True, {"c": 2.5}], "t": (1, 2)},
        STRUCT,
        {"a": 1.0, "b": [1.0, "x", None, True, {"c": 2.5}], "t": [1.0, 2.0]},
    ),
    ("struct-empty", {}, STRUCT, {}),
    ("list-int", [1, 2, 3], list_of(INTEGER), [1, 2, 3]),
    ("list-empty", [], list_of(INTEGER), []),
    ("tuple-int", (4, 5), list_of(INTEGER), [4, 5]),
    ("list-float-mixed", [1, 2.5], list_of(FLOAT), [1.0, 2.5]),
    ("list-str", ["a", "b"], list_of(STRING), ["a", "b"]),
    ("list-bool", [True, False], list_of(BOOLEAN), [True, False]),
    ("list-int-subclass-slow-path", [Level.LOW, 2], list_of(INTEGER), [1, 2]),
    ("list-datetime", [AWARE], list_of(DATETIME), [AWARE]),
    ("list-list-int", [[1], [], [2, 3]], list_of(list_of(INTEGER)), [[1], [], [2, 3]]),
    (
        "list-of-dicts",
        [{"a": 1, "b": 2}, {}, {"c": 3}],
        list_of(dict_of(INTEGER)),
        [{"a": 1, "b": 2}, {}, {"c": 3}],
    ),
    (
        "list-of-structs",
        [{"k": [1, {"n": None}]}],
        list_of(STRUCT),
        [{"k": [1.0, {"n": None}]}],
    ),
    ("dict-float", {"x": 1.5, "y": 2}, dict_of(FLOAT), {"x": 1.5, "y": 2.0}),
    ("dict-int", {"x": 1}, dict_of(INTEGER), {"x": 1}),
    ("dict-str", {"x": "v"}, dict_of(STRING), {"x": "v"}),
    ("dict-bool", {"x": False}, dict_of(BOOLEAN), {"x": False}),
    ("dict-empty", {}, dict_of(FLOAT), {}),
    ("dict-of-lists", {"a": [1, 2], "b": []}, dict_of(list_of(INTEGER)), {"a": [1, 2], "b": []}),
    ("dict-of-durations", {"d": datetime.timedelta(1)}, dict_of(DURATION), {"d": datetime.timedelta(1)}),
    ("blob-str", "s3://bucket/key.csv", BLOB_CSV, "s3://bucket/key.csv"),
    ("blob-path", pathlib.PurePosixPath("/data/dir"), BLOB_DIR, "/data/dir"),
    (
        "structured-dataset",
        "gs://b/d.parquet",
        DATASET,
        {"uri": "gs://b/d.parquet", "format": "parquet", "columns": []},
    ),
    ("optional-int-value", 5, OPTIONAL_INT, 5),
    ("optional-int-none", None, OPTIONAL_INT, None),
    ("union-second-variant", "x", INT_OR_STR, "x"),
    ("union-first-variant", 3, INT_OR_STR, 3),
    ("list-of-optional", [1, None, 3], list_of(OPTIONAL_INT), [1, None, 3]),
    ("enum-str", "b", ENUM_AB, "b"),
    ("enum-member", Letter.A, ENUM_AB, "a"),
]


@pytest.mark.parametrize(
    ("value", "literal_type", "expected"),
    [case[1:] for case in ROUND_TRIPS],
    ids=[case[0] for case in ROUND_TRIPS],
)
def test_round_trip(value: Any, literal_type: types_pb2.LiteralType, expected: Any) -> None:
    literal = to_literal(value, literal_type, path="input 'x'")
    back = to_python(literal, literal_type)
    assert back == expected
    assert type(back) is type(expected)
    # The literal survives serialization (what inputs.pb / outputs.pb go through).
    reparsed = literals_pb2.Literal.FromString(literal.SerializeToString())
    assert to_python(reparsed, literal_type) == expected


@pytest.mark.parametrize(
    ("value", "literal_type", "expected"),
    [case[1:] for case in ROUND_TRIPS],
    ids=[case[0] for case in ROUND_TRIPS],
)
def test_inference_without_type_matches_typed_conversion(
    value: Any, literal_type: types_pb2.LiteralType, expected: Any
) -> None:
    literal = to_literal(value, literal_type, path="input 'x'")
    inferred = to_python(literal)
    assert inferred == expected
    assert type(inferred) is type(expected)


def test_datetime_result_is_aware_utc() -> None:
    result = to_python(to_literal(datetime.datetime(2020, 1, 1, 12), DATETIME, path="input 'd'"))
    assert result.tzinfo is UTC
    assert result == datetime.datetime(2020, 1, 1, 12, tzinfo=UTC)


def test_naive_datetime_is_stored_as_utc_seconds() -> None:
    literal = to_literal(datetime.datetime(1970, 1, 2), DATETIME, path="input 'd'")
    assert literal.scalar.primitive.datetime.seconds == 86400
    assert literal.scalar.primitive.datetime.nanos == 0


def test_datetime_nanoseconds_truncate_to_microseconds() -> None:
    literal = scalar_literal()
    literal.scalar.primitive.datetime.seconds = 0
    literal.scalar.primitive.datetime.nanos = 1999
    assert to_python(literal, DATETIME) == datetime.datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC)


def test_struct_numbers_come_back_as_float() -> None:
    back = to_python(to_literal({"n": 3, "deep": [{"m": 4}]}, STRUCT, path="input 's'"), STRUCT)
    assert back == {"n": 3.0, "deep": [{"m": 4.0}]}
    assert isinstance(back["n"], float)
    assert isinstance(back["deep"][0]["m"], float)


def test_large_homogeneous_collections_round_trip() -> None:
    ints = list(range(-5_000, 5_000))
    floats = {f"k{i}": i / 3 for i in range(10_000)}
    int_literal = to_literal(ints, list_of(INTEGER), path="input 'xs'")
    float_literal = to_literal(floats, dict_of(FLOAT), path="input 'm'")
    assert len(int_literal.collection.literals) == 10_000
    assert int_literal.collection.literals[17].scalar.primitive.integer == ints[17]
    assert to_python(int_literal, list_of(INTEGER)) == ints
    assert to_python(float_literal, dict_of(FLOAT)) == floats
    assert to_python(int_literal) == ints
    assert to_python(float_literal) == floats


# --------------------------------------------------------------------------------------------------------
# Shape of the produced literals
# --------------------------------------------------------------------------------------------------------


def test_literal_shapes() -> None:
    assert to_literal(42, INTEGER, path="p").scalar.primitive.integer == 42
    assert to_literal(2, FLOAT, path="p").scalar.primitive.WhichOneof("value") == "float_value"
    assert to_literal("s", STRING, path="p").scalar.primitive.string_value == "s"
    assert to_literal(True, BOOLEAN, path="p").scalar.primitive.boolean is True
    assert to_literal(None, NONE, path="p").scalar.WhichOneof("value") == "none_type"
    assert (
        to_literal(datetime.timedelta(seconds=1.5), DURATION, path="p").scalar.primitive.duration.nanos
        == 5 * 10**8
    )

    generic = to_literal({"a": "b"}, STRUCT, path="p").scalar.generic
    expected_struct = struct_pb2.Struct()
    expected_struct.update({"a": "b"})
    assert generic == expected_struct

    empty = to_literal([], list_of(INTEGER), path="p")
    assert empty.WhichOneof("value") == "collection"
    empty_map = to_literal({}, dict_of(INTEGER), path="p")
    assert empty_map.WhichOneof("value") == "map"

    mapped = to_literal({"k": 1}, dict_of(INTEGER), path="p")
    assert mapped.map.literals["k"].scalar.primitive.integer == 1


def test_blob_literal_copies_declared_type() -> None:
    literal = to_literal("file:///tmp/a.csv", BLOB_CSV, path="input 'f'")
    assert literal.scalar.blob.uri == "file:///tmp/a.csv"
    assert literal.scalar.blob.metadata.type == BLOB_CSV.blob
    assert literal.scalar.blob.metadata.type.format == "csv"


def test_structured_dataset_literal_copies_declared_type() -> None:
    literal = to_literal("s3://b/t", DATASET, path="input 't'")
    assert literal.scalar.structured_dataset.uri == "s3://b/t"
    assert literal.scalar.structured_dataset.metadata.structured_dataset_type.format == "parquet"


@pytest.mark.parametrize(
    ("value", "variant_index", "inner_field", "inner_value"),
    [(5, 0, "integer", 5), (None, 1, None, None)],
    ids=["value-branch", "none-branch"],
)
def test_union_literal_shape(
    value: Any, variant_index: int, inner_field: str | None, inner_value: Any
) -> None:
    literal = to_literal(value, OPTIONAL_INT, path="input 'o'")
    union = literal.scalar.union
    assert union.type == OPTIONAL_INT.union_type.variants[variant_index]
    if inner_field is None:
        assert union.value.scalar.WhichOneof("value") == "none_type"
    else:
        assert getattr(union.value.scalar.primitive, inner_field) == inner_value


def test_union_picks_first_accepting_variant() -> None:
    # 3 fits both float and integer; the declared order decides.
    literal = to_literal(3, union_of(FLOAT, INTEGER), path="p")
    assert literal.scalar.union.type.simple == types_pb2.FLOAT
    assert to_python(literal, union_of(FLOAT, INTEGER)) == 3.0


def test_enum_literal_is_a_string_primitive() -> None:
    assert to_literal("a", ENUM_AB, path="p").scalar.primitive.string_value == "a"


# --------------------------------------------------------------------------------------------------------
# to_literal errors
# --------------------------------------------------------------------------------------------------------

TO_LITERAL_ERRORS: list[tuple[str, Any, types_pb2.LiteralType, str]] = [
    ("bool-for-int", True, INTEGER, "input 'x': expected integer, got bool True"),
    ("str-for-int", "3", INTEGER, "input 'x': expected integer, got str '3'"),
    ("float-for-int", 1.5, INTEGER, "input 'x': expected integer, got float 1.5"),
    ("int-above-int64", 2**63, INTEGER, "input 'x': expected integer, got int 9223372036854775808"),
    ("int-below-int64", -(2**63) - 1, INTEGER, "input 'x': expected integer, got int -9223372036854775809"),
    ("bool-for-float", False, FLOAT, "input 'x': expected float, got bool False"),
    ("str-for-float", "1.0", FLOAT, "input 'x': expected float, got str '1.0'"),
    ("huge-int-for-float", 10**400, FLOAT, "input 'x': expected float, got int 1000"),
    ("bytes-for-str", b"x", STRING, "input 'x': expected string, got bytes b'x'"),
    ("int-for-str", 1, STRING, "input 'x': expected string, got int 1"),
    ("int-for-bool", 1, BOOLEAN, "input 'x': expected boolean, got int 1"),
    (
        "bad-iso-string",
        "not a date",
        DATETIME,
        "input 'x': expected datetime (a datetime or an ISO-8601 string), got str 'not a date'",
    ),
    ("int-for-duration", 5, DURATION, "input 'x': expected duration, got int 5"),
    ("zero-for-none", 0, NONE, "input 'x': expected none, got int 0"),
    ("list-for-struct", [1], STRUCT, "input 'x': expected struct, got list [1]"),
    ("struct-top-key", {1: 2}, STRUCT, "input 'x'[1]: expected a str key, got int 1"),
    ("struct-nested-key", {"a": {1: 2}}, STRUCT, "input 'x'['a'][1]: expected a str key, got int 1"),
    (
        "struct-bad-value",
        {"a": [1, {1, 2}]},
        STRUCT,
        "input 'x'['a'][1]: expected a JSON-like value (dict, list, str, int, float, bool, None), got set",
    ),
    ("str-for-list", "abc", list_of(STRING), "input 'x': expected list[string], got str 'abc'"),
    ("dict-for-list", {"a": 1}, list_of(INTEGER), "input 'x': expected list[integer], got dict"),
    ("list-element-wrong", [1, "two", 3], list_of(INTEGER), "input 'x'[1]: expected integer, got str 'two'"),
    ("list-element-bool", [1, 2, True], list_of(INTEGER), "input 'x'[2]: expected integer, got bool True"),
    ("list-element-out-of-range", [0, 1, 2**63], list_of(INTEGER), "input 'x'[2]: expected integer, got int"),
    ("list-float-overflow", [1.0, 10**400], list_of(FLOAT), "input 'x'[1]: expected float, got int"),
    ("nested-list-element", [[1], [2, "x"]], list_of(list_of(INTEGER)), "input 'x'[1][1]: expected integer"),
    (
        "list-of-dicts-bad-value",
        [{"a": 1}, {"b": "z"}],
        list_of(dict_of(INTEGER)),
        "input 'x'[1]['b']: expected integer, got str 'z'",
    ),
    ("list-for-dict", [1], dict_of(FLOAT), "input 'x': expected dict[str, float], got list [1]"),
    ("dict-key-not-str", {1: 1.0}, dict_of(FLOAT), "input 'x'[1]: expected a str key, got int 1"),
    (
        "dict-value-wrong",
        {"a": 1.0, "b": "no"},
        dict_of(FLOAT),
        "input 'x'['b']: expected float, got str 'no'",
    ),
    ("dict-value-overflow", {"a": 10**400}, dict_of(FLOAT), "input 'x'['a']: expected float, got int"),
    ("dict-value-int64", {"big": 2**64}, dict_of(INTEGER), "input 'x'['big']: expected integer, got int"),
    ("blob-empty", "", BLOB_CSV, "input 'x': expected blob(format='csv', single), got str ''"),
    ("blob-int", 3, BLOB_DIR, "input 'x': expected blob(multipart), got int 3"),
    ("blob-bytes", b"/tmp", BLOB_DIR, "input 'x': expected blob(multipart), got bytes"),
    ("dataset-int", 1, DATASET, "input 'x': expected structured_dataset(format='parquet'), got int 1"),
    ("enum-unknown", "c", ENUM_AB, "input 'x': expected enum['a', 'b'], got str 'c'"),
    ("enum-other-member", Color.RED, ENUM_AB, "input 'x': expected enum['a', 'b'], got Color"),
    ("union-no-variant", "x", OPTIONAL_INT, "input 'x': expected union[integer, none], got str 'x'"),
    (
        "union-none-not-allowed",
        None,
        INT_OR_STR,
        "input 'x': expected union[integer, string], got NoneType None",
    ),
    (
        "binary-unsupported",
        b"x",
        BINARY,
        "input 'x': expected a supported literal type, but binary is not supported",
    ),
    ("error-unsupported", "e", ERROR, "but error is not supported"),
    ("schema-unsupported", "s3://x", SCHEMA, "but schema is not supported"),
    ("unset-type", 1, types_pb2.LiteralType(), "but unset is not supported"),
]


@pytest.mark.parametrize(
    ("value", "literal_type", "message"),
    [case[1:] for case in TO_LITERAL_ERRORS],
    ids=[case[0] for case in TO_LITERAL_ERRORS],
)
def test_to_literal_errors(value: Any, literal_type: types_pb2.LiteralType, message: str) -> None:
    with pytest.raises(LiteralConversionError) as caught:
        to_literal(value, literal_type, path="input 'x'")
    assert message in str(caught.value)
    assert isinstance(caught.value, TypeError)


def test_error_attributes_and_truncated_repr() -> None:
    with pytest.raises(LiteralConversionError) as caught:
        to_literal("y" * 10_000, INTEGER, path="input 'big'")
    error = caught.value
    assert error.variable == "input 'big'"
    assert error.expected == "integer"
    assert error.given == "str '" + "y" * 59
    assert len(str(error)) < 120


# --------------------------------------------------------------------------------------------------------
# to_python: declared type contradicted by the literal, unions, inference errors
# --------------------------------------------------------------------------------------------------------


def _collection(*literals: literals_pb2.Literal) -> literals_pb2.Literal:
    return literals_pb2.Literal(collection=literals_pb2.LiteralCollection(literals=list(literals)))


def _map(**literals: literals_pb2.Literal) -> literals_pb2.Literal:
    return literals_pb2.Literal(map=literals_pb2.LiteralMap(literals=literals))


TO_PYTHON_ERRORS: list[tuple[str, literals_pb2.Literal, types_pb2.LiteralType, str]] = [
    ("int-for-string", scalar_literal(integer=3), STRING, "value: expected string, got integer literal 3"),
    (
        "string-for-int",
        scalar_literal(string_value="x"),
        INTEGER,
        "value: expected integer, got string literal 'x'",
    ),
    (
        "string-for-list",
        scalar_literal(string_value="x"),
        list_of(INTEGER),
        "expected list[integer], got string literal",
    ),
    (
        "list-for-map",
        _collection(),
        dict_of(INTEGER),
        "value: expected dict[str, integer], got collection literal",
    ),
    ("map-for-struct", _map(), STRUCT, "value: expected struct, got map literal"),
    ("int-for-none", scalar_literal(integer=0), NONE, "value: expected none, got integer literal 0"),
    ("none-for-int", none_literal(), INTEGER, "value: expected integer, got none literal"),
    (
        "bad-element",
        _collection(scalar_literal(integer=1), scalar_literal(string_value="x")),
        list_of(INTEGER),
        "value[1]: expected integer, got string literal 'x'",
    ),
    (
        "bad-nested-element",
        _collection(_collection(scalar_literal(boolean=True))),
        list_of(list_of(DATETIME)),
        "value[0][0]: expected datetime, got boolean literal True",
    ),
    (
        "bad-map-value",
        _map(a=scalar_literal(float_value=1.0), b=scalar_literal(integer=2)),
        dict_of(FLOAT),
        "value['b']: expected float, got integer literal 2",
    ),
    (
        "int-for-blob",
        scalar_literal(integer=1),
        BLOB_CSV,
        "value: expected blob(format='csv', single), got integer",
    ),
    ("int-for-dataset", scalar_literal(integer=1), DATASET, "expected structured_dataset(format='parquet')"),
    (
        "enum-unknown-value",
        scalar_literal(string_value="z"),
        ENUM_AB,
        "value: expected enum['a', 'b'], got string",
    ),
    ("empty-literal", literals_pb2.Literal(), INTEGER, "value: expected integer, got empty literal"),
    (
        "union-no-variant",
        scalar_literal(string_value="s"),
        OPTIONAL_INT,
        "expected union[integer, none], got string",
    ),
    (
        "union-stored-type-foreign",
        literals_pb2.Literal(
            scalar=literals_pb2.Scalar(
                union=literals_pb2.Union(value=scalar_literal(string_value="s"), type=STRING)
            )
        ),
        OPTIONAL_INT,
        "value: expected union[integer, none], got union literal holding string",
    ),
    ("binary-declared", scalar_literal(integer=1), BINARY, "but binary is not supported"),
]


@pytest.mark.parametrize(
    ("literal", "literal_type", "message"),
    [case[1:] for case in TO_PYTHON_ERRORS],
    ids=[case[0] for case in TO_PYTHON_ERRORS],
)
def test_to_python_errors(
    literal: literals_pb2.Literal, literal_type: types_pb2.LiteralType, message: str
) -> None:
    with pytest.raises(LiteralConversionError) as caught:
        to_python(literal, literal_type)
    assert message in str(caught.value)


def test_to_python_path_is_used() -> None:
    with pytest.raises(LiteralConversionError, match=r"^output 'y': expected integer"):
        to_python(scalar_literal(string_value="x"), INTEGER, path="output 'y'")


INFERENCE_ERRORS: list[tuple[str, literals_pb2.Literal, str]] = [
    ("empty", literals_pb2.Literal(), "value: expected a supported literal"),
    (
        "binary",
        literals_pb2.Literal(scalar=literals_pb2.Scalar(binary=literals_pb2.Binary(value=b"x"))),
        "got binary literal",
    ),
    (
        "nested-binary",
        _collection(
            scalar_literal(integer=1),
            literals_pb2.Literal(scalar=literals_pb2.Scalar(binary=literals_pb2.Binary(value=b"x"))),
        ),
        "value[1]: expected a supported literal",
    ),
    ("empty-primitive", scalar_literal(), "got empty primitive literal"),
]


@pytest.mark.parametrize(
    ("literal", "message"),
    [case[1:] for case in INFERENCE_ERRORS],
    ids=[case[0] for case in INFERENCE_ERRORS],
)
def test_inference_errors(literal: literals_pb2.Literal, message: str) -> None:
    with pytest.raises(LiteralConversionError) as caught:
        to_python(literal)
    assert message in str(caught.value)


def test_union_literal_written_with_foreign_tags_reads_by_shape() -> None:
    # flytekit tags Optional[int]'s variants "int" / "none"; our declared variants say "integer" / "none".
    flytekit_variant = types_pb2.LiteralType(
        simple=types_pb2.INTEGER, structure=types_pb2.TypeStructure(tag="int")
    )
    literal = literals_pb2.Literal(
        scalar=literals_pb2.Scalar(
            union=literals_pb2.Union(value=scalar_literal(integer=9), type=flytekit_variant)
        )
    )
    assert to_python(literal, OPTIONAL_INT) == 9
    assert to_python(literal) == 9


@pytest.mark.parametrize(
    ("literal", "expected"),
    [(scalar_literal(integer=4), 4), (none_literal(), None)],
    ids=["bare-int", "bare-none"],
)
def test_union_accepts_unwrapped_literal(literal: literals_pb2.Literal, expected: Any) -> None:
    assert to_python(literal, OPTIONAL_INT) == expected


def test_union_literal_without_stored_type_is_inferred() -> None:
    literal = literals_pb2.Literal(
        scalar=literals_pb2.Scalar(union=literals_pb2.Union(value=scalar_literal(string_value="v")))
    )
    assert to_python(literal) == "v"
    assert to_python(literal, INT_OR_STR) == "v"


def test_inference_of_mixed_collection_and_map() -> None:
    literal = _collection(
        scalar_literal(integer=1),
        scalar_literal(string_value="s"),
        none_literal(),
        _map(k=scalar_literal(boolean=True), d=scalar_literal()),
    )
    literal.collection.literals[3].map.literals["d"].scalar.primitive.duration.FromTimedelta(
        datetime.timedelta(seconds=2)
    )
    assert to_python(literal) == [1, "s", None, {"k": True, "d": datetime.timedelta(seconds=2)}]


# --------------------------------------------------------------------------------------------------------
# Literal maps against interfaces
# --------------------------------------------------------------------------------------------------------


def variable_map(**types: types_pb2.LiteralType) -> interface_pb2.VariableMap:
    return interface_pb2.VariableMap(
        variables={name: interface_pb2.Variable(type=t, description=name) for name, t in types.items()}
    )


def test_to_literal_map_converts_every_variable() -> None:
    variables = variable_map(a=INTEGER, b=list_of(STRING), c=OPTIONAL_INT)
    literal_map = to_literal_map({"a": 1, "b": ["x"], "c": 2}, variables)
    assert set(literal_map.literals) == {"a", "b", "c"}
    assert literal_map.literals["a"].scalar.primitive.integer == 1
    assert literal_map.literals["b"].collection.literals[0].scalar.primitive.string_value == "x"
    assert literal_map.literals["c"].scalar.union.value.scalar.primitive.integer == 2
    assert from_literal_map(literal_map, variables, kind="input") == {"a": 1, "b": ["x"], "c": 2}


@pytest.mark.parametrize(
    ("literal_type", "shape_check"),
    [
        (OPTIONAL_INT, lambda lit: lit.scalar.union.value.scalar.WhichOneof("value") == "none_type"),
        (NONE, lambda lit: lit.scalar.WhichOneof("value") == "none_type"),
    ],
    ids=["optional", "none-type"],
)
def test_to_literal_map_missing_none_admitting_variable_is_none(
    literal_type: types_pb2.LiteralType, shape_check: typing.Callable[[literals_pb2.Literal], bool]
) -> None:
    variables = variable_map(a=INTEGER, maybe=literal_type)
    literal_map = to_literal_map({"a": 1}, variables)
    assert shape_check(literal_map.literals["maybe"])
    assert from_literal_map(literal_map, variables) == {"a": 1, "maybe": None}


@pytest.mark.parametrize(
    ("values", "kind", "message"),
    [
        ({"a": 1}, "input", "missing input 'b'; declared inputs: 'a', 'b', 'opt'"),
        ({}, "input", "missing inputs 'a', 'b'; declared inputs: 'a', 'b', 'opt'"),
        ({"a": 1, "b": "x", "z": 0}, "input", "unknown input 'z'; declared inputs: 'a', 'b', 'opt'"),
        (
            {"a": 1, "b": "x", "z": 0, "y": 1},
            "input",
            "unknown inputs 'y', 'z'; declared inputs: 'a', 'b', 'opt'",
        ),
        ({"a": 1}, "output", "missing output 'b'; declared outputs: 'a', 'b', 'opt'"),
        ({"a": 1, "b": "x", 3: 0}, "input", "unknown input 3; declared inputs"),
    ],
    ids=["missing-one", "missing-two", "unknown-one", "unknown-two", "output-kind", "non-str-key"],
)
def test_to_literal_map_interface_mismatch(values: dict[Any, Any], kind: str, message: str) -> None:
    variables = variable_map(a=INTEGER, b=STRING, opt=OPTIONAL_INT)
    with pytest.raises(InterfaceMismatchError) as caught:
        to_literal_map(values, variables, kind=kind)
    assert message in str(caught.value)


def test_to_literal_map_without_declared_variables() -> None:
    with pytest.raises(InterfaceMismatchError, match=r"unknown input 'x'; declared inputs: \(none\)"):
        to_literal_map({"x": 1}, interface_pb2.VariableMap())
    assert len(to_literal_map({}, interface_pb2.VariableMap()).literals) == 0


def test_to_literal_map_value_error_names_the_variable() -> None:
    variables = variable_map(xs=list_of(INTEGER))
    with pytest.raises(LiteralConversionError, match=r"^output 'xs'\[1\]: expected integer, got str 'b'$"):
        to_literal_map({"xs": [1, "b"]}, variables, kind="output")


def test_from_literal_map_declared_and_extra() -> None:
    literal_map = literals_pb2.LiteralMap(
        literals={
            "x": to_literal([1.5], list_of(FLOAT), path="p"),
            "extra": to_literal({"k": "v"}, dict_of(STRING), path="p"),
        }
    )
    result = from_literal_map(literal_map, variable_map(x=list_of(FLOAT)))
    assert result == {"x": [1.5], "extra": {"k": "v"}}
    assert from_literal_map(literal_map) == {"x": [1.5], "extra": {"k": "v"}}


def test_from_literal_map_missing_output() -> None:
    literal_map = literals_pb2.LiteralMap(literals={"x": scalar_literal(integer=1)})
    with pytest.raises(InterfaceMismatchError) as caught:
        from_literal_map(literal_map, variable_map(x=INTEGER, y=STRING))
    assert str(caught.value) == (
        "output 'y' is missing from the literal map (it holds: 'x'; declared outputs: 'x', 'y')"
    )


def test_from_literal_map_type_error_names_the_output() -> None:
    literal_map = literals_pb2.LiteralMap(literals={"x": scalar_literal(string_value="a")})
    with pytest.raises(
        LiteralConversionError, match=r"^output 'x': expected integer, got string literal 'a'$"
    ):
        from_literal_map(literal_map, variable_map(x=INTEGER))


# --------------------------------------------------------------------------------------------------------
# Python annotations -> literal types
# --------------------------------------------------------------------------------------------------------

ANNOTATIONS: list[tuple[str, Any, types_pb2.LiteralType]] = [
    ("int", int, INTEGER),
    ("float", float, FLOAT),
    ("str", str, STRING),
    ("bool", bool, BOOLEAN),
    ("datetime", datetime.datetime, DATETIME),
    ("timedelta", datetime.timedelta, DURATION),
    ("None", None, NONE),
    ("NoneType", type(None), NONE),
    ("list[int]", list[int], list_of(INTEGER)),
    ("typing.List[str]", typing.List[str], list_of(STRING)),  # noqa: UP006
    ("dict[str, float]", dict[str, float], dict_of(FLOAT)),
    ("typing.Dict[str, bool]", typing.Dict[str, bool], dict_of(BOOLEAN)),  # noqa: UP006
    ("bare-dict", dict, STRUCT_MSGPACK),
    ("bare-typing-Dict", typing.Dict, STRUCT_MSGPACK),  # noqa: UP006
    ("Optional[int]", typing.Optional[int], OPTIONAL_INT),  # noqa: UP045
    ("int | None", int | None, OPTIONAL_INT),
    ("Union[int, str]", typing.Union[int, str], INT_OR_STR),  # noqa: UP007
    ("Union[int, str, None]", typing.Union[int, str, None], union_of(INTEGER, STRING, NONE)),  # noqa: UP007
    ("list[int | None]", list[int | None], list_of(OPTIONAL_INT)),
    ("dict[str, list[datetime]]", dict[str, list[datetime.datetime]], dict_of(list_of(DATETIME))),
    (
        "list[dict[str, int]] | None",
        list[dict[str, int]] | None,
        union_of(list_of(dict_of(INTEGER)), NONE),
    ),
    ("Enum", Color, types_pb2.LiteralType(enum_type=types_pb2.EnumType(values=["red", "green"]))),
    ("int-Enum", Level, types_pb2.LiteralType(enum_type=types_pb2.EnumType(values=["1"]))),
    ("date", datetime.date, DATETIME),
]


@pytest.mark.parametrize(
    ("annotation", "expected"), [case[1:] for case in ANNOTATIONS], ids=[case[0] for case in ANNOTATIONS]
)
def test_literal_type_from_python(annotation: Any, expected: types_pb2.LiteralType) -> None:
    assert literal_type_from_python(annotation) == expected


def test_union_variants_are_tagged_like_flytekit() -> None:
    union = literal_type_from_python(int | list[str] | None)
    assert [v.structure.tag for v in union.union_type.variants] == ["integer", "list[string]", "none"]


def test_annotation_values_round_trip() -> None:
    literal_type = literal_type_from_python(dict[str, list[int | None]])
    value = {"a": [1, None], "b": []}
    assert to_python(to_literal(value, literal_type, path="input 'm'"), literal_type) == value
    enum_type = literal_type_from_python(Color)
    assert to_python(to_literal(Color.GREEN, enum_type, path="input 'c'"), enum_type) == "green"


UNSUPPORTED_ANNOTATIONS: list[tuple[str, Any, str]] = [
    (
        "set[int]",
        set[int],
        "type: expected a supported type (int, float, str, bool, datetime, date, timedelta, None, "
        "list[T], dict[str, T], dict, Optional[T], an Enum, a dataclass, a pydantic model, pandas.DataFrame, "
        "pyarrow.Table, File, Directory), got set[int]",
    ),
    ("custom-class", Custom, "type: expected a supported type"),
    ("bytes", bytes, "got <class 'bytes'>"),
    ("bare-list", list, "got <class 'list'>"),
    ("tuple[int]", tuple[int], "Flyte has no tuple type (flytekit refuses tuple too); return a NamedTuple"),
    ("Any", typing.Any, "got typing.Any"),
    ("int-key-dict", dict[int, str], "type dict key: expected str, got <class 'int'>"),
    ("nested-unsupported", list[set[int]], "type list element: expected a supported type"),
    ("nested-in-union", int | set[int], "type union variant: expected a supported type"),
    ("nested-in-dict-value", dict[str, Custom], "type dict value: expected a supported type"),
    ("bool-enum", Switch, "type: expected an Enum whose values are all str or all int"),
    ("unhashable", [int], "got [<class 'int'>]"),
]


@pytest.mark.parametrize(
    ("annotation", "message"),
    [case[1:] for case in UNSUPPORTED_ANNOTATIONS],
    ids=[case[0] for case in UNSUPPORTED_ANNOTATIONS],
)
def test_literal_type_from_python_unsupported(annotation: Any, message: str) -> None:
    with pytest.raises(LiteralConversionError) as caught:
        literal_type_from_python(annotation)
    assert message in str(caught.value)


def test_literal_type_from_python_path() -> None:
    with pytest.raises(LiteralConversionError, match=r"^input 'x': expected a supported type"):
        literal_type_from_python(Custom, path="input 'x'")


def test_interface_from_python() -> None:
    interface = interface_from_python({"x": int, "ys": list[float]}, {"out": str | None})
    assert set(interface.inputs.variables) == {"x", "ys"}
    assert interface.inputs.variables["x"].type == INTEGER
    assert interface.inputs.variables["x"].description == "x"
    assert interface.inputs.variables["ys"].type == list_of(FLOAT)
    assert interface.outputs.variables["out"].type == union_of(STRING, NONE)
    assert interface.outputs.variables["out"].description == "out"


def test_interface_from_python_empty_sides_are_set() -> None:
    interface = interface_from_python({}, {})
    assert interface.HasField("inputs")
    assert interface.HasField("outputs")
    assert len(interface.inputs.variables) == 0


def test_interface_from_python_error_names_variable() -> None:
    with pytest.raises(LiteralConversionError, match=r"^output 'bad': expected a supported type"):
        interface_from_python({"ok": int}, {"bad": Custom})


def test_interface_drives_to_literal_map() -> None:
    interface = interface_from_python({"n": int, "when": datetime.datetime, "opt": str | None}, {})
    literal_map = to_literal_map({"n": 3, "when": "2024-01-01T00:00:00Z"}, interface.inputs)
    assert from_literal_map(literal_map, interface.inputs, kind="input") == {
        "n": 3,
        "when": datetime.datetime(2024, 1, 1, tzinfo=UTC),
        "opt": None,
    }


# --------------------------------------------------------------------------------------------------------
# describe_type / type_admits_none
# --------------------------------------------------------------------------------------------------------

DESCRIPTIONS: list[tuple[types_pb2.LiteralType, str]] = [
    (INTEGER, "integer"),
    (FLOAT, "float"),
    (STRING, "string"),
    (BOOLEAN, "boolean"),
    (DATETIME, "datetime"),
    (DURATION, "duration"),
    (NONE, "none"),
    (STRUCT, "struct"),
    (BINARY, "binary"),
    (ERROR, "error"),
    (list_of(INTEGER), "list[integer]"),
    (dict_of(FLOAT), "dict[str, float]"),
    (list_of(dict_of(list_of(STRING))), "list[dict[str, list[string]]]"),
    (BLOB_CSV, "blob(format='csv', single)"),
    (BLOB_DIR, "blob(multipart)"),
    (types_pb2.LiteralType(blob=types_pb2.BlobType()), "blob(single)"),
    (DATASET, "structured_dataset(format='parquet')"),
    (types_pb2.LiteralType(structured_dataset_type=types_pb2.StructuredDatasetType()), "structured_dataset"),
    (OPTIONAL_INT, "union[integer, none]"),
    (union_of(list_of(INTEGER), STRING), "union[list[integer], string]"),
    (ENUM_AB, "enum['a', 'b']"),
    (SCHEMA, "schema"),
    (types_pb2.LiteralType(), "unset"),
]


@pytest.mark.parametrize(("literal_type", "expected"), DESCRIPTIONS, ids=[d[1] for d in DESCRIPTIONS])
def test_describe_type(literal_type: types_pb2.LiteralType, expected: str) -> None:
    assert describe_type(literal_type) == expected


@pytest.mark.parametrize(
    ("literal_type", "expected"),
    [
        (NONE, True),
        (OPTIONAL_INT, True),
        (union_of(STRING, union_of(INTEGER, NONE)), True),
        (INT_OR_STR, False),
        (INTEGER, False),
        (list_of(NONE), False),
        (STRUCT, False),
        (types_pb2.LiteralType(), False),
    ],
    ids=[
        "none",
        "optional",
        "nested-union",
        "union-without-none",
        "integer",
        "list-of-none",
        "struct",
        "unset",
    ],
)
def test_type_admits_none(literal_type: types_pb2.LiteralType, expected: bool) -> None:
    assert type_admits_none(literal_type) is expected


# --------------------------------------------------------------------------------------------------------
# Hostile values: what protobuf would write but nobody could read back (or JSON could not hold)
# --------------------------------------------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")


def _outputs(**literals: literals_pb2.Literal) -> literals_pb2.LiteralMap:
    return literals_pb2.LiteralMap(literals=literals)


NON_FINITE_OUTPUTS: list[tuple[str, types_pb2.LiteralType, Any, str]] = [
    (
        "float",
        FLOAT,
        NAN,
        "output 'o0': expected a finite number (JSON has no NaN or infinity, so neither a Struct nor XCom holds one), got float nan",
    ),
    ("list", list_of(FLOAT), [1.0, INF], "output 'o0'[1]: expected a finite number"),
    ("dict", dict_of(FLOAT), {"a": 1.0, "b": -INF}, "output 'o0'['b']: expected a finite number"),
    (
        "nested",
        list_of(dict_of(list_of(FLOAT))),
        [{"k": [0.5, NAN]}],
        "output 'o0'[0]['k'][1]: expected a finite number",
    ),
    ("optional", union_of(FLOAT, NONE), NAN, "output 'o0': expected a finite number"),
]


@pytest.mark.parametrize(
    ("literal_type", "value", "message"),
    [c[1:] for c in NON_FINITE_OUTPUTS],
    ids=[c[0] for c in NON_FINITE_OUTPUTS],
)
def test_non_finite_outputs_are_refused_naming_the_output(
    literal_type: types_pb2.LiteralType, value: Any, message: str
) -> None:
    variables = variable_map(o0=literal_type)
    literal_map = to_literal_map({"o0": value}, variables, kind="output")  # protobuf can carry them
    for declared in (variables, None):
        with pytest.raises(LiteralConversionError) as caught:
            from_literal_map(literal_map, declared)
        assert str(caught.value).startswith(message)
    # Inputs may carry them (a task computing with NaN is fine): read as they are.
    back = from_literal_map(literal_map, variables, kind="input")["o0"]
    assert json.dumps(back, sort_keys=True) == json.dumps(value, sort_keys=True)  # NaN != NaN: compare text


def test_a_json_struct_cannot_hold_nan_naming_the_path() -> None:
    with pytest.raises(LiteralConversionError, match=r"^input 's'\['a'\]\[1\]: expected a finite number"):
        to_literal({"a": [1, NAN]}, STRUCT, path="input 's'")


def test_a_struct_written_with_nan_by_another_producer() -> None:
    literal = literals_pb2.Literal()
    literal.scalar.generic.update({"a": {"b": NAN}})  # protobuf's binary form holds it
    assert math.isnan(to_python(literal, STRUCT)["a"]["b"])
    with pytest.raises(LiteralConversionError, match=r"^output 'o0'\['a'\]\['b'\]: expected a finite number"):
        from_literal_map(_outputs(o0=literal), variable_map(o0=STRUCT))


SURROGATES: list[tuple[str, Any, types_pb2.LiteralType, str]] = [
    ("string", "a\ud800", STRING, "input 'x'"),
    ("list-fast-path", ["ok", "b\udfff"], list_of(STRING), "input 'x'[1]"),
    ("list-slow-path", [["ok"], ["\ud800"]], list_of(list_of(STRING)), "input 'x'[1][0]"),
    ("map-key-fast-path", {"ok": 1, "k\ud800": 2}, dict_of(INTEGER), "input 'x'['k\\ud800']"),
    ("map-value-fast-path", {"k": "\ud800"}, dict_of(STRING), "input 'x'['k']"),
    ("map-key-slow-path", {"k\ud800": [1]}, dict_of(list_of(INTEGER)), "input 'x'['k\\ud800']"),
    ("struct-value", {"a": {"b": ["\ud800"]}}, STRUCT, "input 'x'['a']['b'][0]"),
    ("struct-key", {"a": {"\ud800": 1}}, STRUCT, "input 'x'['a']['\\ud800']"),
    ("union", "\ud800", INT_OR_STR, "input 'x'"),
    ("blob", "s3://b/\ud800", BLOB_CSV, "input 'x'"),
]


@pytest.mark.parametrize(
    ("value", "literal_type", "where"), [c[1:] for c in SURROGATES], ids=[c[0] for c in SURROGATES]
)
def test_lone_surrogates_are_refused_naming_the_path(
    value: Any, literal_type: types_pb2.LiteralType, where: str
) -> None:
    with pytest.raises(LiteralConversionError) as caught:
        to_literal(value, literal_type, path="input 'x'")
    assert str(caught.value).startswith(
        f"{where}: expected a string encodable as UTF-8 (no lone surrogates), got str"
    )


def test_a_surrogate_in_one_variable_names_that_variable() -> None:
    with pytest.raises(
        LiteralConversionError, match=r"^input 'b'\[0\]: expected a string encodable as UTF-8"
    ):
        to_literal_map({"a": "fine", "b": ["\ud83d"]}, variable_map(a=STRING, b=list_of(STRING)))
