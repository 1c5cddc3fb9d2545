"""executors.runtime.runner run directly (as the executor would): enum members in, wrong returns out."""

from __future__ import annotations

import enum
import http
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from flyteidl.core import errors_pb2, literals_pb2

from executors.data.function_task import function_template
from executors.data.literals import from_literal_map, to_literal_map


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Pair(NamedTuple):
    left: int
    right: str


def run(fn: Any, inputs: dict[str, Any], tmp_path: Path) -> tuple[dict[str, Any] | None, Any]:
    """Run ``fn`` through the runner; ``(outputs, None)`` or ``(None, error document)``."""
    template = function_template(fn, name=fn.__name__)
    (tmp_path / "task.pb").write_bytes(template.SerializeToString())
    (tmp_path / "inputs.pb").write_bytes(
        to_literal_map(inputs, template.interface.inputs).SerializeToString()
    )
    out = tmp_path / "out"
    out.mkdir()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "executors.runtime.runner",
            str(tmp_path / "inputs.pb"),
            str(out),
            str(tmp_path / "task.pb"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
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
