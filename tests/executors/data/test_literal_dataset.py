"""Structured datasets as typed references: the producer's format and columns survive XCom."""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any

import pytest
from flyteidl.core import interface_pb2, literals_pb2, types_pb2

from executors.core.errors import LiteralConversionError
from executors.data.literals import from_literal_map, to_literal, to_literal_map, to_python

COLUMNS = [
    types_pb2.StructuredDatasetType.DatasetColumn(
        name="a", literal_type=types_pb2.LiteralType(simple=types_pb2.INTEGER)
    ),
    types_pb2.StructuredDatasetType.DatasetColumn(
        name="tags",
        literal_type=types_pb2.LiteralType(collection_type=types_pb2.LiteralType(simple=types_pb2.STRING)),
    ),
]
# What a flytekit producer declares for Annotated[pd.DataFrame, kwtypes(a=int, tags=list[str])]: no format.
PRODUCER_TYPE = types_pb2.LiteralType(
    structured_dataset_type=types_pb2.StructuredDatasetType(columns=COLUMNS)
)
# A consumer declaring a bare dataset: no format, no columns.
CONSUMER_TYPE = types_pb2.LiteralType(structured_dataset_type=types_pb2.StructuredDatasetType())
PARQUET = types_pb2.LiteralType(structured_dataset_type=types_pb2.StructuredDatasetType(format="parquet"))

REFERENCE = {
    "uri": "s3://bucket/df",
    "format": "parquet",
    "columns": [
        {"name": "a", "type": {"simple": "INTEGER"}},
        {"name": "tags", "type": {"collectionType": {"simple": "STRING"}}},
    ],
}


def producer_literal() -> literals_pb2.Literal:
    """As flytekit writes it: the format (parquet) in the literal only, not in the declared type."""
    literal = literals_pb2.Literal()
    dataset = literal.scalar.structured_dataset
    dataset.uri = "s3://bucket/df"
    dataset.metadata.structured_dataset_type.CopyFrom(PRODUCER_TYPE.structured_dataset_type)
    dataset.metadata.structured_dataset_type.format = "parquet"
    return literal


@pytest.mark.parametrize(
    "declared", [PRODUCER_TYPE, CONSUMER_TYPE, None], ids=["producer", "consumer", "inferred"]
)
def test_a_dataset_reads_as_its_typed_reference(declared: types_pb2.LiteralType | None) -> None:
    assert to_python(producer_literal(), declared) == REFERENCE


def test_the_reference_survives_xcom_and_rebuilds_the_producers_literal() -> None:
    """Producer -> XCom (JSON) -> consumer: the consumer's literal carries the producer's metadata,
    not its own bare declared type."""
    through_xcom = json.loads(json.dumps(to_python(producer_literal(), PRODUCER_TYPE)))
    consumer = to_literal(through_xcom, CONSUMER_TYPE, path="input 'df'")
    assert consumer == producer_literal()


def test_a_reference_with_nothing_set_has_every_key() -> None:
    literal = literals_pb2.Literal()
    literal.scalar.structured_dataset.uri = "file:///d"
    assert to_python(literal, CONSUMER_TYPE) == {"uri": "file:///d", "format": "", "columns": []}


@pytest.mark.parametrize("value", ["gs://b/d", PurePosixPath("/data/d")], ids=["str", "path"])
def test_a_uri_takes_the_declared_metadata(value: Any) -> None:
    literal = to_literal(value, PARQUET, path="input 'df'")
    assert literal.scalar.structured_dataset.uri == str(value)
    assert (
        literal.scalar.structured_dataset.metadata.structured_dataset_type == PARQUET.structured_dataset_type
    )


def test_missing_keys_of_a_reference_come_from_the_declared_type() -> None:
    literal = to_literal({"uri": "gs://b/d"}, PARQUET, path="input 'df'")
    assert literal.scalar.structured_dataset.metadata.structured_dataset_type.format == "parquet"
    literal = to_literal({"uri": "gs://b/d", "format": ""}, PARQUET, path="input 'df'")
    assert literal.scalar.structured_dataset.metadata.structured_dataset_type.format == ""


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            {"format": "parquet"},
            "input 'df': expected structured_dataset(format='parquet'): a reference with a 'uri'",
        ),
        ({"uri": ""}, "input 'df'['uri']: expected a non-empty URI str, got str ''"),
        (
            {"uri": "s3://x", "extra": 1},
            "input 'df'['extra']: expected structured_dataset(format='parquet'): a reference with the keys uri, format, columns",
        ),
        (
            {"uri": "s3://x", "format": "csv"},
            "input 'df': expected structured_dataset(format='parquet'), got a structured dataset of format 'csv'",
        ),
        ({"uri": "s3://x", "format": 3}, "input 'df'['format']: expected str, got int 3"),
        ({"uri": "s3://x", "columns": "a"}, "input 'df'['columns']: expected a list of"),
        ({"uri": "s3://x", "columns": [{"name": "a"}]}, "input 'df'['columns'][0]: expected a column"),
        (
            {"uri": "s3://x", "columns": [{"name": 1, "type": {}}]},
            "input 'df'['columns'][0]['name']: expected str, got int 1",
        ),
        (
            {"uri": "s3://x", "columns": [{"name": "a", "type": {"simple": "NOPE"}}]},
            "input 'df'['columns'][0]['type']: expected a LiteralType in JSON form",
        ),
        (
            {"uri": "s3://x\ud800"},
            "input 'df'['uri']: expected a string encodable as UTF-8 (no lone surrogates)",
        ),
        (3, "input 'df': expected structured_dataset(format='parquet'), got int 3"),
    ],
    ids=[
        "no-uri",
        "empty-uri",
        "unknown-key",
        "format-conflict",
        "format-type",
        "columns-type",
        "column-shape",
        "column-name",
        "column-type",
        "surrogate",
        "int",
    ],
)
def test_reference_errors_name_the_key(value: Any, message: str) -> None:
    with pytest.raises(LiteralConversionError) as caught:
        to_literal(value, PARQUET, path="input 'df'")
    assert str(caught.value).startswith(message), str(caught.value)


def test_the_format_check_ignores_case_and_an_unset_side() -> None:
    assert to_literal({"uri": "s3://x", "format": "PARQUET"}, PARQUET, path="p")
    assert to_literal({"uri": "s3://x", "format": "csv"}, CONSUMER_TYPE, path="p")


def test_outputs_map_gives_references() -> None:
    variables = interface_pb2.VariableMap()
    variables.variables["df"].type.CopyFrom(PRODUCER_TYPE)
    literal_map = literals_pb2.LiteralMap(literals={"df": producer_literal()})
    assert from_literal_map(literal_map, variables) == {"df": REFERENCE}
    assert to_literal_map({"df": REFERENCE}, variables, kind="output") == literal_map
