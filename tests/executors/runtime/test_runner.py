"""executors.runtime.runner run directly (as the executor would): enum members in, wrong returns out."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import http
import os
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import pyarrow as pa
import pydantic
import pytest
from flyteidl.core import errors_pb2, literals_pb2

from executors import Directory, File
from executors.data.function_task import function_template
from executors.data.literals import from_literal_map, to_literal_map
from tests.executors.data import record_classes


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Pair(NamedTuple):
    left: int
    right: str


REPO = Path(__file__).resolve().parents[3]


def run(fn: Any, inputs: dict[str, Any], tmp_path: Path) -> tuple[dict[str, Any] | None, Any]:
    """Run ``fn`` through the runner; ``(outputs, None)`` or ``(None, error document)``."""
    template = function_template(fn, name=fn.__name__)
    (tmp_path / "task.pb").write_bytes(template.SerializeToString())
    (tmp_path / "inputs.pb").write_bytes(
        to_literal_map(inputs, template.interface.inputs).SerializeToString()
    )
    out, work = tmp_path / "out", tmp_path / "work"
    out.mkdir()
    work.mkdir()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "executors.runtime.runner",
            str(tmp_path / "inputs.pb"),
            str(out),
            str(tmp_path / "task.pb"),
            str(tmp_path / "raw"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        # As an executor runs it: in a working directory of its own (relative paths the function
        # writes land there), with this checkout importable.
        cwd=work,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    if (out / "error.pb").exists():
        assert result.returncode == 1
        return None, errors_pb2.ErrorDocument.FromString((out / "error.pb").read_bytes()).error
    assert result.returncode == 0, result.stderr
    outputs = literals_pb2.LiteralMap.FromString((out / "outputs.pb").read_bytes())
    return from_literal_map(outputs, template.interface.outputs), None


def paint(c: Color, shades: list[Color], by_name: dict[str, Color], maybe: Color | None = None) -> str:
    assert isinstance(c, Color) and c is Color.RED, c  # the DAG file's class, stood in by the runner
    return f"{c.name} {[s.name for s in shades]} {sorted((k, v.name) for k, v in by_name.items())} {maybe}"


def test_enum_parameters_arrive_as_members_of_a_stand_in(tmp_path: Path) -> None:
    outputs, error = run(
        paint, {"c": Color.RED, "shades": ["green"], "by_name": {"k": "red"}, "maybe": None}, tmp_path
    )
    assert error is None and outputs == {"o0": "RED ['GREEN'] [('k', 'RED')] None"}


def method(m: http.HTTPMethod, ms: list[http.HTTPMethod] | None) -> bool:
    from http import HTTPMethod

    return m is HTTPMethod.GET and ms is not None and ms[0] is HTTPMethod.POST


def test_an_importable_enum_is_the_class_itself(tmp_path: Path) -> None:
    outputs, error = run(method, {"m": "GET", "ms": ["POST"]}, tmp_path)
    assert error is None and outputs == {"o0": True}


def flip(c: Color) -> Color:
    return Color.GREEN if c is Color.RED else Color.RED


def test_an_enum_return_is_written_by_value(tmp_path: Path) -> None:
    outputs, error = run(flip, {"c": "red"}, tmp_path)
    assert error is None and outputs == {"o0": "green"}


def dict_ints(d: dict) -> dict:  # type: ignore[type-arg]
    return {"n": d["n"] + 1, "type": type(d["n"]).__name__}


def test_a_bare_dict_keeps_its_ints(tmp_path: Path) -> None:
    outputs, error = run(dict_ints, {"d": {"n": 1}}, tmp_path)
    assert error is None and outputs == {"o0": {"n": 2, "type": "int"}}


def wrong_type(x: int) -> int:
    return str(x)  # type: ignore[return-value]


def not_a_pair(x: int) -> Pair:
    return x  # type: ignore[return-value]


def missing_field(x: int) -> Pair:
    from collections import namedtuple

    return namedtuple("Pair", ["left"])(x)  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("fn", "code", "message"),
    [
        (wrong_type, "LiteralConversionError", "output 'o0': expected integer, got str '1'"),
        (not_a_pair, "LiteralConversionError", "output: expected Pair (a NamedTuple), got int 1"),
        (
            missing_field,
            "InterfaceMismatchError",
            "missing output 'right'; declared outputs: 'left', 'right'",
        ),
    ],
    ids=["wrong-type", "not-a-namedtuple", "missing-field"],
)
def test_a_wrong_return_is_a_permanent_user_error_naming_the_output(
    fn: Any, code: str, message: str, tmp_path: Path
) -> None:
    outputs, error = run(fn, {"x": 1}, tmp_path)
    assert outputs is None
    assert error.kind == errors_pb2.ContainerError.NON_RECOVERABLE
    assert error.code == code
    assert error.message.startswith(message)
    assert f"the return value of {fn.__name__} does not match its declared outputs" in error.message


# -- records, int enums and dates ----------------------------------------------------------------


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass
class Leg:
    to: str
    level: Level
    took: datetime.timedelta = datetime.timedelta(0)


@dataclasses.dataclass
class Trip:
    name: str
    day: datetime.date
    legs: list[Leg]
    at: datetime.datetime | None = None
    tags: list[str] = dataclasses.field(default_factory=list)


def plan(trip: Trip, by_name: dict[str, Leg], level: Level, when: datetime.date) -> Trip:
    # The DAG file's classes are stood in by the runner: same names and fields, instances built.
    import dataclasses
    import datetime

    assert type(trip).__name__ == "Trip" and dataclasses.is_dataclass(trip), repr(trip)
    assert isinstance(trip.day, datetime.date) and not isinstance(trip.day, datetime.datetime), trip.day
    assert type(trip.legs[0]).__name__ == "Leg" and trip.legs[0].level is Level.HIGH, trip.legs
    assert trip.legs[0].took == datetime.timedelta(seconds=90), trip.legs[0].took
    assert isinstance(trip.at, datetime.datetime), trip.at
    assert by_name["a"].to == "A" and level is Level.LOW and when == datetime.date(2026, 5, 6)
    extra = Leg("home", Level.LOW)  # built in the function itself: the stand-in's defaults apply
    return Trip(trip.name.upper(), when, [*trip.legs, extra], tags=[*trip.tags, str(extra.took)])


def test_records_int_enums_and_dates_arrive_typed_and_return_as_flytekit_writes_them(
    tmp_path: Path,
) -> None:
    trip = Trip(
        "tour",
        datetime.date(2026, 1, 2),
        [Leg("A", Level.HIGH, datetime.timedelta(seconds=90))],
        at=datetime.datetime(2026, 1, 2, 3, 4),
        tags=["x"],
    )
    outputs, error = run(
        plan,
        {"trip": trip, "by_name": {"a": Leg("A", Level.LOW)}, "level": 1, "when": datetime.date(2026, 5, 6)},
        tmp_path,
    )
    assert error is None, error
    assert outputs == {
        "o0": {
            "name": "TOUR",
            "day": "2026-05-06",
            "legs": [{"to": "A", "level": 2, "took": 90.0}, {"to": "home", "level": 1, "took": 0.0}],
            "at": None,
            "tags": ["x", "0:00:00"],
        }
    }


def visit_days(v: record_classes.Visit, o: record_classes.Order) -> list[str]:
    from tests.executors.data.record_classes import Order, Visit

    # Importable classes are the classes themselves (a pydantic model validated by itself).
    assert type(v) is Visit and type(o) is Order, (type(v), type(o))
    return [v.day.isoformat(), o.day.isoformat(), v.stops[1].label, o.items[1].name]


def test_importable_records_are_the_classes_themselves(tmp_path: Path) -> None:
    instances = record_classes.instances()
    outputs, error = run(visit_days, {"v": instances["Visit"], "o": instances["Order"]}, tmp_path)
    assert error is None, error
    assert outputs == {"o0": ["2026-02-03", "2026-01-02", "b", "pen"]}


# -- DataFrames ------------------------------------------------------------------------------------


def frame_in_frame_out(df: pd.DataFrame, t: pa.Table) -> pd.DataFrame:
    import pandas as pd
    import pyarrow as pa

    assert isinstance(df, pd.DataFrame) and isinstance(t, pa.Table), (type(df), type(t))
    return df.assign(total=df["a"] + t.column("z").to_pandas())


def test_dataframes_are_read_from_and_written_to_the_data_store(tmp_path: Path) -> None:
    source = tmp_path / "in"
    for name, frame in (
        ("df", pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})),
        ("t", pd.DataFrame({"z": [10, 20]})),
    ):
        (source / name).mkdir(parents=True)
        frame.to_parquet(source / name / "00000")
    refs = {name: {"uri": str(source / name), "format": "parquet", "columns": []} for name in ("df", "t")}
    outputs, error = run(frame_in_frame_out, refs, tmp_path)
    assert error is None, error
    reference = outputs["o0"]  # type: ignore[index]
    # Written under the raw output prefix, as flytekit lays a dataset out: a folder holding 00000.
    assert reference["uri"].startswith(str(tmp_path / "raw")) and reference["format"] == "parquet"
    written = pd.read_parquet(Path(reference["uri"]) / "00000")
    assert written.to_dict("list") == {"a": [1, 2], "b": ["x", "y"], "total": [11, 22]}


def needs_column_c(df: typing.Annotated[pd.DataFrame, {"a": int, "c": str}]) -> int:
    return len(df)


def returns_without_c(n: int) -> typing.Annotated[pd.DataFrame, {"a": int, "c": str}]:
    import pandas as pd

    return pd.DataFrame({"a": list(range(n))})


def test_a_missing_declared_column_is_named(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "in" / "00000")
    _, error = run(
        needs_column_c, {"df": {"uri": str(tmp_path / "in"), "format": "parquet", "columns": []}}, tmp_path
    )
    assert error.kind == errors_pb2.ContainerError.NON_RECOVERABLE
    assert error.message.startswith(
        "LiteralConversionError: input column 'c': expected a column of the declared schema, got a DataFrame with the columns ['a']"
    )
    (tmp_path / "second").mkdir()
    _, error = run(returns_without_c, {"n": 2}, tmp_path / "second")
    assert error.kind == errors_pb2.ContainerError.NON_RECOVERABLE
    assert error.message.startswith("output 'o0' column 'c': expected a column of the declared schema")


def test_a_dataset_that_is_not_there_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    _, error = run(needs_column_c, {"df": str(missing)}, tmp_path)
    assert error.kind == errors_pb2.ContainerError.NON_RECOVERABLE
    assert f"input: expected a dataset that exists, got nothing at {missing}" in error.message


# -- files and directories -----------------------------------------------------------------------


class Bundle(NamedTuple):
    note: File
    folder: Directory


def bundle(f: File, d: Directory) -> Bundle:
    import os

    # References, not downloads: the file is read through fsspec, the folder listed.
    assert type(f).__name__ == "File" and type(d).__name__ == "Directory", (type(f), type(d))
    names = [os.path.basename(part.uri) for part in d.files()]
    os.makedirs("bundle", exist_ok=True)
    with open("bundle/summary.txt", "w") as out:
        out.write(f"{f.read_text().strip()} + {names}")
    with open("note.txt", "w") as out:
        out.write("note")
    return Bundle(File("note.txt"), Directory("bundle"))  # File/Directory need no import


def test_files_and_directories_arrive_as_references_and_return_uploaded(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("input text\n")
    (tmp_path / "parts").mkdir()
    for name in ("b.txt", "a.txt"):
        (tmp_path / "parts" / name).write_text(name)
    outputs, error = run(bundle, {"f": str(tmp_path / "in.txt"), "d": str(tmp_path / "parts")}, tmp_path)
    assert error is None, error
    note, folder = Path(outputs["note"]), Path(outputs["folder"])  # type: ignore[index]
    # Uploaded under the raw output prefix, in flytekit's layout: <prefix>/<random>/<name>.
    assert note.parent.parent == tmp_path / "raw" and note.name == "note.txt" and note.read_text() == "note"
    assert folder.parent == tmp_path / "raw"
    assert (folder / "summary.txt").read_text() == "input text + ['a.txt', 'b.txt']"


def returns_a_missing_file(n: int) -> File:
    return File("never-written.txt")


def test_a_returned_file_that_was_not_written_is_a_permanent_error_naming_it(tmp_path: Path) -> None:
    _, error = run(returns_a_missing_file, {"n": 1}, tmp_path)
    assert error.kind == errors_pb2.ContainerError.NON_RECOVERABLE
    assert error.message.startswith("output 'o0': expected a file the task wrote, got no file at ")
    assert "never-written.txt" in error.message


class Line(pydantic.BaseModel):
    sku: str
    qty: int = 1


class Cart(pydantic.BaseModel):
    lines: list[Line]
    day: datetime.date


def total_qty(cart: Cart) -> Cart:
    # A pydantic model of the DAG file: a stand-in with its fields (a dataclass, no validators).
    assert type(cart).__name__ == "Cart" and type(cart.lines[0]).__name__ == "Line", cart
    return Cart(lines=[*cart.lines, Line(sku="extra")], day=cart.day)


def test_a_dag_file_pydantic_model_is_stood_in_and_written_back(tmp_path: Path) -> None:
    cart = Cart(lines=[Line(sku="a", qty=2)], day=datetime.date(2026, 5, 6))
    outputs, error = run(total_qty, {"cart": cart}, tmp_path)
    assert error is None, error
    assert outputs == {
        "o0": {"lines": [{"sku": "a", "qty": 2}, {"sku": "extra", "qty": 1}], "day": "2026-05-06"}
    }
