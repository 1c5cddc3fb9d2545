"""Dataclasses and pydantic models as literals, checked against flytekit itself.

flytekit (in ``.venv-flytekit``) declares the classes of ``record_classes.py`` and writes a literal
for one instance of each; we must declare the same type (schema, msgpack annotation, field types),
write the same msgpack for the same instance, read flytekit's literal, and flytekit must read ours
back to an equal instance.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import msgpack
import pytest
from flyteidl.core import literals_pb2, types_pb2
from google.protobuf import json_format

from executors.core.errors import LiteralConversionError
from executors.data.literals import literal_type_from_python, to_literal, to_python
from executors.data.record_types import plain, record_fields
from tests.executors.data import record_classes

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "fixtures" / "flytekit" / "records.py"
FLYTEKIT_PYTHON = HERE.parents[2] / ".venv-flytekit" / "bin" / "python"
INSTANCES = record_classes.instances()


def _flytekit(tmp_path: Path) -> dict[str, Any]:
    if not FLYTEKIT_PYTHON.exists() or not list(FLYTEKIT_PYTHON.parents[1].glob(".installed-*")):
        message = f"{FLYTEKIT_PYTHON} is missing: build it with `bash scripts/setup-flytekit.sh`"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI builds it: this check must run there)")
        pytest.skip(message)
    result = subprocess.run(
        [str(FLYTEKIT_PYTHON), str(SCRIPT), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-3000:]}"
    report: dict[str, Any] = json.loads(result.stdout[result.stdout.index("{") :])
    return report


@pytest.fixture(scope="module")
def flytekit_view(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """flytekit's types and literals for the instances, and how it read ours back."""
    folder = tmp_path_factory.mktemp("records")
    ours = literals_pb2.LiteralMap()
    for name, value in INSTANCES.items():
        literal_type = literal_type_from_python(type(value), path=name)
        ours.literals[name].CopyFrom(to_literal(value, literal_type, path=name))
    (folder / "ours.pb").write_bytes(ours.SerializeToString())
    return _flytekit(folder)


def _untagged(literal_type: types_pb2.LiteralType) -> dict[str, Any]:
    """The type as a dict without union tags (flytekit tags by Python name, ``str``; we by literal
    type, ``string``: neither takes part in matching)."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if not (k == "structure" and set(v) == {"tag"})}
        if isinstance(node, list):
            return [strip(item) for item in node]
        return node

    return strip(json_format.MessageToDict(literal_type))  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", list(INSTANCES))
def test_we_declare_what_flytekit_declares(name: str, flytekit_view: dict[str, Any]) -> None:
    theirs = types_pb2.LiteralType()
    json_format.ParseDict(flytekit_view[name]["type"], theirs)
    ours = literal_type_from_python(type(INSTANCES[name]), path=name)
    assert json_format.MessageToDict(ours.metadata) == json_format.MessageToDict(theirs.metadata)
    assert ours.annotation == theirs.annotation
    assert _untagged(ours) == _untagged(theirs)


@pytest.mark.parametrize("name", list(INSTANCES))
def test_we_write_flytekit_s_msgpack_and_read_its_literal(name: str, flytekit_view: dict[str, Any]) -> None:
    theirs = literals_pb2.Literal.FromString(base64.b64decode(flytekit_view[name]["literal"]))
    literal_type = literal_type_from_python(type(INSTANCES[name]), path=name)
    ours = to_literal(INSTANCES[name], literal_type, path=name)
    assert msgpack.unpackb(ours.scalar.binary.value) == msgpack.unpackb(theirs.scalar.binary.value)
    assert ours.scalar.binary.tag == theirs.scalar.binary.tag == "msgpack"
    assert to_python(theirs, literal_type, path=name) == plain(INSTANCES[name])


@pytest.mark.parametrize("name", list(INSTANCES))
def test_flytekit_reads_ours_back_to_an_equal_instance(name: str, flytekit_view: dict[str, Any]) -> None:
    assert flytekit_view[name]["reads_ours"] == "equal"


def test_plain_is_flytekit_s_json_like_form() -> None:
    visit = INSTANCES["Visit"]
    assert plain(visit) == {
        "where": {"x": 0, "y": 0.0, "label": ""},
        "stops": [{"x": 1, "y": 1.5, "label": "a"}, {"x": 2, "y": 2.5, "label": "b"}],
        "by_name": {"home": {"x": 3, "y": 3.5, "label": "h"}},
        "color": "blue",
        "day": "2026-02-03",
        "at": "2026-02-03T04:05:06.007000",
        "took": 90.0,
        "note": None,
        "tags": ["x"],
        "ok": True,
    }


def test_a_dict_for_a_record_type_may_hold_instances() -> None:
    literal_type = literal_type_from_python(record_classes.Visit, path="input 'v'")
    value = {**plain(INSTANCES["Visit"]), "where": record_classes.Point(5, 5.0)}
    read = to_python(to_literal(value, literal_type, path="input 'v'"), literal_type)
    assert read["where"] == {"x": 5, "y": 5.0, "label": ""}


def test_a_list_of_records() -> None:
    literal_type = literal_type_from_python(list[record_classes.Point], path="input 'ps'")
    points = [record_classes.Point(1, 1.0), record_classes.Point(2, 2.0, "b")]
    read = to_python(to_literal(points, literal_type, path="input 'ps'"), literal_type)
    assert read == [{"x": 1, "y": 1.0, "label": ""}, {"x": 2, "y": 2.0, "label": "b"}]


def test_a_wrong_field_is_named() -> None:
    literal_type = literal_type_from_python(record_classes.Point, path="input 'p'")
    with pytest.raises(LiteralConversionError, match=r"^input 'p'\.x: expected integer, got str 'one'"):
        to_literal({"x": "one", "y": 1.0}, literal_type, path="input 'p'")


def test_defaults_are_recorded_as_plain_values() -> None:
    fields = {f.name: f for f in record_fields(record_classes.Visit)}
    assert (fields["tags"].has_default, fields["tags"].default) == (True, [])
    assert (fields["note"].has_default, fields["note"].default) == (True, None)
    assert fields["where"].has_default is False
    order = {f.name: f for f in record_fields(record_classes.Order)}
    assert (order["express"].has_default, order["express"].default) == (True, False)


@dataclasses.dataclass
class HoldsASet:
    name: str
    seen: set[int]


@dataclasses.dataclass
class Tree:
    children: list[Tree]


@dataclasses.dataclass
class HoldsATuple:
    pair: tuple[int, int]


class Mixed(enum.Enum):
    A = 1
    B = "b"


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        (HoldsASet, r"^input 'r'\.seen: expected int, float, str, bool, datetime, date, .* got set\[int\]$"),
        (Tree, r"^input 'r'\.children\[\]: expected a dataclass that does not contain itself"),
        (HoldsATuple, r"^input 'r'\.pair: expected .* got tuple\[int, int\]$"),
        (tuple[int, str], r"^input 'r': expected a type Flyte can carry: Flyte has no tuple type"),
        (Mixed, r"^input 'r': expected an Enum whose values are all str or all int"),
    ],
    ids=["set-field", "self-recursive", "tuple-field", "tuple", "mixed-enum"],
)
def test_unsupported_record_fields_are_named_at_parse_time(annotation: Any, message: str) -> None:
    with pytest.raises(LiteralConversionError, match=message):
        literal_type_from_python(annotation, path="input 'r'")


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


def test_an_int_enum_is_carried_by_its_decimal_string() -> None:
    literal_type = literal_type_from_python(Level, path="input 'l'")
    assert list(literal_type.enum_type.values) == ["1", "2"]
    assert to_python(to_literal(Level.HIGH, literal_type, path="input 'l'"), literal_type) == "2"
    assert to_python(to_literal(1, literal_type, path="input 'l'"), literal_type) == "1"
    with pytest.raises(LiteralConversionError, match=r"^input 'l': expected enum\['1', '2'\], got int 3"):
        to_literal(3, literal_type, path="input 'l'")


def test_a_date_is_its_midnight() -> None:
    literal_type = literal_type_from_python(datetime.date, path="input 'd'")
    assert literal_type.simple == types_pb2.DATETIME
    read = to_python(to_literal(datetime.date(2026, 2, 3), literal_type, path="input 'd'"), literal_type)
    assert read == datetime.datetime(2026, 2, 3, tzinfo=datetime.UTC)
