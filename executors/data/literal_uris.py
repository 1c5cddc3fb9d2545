"""The data a literal map points at: the URIs of its blobs and structured datasets.

A file, directory or dataset never travels inside a literal, only its URI. :func:`data_references`
finds each one, also inside collections, maps and unions, and names where it sits the way
conversion errors do (``input 'fs'[2]``, ``output 'o0'['key']``). The start checks that inputs
exist with it (:func:`executors.engine.submission.check_input_data`); lineage reports them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from flyteidl.core import literals_pb2

from executors.data.literals import describe_type

__all__ = ["DataReference", "data_references"]


@dataclasses.dataclass(frozen=True)
class DataReference:
    """One URI a literal holds: ``kind`` is ``file``, ``directory`` or ``dataset``; a dataset's
    ``columns`` are ``(name, type)`` pairs as the producer declared them (types as
    :func:`~executors.data.literals.describe_type` renders them), a dataset's ``format`` its own."""

    where: str
    uri: str
    kind: str
    format: str = ""
    columns: tuple[tuple[str, str], ...] = ()


def data_references(literal_map: literals_pb2.LiteralMap, side: str) -> list[DataReference]:
    """Every blob and structured dataset of ``literal_map``, variables in name order; ``side`` is
    ``input`` or ``output`` (it starts each ``where``)."""
    found: list[DataReference] = []
    for name, literal in sorted(literal_map.literals.items()):
        found.extend(_walk(literal, f"{side} {name!r}"))
    return found


def _walk(literal: literals_pb2.Literal, where: str) -> Iterator[DataReference]:
    kind = literal.WhichOneof("value")
    if kind == "collection":
        for index, item in enumerate(literal.collection.literals):
            yield from _walk(item, f"{where}[{index}]")
    elif kind == "map":
        for key, item in sorted(literal.map.literals.items()):
            yield from _walk(item, f"{where}[{key!r}]")
    elif kind == "scalar":
        scalar = literal.scalar
        held = scalar.WhichOneof("value")
        if held == "blob" and scalar.blob.uri:
            multipart = scalar.blob.metadata.type.dimensionality == scalar.blob.metadata.type.MULTIPART
            blob_format = scalar.blob.metadata.type.format
            yield DataReference(where, scalar.blob.uri, "directory" if multipart else "file", blob_format)
        elif held == "structured_dataset" and scalar.structured_dataset.uri:
            dataset = scalar.structured_dataset
            dataset_type = dataset.metadata.structured_dataset_type
            columns = tuple((c.name, describe_type(c.literal_type)) for c in dataset_type.columns)
            yield DataReference(where, dataset.uri, "dataset", dataset_type.format, columns)
        elif held == "union":
            yield from _walk(scalar.union.value, where)
