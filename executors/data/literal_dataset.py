"""Structured datasets as plain Python: a small, JSON-safe typed reference.

A structured dataset literal is a URI plus metadata: the storage format (``parquet``, ...) and the
column schema the producer wrote. Flyte hands the *producer's* literal to the consumer, so that
metadata must survive the trip through Python (and Airflow's XCom). :func:`dataset_reference` turns
the literal into::

    {"uri": "s3://bucket/df", "format": "parquet",
     "columns": [{"name": "a", "type": {"simple": "INTEGER"}}]}

(every key always present: ``format`` is ``""`` and ``columns`` ``[]`` when unset; a column's type is
its ``LiteralType`` as ``json_format.MessageToDict`` writes it), and :func:`fill_dataset` writes a
literal from either such a mapping (its metadata wins over the declared type's) or a bare URI
(the metadata comes from the declared type).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flyteidl.core import literals_pb2, types_pb2
from google.protobuf import json_format

from executors.core.errors import LiteralConversionError
from executors.data.literal_json import UnencodableStringError, given, key_path

__all__ = ["REFERENCE_KEYS", "dataset_reference", "fill_dataset"]

REFERENCE_KEYS = ("uri", "format", "columns")


def dataset_reference(dataset: literals_pb2.StructuredDataset) -> dict[str, Any]:
    """The typed reference of a structured dataset literal (see the module docstring)."""
    dataset_type = dataset.metadata.structured_dataset_type
    return {
        "uri": str(dataset.uri),
        "format": str(dataset_type.format),
        "columns": [
            {"name": str(column.name), "type": json_format.MessageToDict(column.literal_type)}
            for column in dataset_type.columns
        ],
    }


def _uri(value: Any, path: str, expected: str) -> str:
    uri = os.fspath(value) if isinstance(value, os.PathLike) else value
    if not isinstance(uri, str) or not uri:
        raise LiteralConversionError(path, expected, given(value))
    return uri


def _columns(value: Any, path: str) -> list[types_pb2.StructuredDatasetType.DatasetColumn]:
    if not isinstance(value, (list, tuple)):
        raise LiteralConversionError(
            path, "a list of {'name': str, 'type': LiteralType as a dict}", given(value)
        )
    columns = []
    for index, item in enumerate(value):
        where = f"{path}[{index}]"
        if not isinstance(item, Mapping) or set(item) != {"name", "type"}:
            raise LiteralConversionError(
                where, "a column {'name': str, 'type': LiteralType as a dict}", given(item)
            )
        if not isinstance(item["name"], str):
            raise LiteralConversionError(key_path(where, "name"), "str", given(item["name"]))
        column = types_pb2.StructuredDatasetType.DatasetColumn()
        try:
            column.name = item["name"]
        except UnicodeEncodeError:
            raise UnencodableStringError(key_path(where, "name"), item["name"]) from None
        try:
            json_format.ParseDict(item["type"], column.literal_type)
        except (json_format.ParseError, TypeError, ValueError, AttributeError) as exc:
            raise LiteralConversionError(
                key_path(where, "type"), f"a LiteralType in JSON form ({exc!s:.80})", given(item["type"])
            ) from None
        columns.append(column)
    return columns


def fill_dataset(
    target: literals_pb2.StructuredDataset,
    value: Any,
    declared: types_pb2.StructuredDatasetType,
    *,
    path: str,
    expected: str,
) -> None:
    """Write ``value`` (a URI ``str`` / ``os.PathLike``, or a reference mapping) into ``target``.

    A mapping needs ``uri``; its ``format`` and ``columns``, when present, replace the declared
    type's (the rest of the declared type, e.g. an external schema, is kept). A format other than a
    non-empty declared one is refused, as Flyte's type check does. ``expected`` describes the
    declared type for error messages.
    """
    metadata = target.metadata.structured_dataset_type
    metadata.CopyFrom(declared)
    if not isinstance(value, Mapping):
        _set_uri(target, _uri(value, path, expected), path)
        return
    unknown = [key for key in value if key not in REFERENCE_KEYS]
    if unknown:
        raise LiteralConversionError(
            key_path(path, unknown[0]),
            f"{expected}: a reference with the keys uri, format, columns",
            given(value),
        )
    if "uri" not in value:
        raise LiteralConversionError(path, f"{expected}: a reference with a 'uri'", given(value))
    uri = _uri(value["uri"], key_path(path, "uri"), "a non-empty URI str")
    if "format" in value:
        fmt = value["format"]
        if not isinstance(fmt, str):
            raise LiteralConversionError(key_path(path, "format"), "str", given(fmt))
        if fmt and declared.format and fmt.lower() != declared.format.lower():
            raise LiteralConversionError(path, expected, f"a structured dataset of format {fmt!r}")
        metadata.format = fmt
    if "columns" in value:
        columns = _columns(value["columns"], key_path(path, "columns"))
        del metadata.columns[:]
        metadata.columns.extend(columns)
    _set_uri(target, uri, key_path(path, "uri"))


def _set_uri(target: literals_pb2.StructuredDataset, uri: str, path: str) -> None:
    try:
        target.uri = uri
    except UnicodeEncodeError:
        raise UnencodableStringError(path, uri) from None
