"""DataFrames (``pandas.DataFrame``, ``pyarrow.Table``) as Flyte structured datasets.

A DataFrame never travels inside a literal: the task writes it to the data store and the literal
holds its URI, format and column schema (:mod:`executors.data.literal_dataset`'s reference
``{"uri", "format", "columns"}``). The layout is flytekit's, so either side reads the other's: a
folder at the URI holding parquet files (flytekit writes one, ``00000``); a reader takes every file
of the folder in name order (or the URI itself when it is a file) and concatenates them; a dot name
is data (flytekit writes CSV as ``.csv``), ``_SUCCESS``-style markers are not.

Declared types follow flytekit too: ``pandas.DataFrame`` and ``pyarrow.Table`` are a structured
dataset with no format (the literal carries ``parquet``) and no columns;
``Annotated[pandas.DataFrame, {"a": int, "b": str}]`` declares columns, which a written or read
DataFrame must have (an error names the missing column), and ``Annotated[pandas.DataFrame, "csv"]``
a format.

pandas and pyarrow are optional (the ``dataframes`` extra): this module recognises their types by
name and imports them only to read or write data, and a missing one is an error naming the extra.
"""

from __future__ import annotations

import importlib
import typing
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flyteidl.core import types_pb2
from google.protobuf import json_format

from executors.core.errors import LiteralConversionError

__all__ = [
    "DATASET_FILE",
    "dataframe_kind",
    "dataset_literal_type",
    "is_dataframe",
    "read_dataframe",
    "write_dataframe",
]

DATASET_FILE = "00000"
"""The file a dataset folder holds, as flytekit names it."""
PARQUET = "parquet"
CSV = "csv"
EXTRA = "airflow-provider-executors[dataframes]"

_KINDS = {("pandas", "DataFrame"): "pandas", ("pyarrow", "Table"): "arrow"}

ColumnType = Callable[..., types_pb2.LiteralType]


def _unannotated(tp: Any) -> tuple[Any, tuple[Any, ...]]:
    if typing.get_origin(tp) is typing.Annotated:
        return typing.get_args(tp)[0], tuple(getattr(tp, "__metadata__", ()))
    return tp, ()


def dataframe_kind(tp: Any) -> str | None:
    """``"pandas"`` or ``"arrow"`` for a DataFrame class (also inside ``Annotated``), else ``None``."""
    tp, _ = _unannotated(tp)
    if not isinstance(tp, type):
        return None
    return _KINDS.get((tp.__module__.split(".")[0], tp.__name__))


def is_dataframe(value: Any) -> bool:
    """True for a ``pandas.DataFrame`` or ``pyarrow.Table`` instance (pandas not imported)."""
    return dataframe_kind(type(value)) is not None


def dataset_literal_type(tp: Any, *, path: str, column_type: ColumnType) -> types_pb2.LiteralType:
    """The structured dataset type of a DataFrame annotation (see the module docstring);
    ``column_type(annotation, path=...)`` gives a declared column's literal type."""
    _, metadata = _unannotated(tp)
    literal_type = types_pb2.LiteralType(structured_dataset_type=types_pb2.StructuredDatasetType())
    dataset_type = literal_type.structured_dataset_type
    for item in metadata:
        if isinstance(item, str):
            dataset_type.format = item
        elif isinstance(item, Mapping):
            for name, annotation in item.items():
                column = dataset_type.columns.add(name=str(name))
                column.literal_type.CopyFrom(column_type(annotation, path=f"{path} column {name!r}"))
        else:
            raise LiteralConversionError(
                path, "DataFrame metadata: a format (str) or the columns ({name: type})", repr(item)
            )
    return literal_type


def _import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ModuleNotFoundError(
            f"{module} is needed to read and write DataFrames: pip install '{EXTRA}'", name=module
        ) from None


def _check_columns(names: list[str], wanted: Sequence[str], path: str) -> None:
    for column in wanted:
        if column not in names:
            raise LiteralConversionError(
                f"{path} column {column!r}",
                "a column of the declared schema",
                f"a DataFrame with the columns {names}",
            )


def write_dataframe(
    value: Any, prefix: str, *, path: str, declared: types_pb2.StructuredDatasetType
) -> dict[str, Any]:
    """Write ``value`` as parquet under ``prefix`` (a new folder holding :data:`DATASET_FILE`) and
    return its reference. The declared columns must be there; the reference states them."""
    from executors.data.storage import DataStore

    pa, pq = _import("pyarrow"), _import("pyarrow.parquet")
    table = value if dataframe_kind(type(value)) == "arrow" else pa.Table.from_pandas(value)
    _check_columns([str(name) for name in table.column_names], [c.name for c in declared.columns], path)
    uri = f"{prefix.rstrip('/')}/{uuid.uuid4().hex}"
    fs, root = DataStore().filesystem(uri)
    fs.makedirs(root, exist_ok=True)
    with fs.open(f"{root}/{DATASET_FILE}", "wb") as target:
        pq.write_table(table, target)
    return {
        "uri": uri,
        "format": PARQUET,
        "columns": [
            {"name": column.name, "type": json_format.MessageToDict(column.literal_type)}
            for column in declared.columns
        ],
    }


def _dataset_files(fs: Any, root: str) -> list[str]:
    if fs.isfile(root):
        return [root]
    found = fs.find(root)
    return sorted(p for p in found if not p.rsplit("/", 1)[-1].startswith("_") and not p.endswith(".crc"))


def read_dataframe(
    reference: Mapping[str, Any],
    kind: str,
    *,
    path: str,
    columns: Sequence[str] = (),
) -> Any:
    """The dataset at ``reference["uri"]`` as a ``pandas.DataFrame`` (``kind`` ``"pandas"``) or a
    ``pyarrow.Table`` (``"arrow"``): parquet, or CSV when the reference says so. Raises
    :class:`LiteralConversionError` naming ``path`` and the URI when nothing is there, or the
    column of ``columns`` (the declared ones) a dataset lacks."""
    from executors.data.storage import DataStore

    uri, data_format = str(reference["uri"]), str(reference.get("format") or PARQUET)
    fs, root = DataStore().filesystem(uri)
    files = _dataset_files(fs, root) if fs.exists(root) else []
    if not files:
        raise LiteralConversionError(path, "a dataset that exists", f"nothing at {uri}")
    pa = _import("pyarrow")
    if data_format == CSV:
        reader = _import("pyarrow.csv").read_csv
    elif data_format == PARQUET:
        reader = _import("pyarrow.parquet").read_table
    else:
        raise LiteralConversionError(path, "a dataset in parquet or csv", f"format {data_format!r} at {uri}")
    tables = []
    for name in files:
        with fs.open(name, "rb") as source:
            tables.append(reader(source))
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    _check_columns([str(n) for n in table.column_names], columns, path)
    return table.to_pandas() if kind == "pandas" else table
