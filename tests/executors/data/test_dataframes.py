"""DataFrames as structured datasets: declared types, and the layout flytekit reads and writes.

The wire against flytekit itself is tested by the conformance chains (tests/conformance: a flytekit
DataFrame into a ``@task.executor`` function and its DataFrame back into flytekit); here, the
pieces, on real files through fsspec.
"""

from __future__ import annotations

import importlib
import typing
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from flyteidl.core import types_pb2

from executors.core.errors import LiteralConversionError
from executors.data import dataframes
from executors.data.dataframes import dataframe_kind, is_dataframe, read_dataframe, write_dataframe
from executors.data.literals import literal_type_from_python, to_literal, to_python

EMPTY = types_pb2.StructuredDatasetType()


def test_dataframe_types_are_declared_as_flytekit_declares_them() -> None:
    # flytekit: pd.DataFrame and pa.Table -> structured_dataset_type {} (the literal says parquet).
    for tp in (pd.DataFrame, pa.Table):
        assert literal_type_from_python(tp) == types_pb2.LiteralType(structured_dataset_type=EMPTY)
    declared = literal_type_from_python(typing.Annotated[pd.DataFrame, {"a": int, "b": str}])
    columns = declared.structured_dataset_type.columns
    assert [(c.name, c.literal_type.simple) for c in columns] == [
        ("a", types_pb2.INTEGER),
        ("b", types_pb2.STRING),
    ]
    assert (
        literal_type_from_python(typing.Annotated[pd.DataFrame, "csv"]).structured_dataset_type.format
        == "csv"
    )
    # Annotated around anything else is the type itself, as before.
    assert literal_type_from_python(typing.Annotated[int, "meta"]).simple == types_pb2.INTEGER


def test_bad_dataframe_metadata_is_named() -> None:
    with pytest.raises(LiteralConversionError, match=r"^input 'df': expected DataFrame metadata"):
        literal_type_from_python(typing.Annotated[pd.DataFrame, 3], path="input 'df'")
    with pytest.raises(LiteralConversionError, match=r"^input 'df' column 'a': expected a supported type"):
        literal_type_from_python(typing.Annotated[pd.DataFrame, {"a": set}], path="input 'df'")


def test_kinds_are_recognised_by_name() -> None:
    assert dataframe_kind(pd.DataFrame) == "pandas" and dataframe_kind(pa.Table) == "arrow"
    assert dataframe_kind(typing.Annotated[pa.Table, {"x": int}]) == "arrow"
    assert dataframe_kind(dict) is None and dataframe_kind(list[int]) is None
    assert is_dataframe(pd.DataFrame()) and is_dataframe(pa.table({"x": [1]})) and not is_dataframe({})


def test_written_as_flytekit_lays_a_dataset_out(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    reference = write_dataframe(frame, str(tmp_path / "raw"), path="output 'o0'", declared=EMPTY)
    assert reference["format"] == "parquet" and reference["columns"] == []
    assert [p.name for p in Path(reference["uri"]).iterdir()] == ["00000"]
    assert pd.read_parquet(Path(reference["uri"]) / "00000").equals(frame)
    # ... and the reference is what a structured dataset literal carries.
    literal_type = literal_type_from_python(pd.DataFrame)
    assert to_python(to_literal(reference, literal_type, path="x"), literal_type) == reference
    assert read_dataframe(reference, "pandas", path="input 'df'").equals(frame)
    table = read_dataframe(reference, "arrow", path="input 't'")
    assert isinstance(table, pa.Table) and table.column("a").to_pylist() == [1, 2, 3]


def test_every_file_of_the_folder_is_read_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "ds").mkdir()
    pd.DataFrame({"a": [3, 4]}).to_parquet(tmp_path / "ds" / "00001")
    pd.DataFrame({"a": [1, 2]}).to_parquet(tmp_path / "ds" / "00000")
    (tmp_path / "ds" / "_SUCCESS").write_text("")
    read = read_dataframe({"uri": str(tmp_path / "ds"), "format": "parquet"}, "pandas", path="input 'df'")
    assert read["a"].tolist() == [1, 2, 3, 4]


def test_flytekit_s_csv_layout_is_read(tmp_path: Path) -> None:
    # flytekit writes a CSV dataset as <uri>/.csv
    (tmp_path / "ds").mkdir()
    pd.DataFrame({"a": [1, 2], "b": ["p", "q"]}).to_csv(tmp_path / "ds" / ".csv", index=False)
    read = read_dataframe({"uri": str(tmp_path / "ds"), "format": "csv"}, "pandas", path="input 'df'")
    assert read.to_dict("list") == {"a": [1, 2], "b": ["p", "q"]}


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        (
            {"uri": "NOWHERE", "format": "parquet"},
            r"^input 'df': expected a dataset that exists, got nothing at ",
        ),
        (
            {"uri": "DS", "format": "avro"},
            r"^input 'df': expected a dataset in parquet or csv, got format 'avro'",
        ),
    ],
    ids=["missing", "unknown-format"],
)
def test_unreadable_datasets_are_named(reference: dict[str, Any], message: str, tmp_path: Path) -> None:
    (tmp_path / "ds").mkdir()
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "ds" / "00000")
    uri = str(tmp_path / ("ds" if reference["uri"] == "DS" else "nowhere"))
    with pytest.raises(LiteralConversionError, match=message):
        read_dataframe({**reference, "uri": uri}, "pandas", path="input 'df'")


def test_without_pyarrow_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = importlib.import_module

    def no_pyarrow(name: str, *args: Any) -> Any:
        if name.startswith("pyarrow"):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args)

    monkeypatch.setattr(dataframes.importlib, "import_module", no_pyarrow)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'airflow-provider-executors\[dataframes\]'"):
        write_dataframe(pd.DataFrame({"a": [1]}), str(tmp_path), path="output 'o0'", declared=EMPTY)
