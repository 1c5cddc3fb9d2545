"""Offloading a function task's large outputs to the data store before ``outputs.pb`` is written.

Both go under the execution's raw output prefix (``{{.rawOutputDataPrefix}}``, where Flyte puts
offloaded data):

* a returned file or directory (a ``File`` / ``Directory`` or a local path, for a blob output) that
  the task wrote locally is uploaded and replaced by its URI (:func:`executors.data.files.upload`;
  a remote URI is kept);
* a returned DataFrame, which does not fit in a literal, is written as parquet and replaced by the
  reference its structured dataset literal holds (:func:`executors.data.dataframes.write_dataframe`).

The walk follows the declared type, so these are found inside a list, a dict or a union too; every
other value is left for :func:`executors.runtime.task_io.write_outputs` to convert and check.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flyteidl.core import interface_pb2, types_pb2

from executors.core.errors import LiteralConversionError
from executors.data.dataframes import is_dataframe, write_dataframe
from executors.data.files import Directory, File, upload

__all__ = ["offload_outputs"]


def offload_outputs(
    values: Mapping[str, Any], outputs: interface_pb2.VariableMap, raw_prefix: str
) -> dict[str, Any]:
    """``values`` with each DataFrame, file and directory written under ``raw_prefix`` and replaced
    by its reference (a DataFrame's ``{"uri", "format", "columns"}``, a file's or directory's URI)."""
    return {
        name: _offload(value, outputs.variables[name].type, raw_prefix, f"output {name!r}")
        if name in outputs.variables
        else value
        for name, value in values.items()
    }


def _offload(value: Any, literal_type: types_pb2.LiteralType, prefix: str, path: str) -> Any:
    kind = literal_type.WhichOneof("type")
    if kind == "blob" and isinstance(value, (str, os.PathLike)):
        return _upload(value, literal_type.blob, prefix, path)
    if kind == "structured_dataset_type" and is_dataframe(value):
        return write_dataframe(value, prefix, path=path, declared=literal_type.structured_dataset_type)
    if kind == "collection_type" and isinstance(value, (list, tuple)):
        element = literal_type.collection_type
        return [_offload(item, element, prefix, f"{path}[{i}]") for i, item in enumerate(value)]
    if kind == "map_value_type" and isinstance(value, Mapping):
        entry = literal_type.map_value_type
        return {key: _offload(item, entry, prefix, f"{path}[{key!r}]") for key, item in value.items()}
    if kind == "union_type":
        # The variant that can hold it: a dataset for a DataFrame, a blob for a File / Directory.
        wanted = "structured_dataset_type" if is_dataframe(value) else "blob"
        if wanted == "blob" and not isinstance(value, (File, Directory)):
            return value
        for variant in literal_type.union_type.variants:
            if variant.WhichOneof("type") == wanted:
                return _offload(value, variant, prefix, path)
    return value


def _upload(value: str | os.PathLike[str], blob: types_pb2.BlobType, prefix: str, path: str) -> str:
    multipart = blob.dimensionality == types_pb2.BlobType.MULTIPART
    reference = value if isinstance(value, (File, Directory)) else (Directory if multipart else File)(value)
    try:
        return upload(reference, prefix)
    except FileNotFoundError as exc:  # the task did not write what it returned: a retry would not either
        what = "a folder the task wrote" if multipart else "a file the task wrote"
        raise LiteralConversionError(path, what, str(exc)) from None
