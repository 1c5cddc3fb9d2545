"""Our literals against real flytekit ones (fixtures written by flytekit 1.16, see fixtures/flytekit/).

Three directions: our reader turns flytekit's literals into the plain values of flytekit's own Python
values; our writer, given those plain values and flytekit's declared types, writes flytekit's very
literals (bit for bit where ``exact``); and flytekit's ``TypeEngine`` reads what we wrote back to the
equal Python object (through ``.venv-flytekit``, which CI always builds).
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from flyteidl.core import interface_pb2, literals_pb2

from executors.data.literals import from_literal_map, to_literal, to_literal_map, to_python

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "flytekit"
REPO = Path(__file__).resolve().parents[3]
FLYTEKIT_PYTHON = REPO / ".venv-flytekit" / "bin" / "python"

VARIABLES = interface_pb2.VariableMap.FromString((FIXTURES / "variables.pb").read_bytes())
LITERALS = literals_pb2.LiteralMap.FromString((FIXTURES / "literals.pb").read_bytes())
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())["cases"]
NAMES = list(EXPECTED)


def decode(value: Any) -> Any:
    """The plain value of ``expected.json`` (``cases.encode`` reversed)."""
    if isinstance(value, dict):
        if set(value) == {"$datetime"}:
            return datetime.datetime.fromisoformat(value["$datetime"])
        if set(value) == {"$timedelta"}:
            days, seconds, microseconds = value["$timedelta"]
            return datetime.timedelta(days=days, seconds=seconds, microseconds=microseconds)
        return {key: decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decode(item) for item in value]
    return value


def assert_same(got: Any, want: Any, where: str = "value") -> None:
    """Equal *and* of the same types all the way down (an int must not come back as a float)."""
    assert type(got) is type(want), (
        f"{where}: {type(got).__name__} {got!r} is not {type(want).__name__} {want!r}"
    )
    if isinstance(want, dict):
        # Key sets, not orders: a protobuf map (dict[str, T]) has no order.
        assert set(got) == set(want), f"{where}: keys {sorted(got)} != {sorted(want)}"
        for key in want:
            assert_same(got[key], want[key], f"{where}[{key!r}]")
    elif isinstance(want, list):
        assert len(got) == len(want), f"{where}: {len(got)} elements != {len(want)}"
        for index, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{where}[{index}]")
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


def test_the_fixtures_cover_the_brief() -> None:
    assert set(NAMES) == set(VARIABLES.variables) == set(LITERALS.literals)
    kinds = {LITERALS.literals[n].WhichOneof("value") for n in NAMES}
    assert kinds == {"scalar", "collection", "map"}
    msgpack = [n for n in NAMES if LITERALS.literals[n].scalar.binary.tag == "msgpack"]
    assert {"dataclass", "nested_dataclass", "bare_dict", "pydantic"} <= set(msgpack)
    assert LITERALS.literals["dataclass_old_format"].scalar.HasField("generic")
    assert (
        LITERALS.literals["dataframe"].scalar.structured_dataset.metadata.structured_dataset_type.format
        == "parquet"
    )


@pytest.mark.parametrize("name", NAMES)
def test_reader_gives_flytekit_plain_values(name: str) -> None:
    literal, literal_type = LITERALS.literals[name], VARIABLES.variables[name].type
    want = decode(EXPECTED[name]["plain"])
    assert_same(to_python(literal, literal_type, path=f"input {name!r}"), want)
    assert_same(to_python(literal), want)  # inference, without the declared type


def test_reader_reads_the_whole_map_as_outputs() -> None:
    values = from_literal_map(LITERALS, VARIABLES)
    for name in NAMES:
        assert_same(values[name], decode(EXPECTED[name]["plain"]), name)


@pytest.mark.parametrize("name", NAMES)
def test_writer_reproduces_flytekit_literals(name: str) -> None:
    literal_type = VARIABLES.variables[name].type
    plain = decode(EXPECTED[name]["plain"])
    ours = to_literal(plain, literal_type, path=f"input {name!r}")
    if EXPECTED[name]["exact"]:
        assert ours == LITERALS.literals[name]
    assert_same(to_python(ours, literal_type), plain)


def test_flytekit_reads_our_literals_back(tmp_path: Path) -> None:
    # The script stamps the venv once everything is installed (a venv being built has no stamp yet).
    if not FLYTEKIT_PYTHON.exists() or not list(FLYTEKIT_PYTHON.parents[1].glob(".installed-*")):
        message = (
            f"{FLYTEKIT_PYTHON} is missing or unfinished: build it with `bash scripts/setup-flytekit.sh`"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI builds it: this check must run there)")
        pytest.skip(message)
    plain = {name: decode(EXPECTED[name]["plain"]) for name in NAMES}
    ours = to_literal_map(plain, VARIABLES)
    (tmp_path / "literals.pb").write_bytes(ours.SerializeToString())
    result = subprocess.run(
        [str(FLYTEKIT_PYTHON), str(FIXTURES / "check_roundtrip.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert report == dict.fromkeys(NAMES, "ok")
