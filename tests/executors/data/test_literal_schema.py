"""STRUCT values checked against the JSON schema of their literal type's metadata, both ways."""

from __future__ import annotations

from typing import Any

import pytest
from flyteidl.core import interface_pb2, literals_pb2, types_pb2

from executors.core.errors import LiteralConversionError
from executors.data.literal_msgpack import annotate_msgpack
from executors.data.literal_schema import check_schema, field_path
from executors.data.literals import from_literal_map, to_literal, to_python

# The schema flytekit (mashumaro) writes for @dataclass Point(x: int, y: float, label: str = "p").
POINT = {
    "title": "Point",
    "type": "object",
    "required": ["x", "y"],
    "properties": {
        "label": {"type": "string", "default": "p"},
        "x": {"type": "integer"},
        "y": {"type": "number"},
    },
    "additionalProperties": False,
}
SHAPE = {
    "title": "Shape",
    "type": "object",
    "required": ["center"],
    "properties": {
        "center": POINT,
        "points": {"type": "array", "items": POINT},
        "maybe": {"default": None, "anyOf": [POINT, {"type": "null"}]},
        "tags": {"type": "object", "additionalProperties": {"type": "integer"}},
        "color": {"enum": ["red", "green"]},
        "odd key": {"type": "string"},
    },
    "additionalProperties": False,
}
# pydantic's: definitions under $defs, referenced.
MODEL = {
    "title": "M",
    "type": "object",
    "required": ["a"],
    "properties": {"a": {"type": "integer"}, "p": {"anyOf": [{"$ref": "#/$defs/Point"}, {"type": "null"}]}},
    "$defs": {"Point": POINT},
}


def typed(schema: dict[str, Any], *, msgpack: bool = True) -> types_pb2.LiteralType:
    literal_type = types_pb2.LiteralType(simple=types_pb2.STRUCT)
    literal_type.metadata.update(schema)
    return annotate_msgpack(literal_type) if msgpack else literal_type


@pytest.mark.parametrize("msgpack", [True, False], ids=["msgpack", "struct"])
def test_valid_values_pass_both_ways(msgpack: bool) -> None:
    literal_type = typed(SHAPE, msgpack=msgpack)
    value = {
        "center": {"x": 1, "y": 2},
        "points": [{"x": 1, "y": 1.5, "label": "q"}],
        "maybe": None,
        "tags": {"a": 1},
    }
    literal = to_literal(value, literal_type, path="input 's'")
    assert to_python(literal, literal_type) == value


WRITE_ERRORS: list[tuple[str, dict[str, Any], Any, str]] = [
    ("wrong-type", POINT, {"x": "one", "y": 1.0}, "input 'p'.x: expected integer, got str 'one'"),
    ("bool-is-no-int", POINT, {"x": True, "y": 1.0}, "input 'p'.x: expected integer, got bool True"),
    ("missing", POINT, {"x": 1}, "input 'p'.y: expected a value (a required field), got nothing"),
    (
        "extra",
        POINT,
        {"x": 1, "y": 2.0, "z": 3},
        "input 'p'.z: expected no such field (declared fields: label, x, y), got int 3",
    ),
    ("nested", SHAPE, {"center": {"x": 1.5, "y": 0}}, "input 'p'.center.x: expected integer, got float 1.5"),
    (
        "list-element",
        SHAPE,
        {"center": {"x": 1, "y": 0}, "points": [{"x": 1, "y": 0}, {"x": 1}]},
        "input 'p'.points[1].y: expected a value (a required field)",
    ),
    (
        "optional",
        SHAPE,
        {"center": {"x": 1, "y": 0}, "maybe": {"x": "a", "y": 0}},
        "input 'p'.maybe.x: expected integer, got str 'a'",
    ),
    (
        "map-value",
        SHAPE,
        {"center": {"x": 1, "y": 0}, "tags": {"a": "b"}},
        "input 'p'.tags.a: expected integer, got str 'b'",
    ),
    (
        "enum",
        SHAPE,
        {"center": {"x": 1, "y": 0}, "color": "blue"},
        "input 'p'.color: expected one of ['red', 'green'], got str 'blue'",
    ),
    (
        "odd-key",
        SHAPE,
        {"center": {"x": 1, "y": 0}, "odd key": 1},
        "input 'p'['odd key']: expected string, got int 1",
    ),
    ("ref", MODEL, {"a": 1, "p": {"x": 1, "y": "no"}}, "input 'p'.p.y: expected number, got str 'no'"),
    ("top-required", MODEL, {}, "input 'p'.a: expected a value (a required field), got nothing"),
]


@pytest.mark.parametrize(
    ("schema", "value", "message"), [c[1:] for c in WRITE_ERRORS], ids=[c[0] for c in WRITE_ERRORS]
)
def test_write_errors_name_the_field(schema: dict[str, Any], value: Any, message: str) -> None:
    with pytest.raises(LiteralConversionError) as caught:
        to_literal(value, typed(schema), path="input 'p'")
    assert str(caught.value).startswith(message), str(caught.value)


def test_read_errors_name_the_output_field() -> None:
    literal = to_literal(
        {"x": "one", "y": 1.0}, annotate_msgpack(types_pb2.LiteralType(simple=types_pb2.STRUCT)), path="p"
    )
    variables = interface_pb2.VariableMap()
    variables.variables["o0"].type.CopyFrom(typed(POINT))
    with pytest.raises(LiteralConversionError, match=r"^output 'o0'\.x: expected integer, got str 'one'$"):
        from_literal_map(literals_pb2.LiteralMap(literals={"o0": literal}), variables)


def test_json_schema_number_semantics_hold() -> None:
    """An int is a valid number; a whole float a valid integer (an old flytekit Struct holds 1.0)."""
    literal_type = typed(POINT)
    assert to_python(to_literal({"x": 1, "y": 2}, literal_type, path="p"), literal_type) == {"x": 1, "y": 2}
    struct_type = typed(POINT, msgpack=False)
    literal = to_literal({"x": 1, "y": 2}, struct_type, path="p")  # a JSON Struct: both come back as floats
    assert to_python(literal, struct_type) == {"x": 1.0, "y": 2.0}


def test_a_tuple_is_an_array() -> None:
    literal_type = typed(
        {"type": "object", "properties": {"t": {"type": "array", "items": {"type": "integer"}}}}
    )
    assert to_python(to_literal({"t": (1, 2)}, literal_type, path="p"), literal_type) == {"t": [1, 2]}


@pytest.mark.parametrize(
    "schema",
    [{"type": 12}, {"$ref": "https://example.invalid/schema.json"}, {"anything": "goes"}],
    ids=["invalid", "remote-ref", "free-form"],
)
def test_metadata_that_is_no_usable_schema_checks_nothing(schema: dict[str, Any]) -> None:
    literal_type = typed(schema)
    assert to_python(to_literal({"a": 1}, literal_type, path="p"), literal_type) == {"a": 1}


def test_without_metadata_nothing_is_checked() -> None:
    check_schema({"anything": object()}, types_pb2.LiteralType(simple=types_pb2.STRUCT), "p")


def test_field_path() -> None:
    assert field_path("input 'p'", ["a", 0, "b c", "_d"]) == "input 'p'.a[0]['b c']._d"


def test_a_remote_ref_is_never_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.request

    fetched: list[Any] = []
    monkeypatch.setattr(urllib.request, "urlopen", lambda *args, **kwargs: fetched.append(args))
    literal_type = typed({"type": "object", "properties": {"a": {"$ref": "https://example.invalid/a.json"}}})
    assert to_python(to_literal({"a": 1}, literal_type, path="p"), literal_type) == {"a": 1}
    assert fetched == []


def _samples() -> list[Any]:
    point = {"x": 1, "y": 2.5}
    values: list[Any] = [
        point,
        {"x": 1.0, "y": 2},
        {"x": 1.5, "y": 2},
        {"x": True, "y": 1},
        {"x": 1},
        {"x": 1, "y": 1, "z": 0},
        {"x": 1, "y": None},
        {"x": 1, "y": 1, "label": 3},
        {"center": point},
        {"center": point, "points": [point, {"x": "a", "y": 1}]},
        {"center": point, "points": (point,)},
        {"center": point, "maybe": None},
        {"center": point, "maybe": {"x": 1}},
        {"center": point, "tags": {"a": 1, "b": 2.0}},
        {"center": point, "tags": {"a": "b"}},
        {"center": point, "color": "red"},
        {"center": point, "color": "RED"},
        {"center": point, "odd key": "v"},
        {"a": 1},
        {"a": 1, "p": point},
        {"a": 1, "p": {"x": "1", "y": 1}},
        {"a": "1"},
        {},
        [],
        None,
        "text",
        3,
    ]
    return values


@pytest.mark.parametrize("schema", [POINT, SHAPE, MODEL], ids=["dataclass", "nested", "pydantic-refs"])
def test_the_fast_predicate_agrees_with_jsonschema(schema: dict[str, Any]) -> None:
    from executors.data import literal_schema

    full, fast = literal_schema._validator(typed(schema))
    assert fast is not None  # flytekit's schemas are covered
    for value in _samples():
        assert fast(value) == full.is_valid(value), value


def test_the_fixture_schemas_are_covered_by_the_fast_predicate() -> None:
    from executors.data import literal_schema
    from tests.executors.data.test_literal_fixtures import VARIABLES

    def structs(literal_type: types_pb2.LiteralType) -> list[types_pb2.LiteralType]:
        kind = literal_type.WhichOneof("type")
        if kind == "collection_type":
            return structs(literal_type.collection_type)
        if kind == "map_value_type":
            return structs(literal_type.map_value_type)
        if kind == "union_type":
            return [t for v in literal_type.union_type.variants for t in structs(v)]
        return [literal_type] if literal_type.metadata.fields else []

    found = [t for v in VARIABLES.variables.values() for t in structs(v.type)]
    assert len(found) >= 5
    for literal_type in found:
        assert literal_schema._validator(literal_type)[1] is not None


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "patternProperties": {"^a": {"type": "integer"}}},
        {"type": "array", "minItems": 1},
        {"oneOf": [{"type": "integer"}]},
        {
            "$ref": "#/$defs/Node",
            "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
        },
    ],
    ids=["pattern-properties", "min-items", "one-of", "recursive"],
)
def test_schemas_beyond_the_predicate_are_still_checked(schema: dict[str, Any]) -> None:
    from executors.data import literal_schema

    full, fast = literal_schema._validator(typed(schema))
    assert fast is None and full is not None
