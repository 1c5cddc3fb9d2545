"""A typed Python function as a Flyte container task (the core of ``@task.executor``).

:func:`function_template` turns a function into a ``TaskTemplate``: its annotations become the
typed interface, its source travels in ``TaskTemplate.custom`` (like ``@task.docker``), and the
container command runs :mod:`executors.runtime.runner`, which reads ``inputs.pb``, calls the function and
writes ``outputs.pb`` or ``error.pb``.

Outputs follow Flyte: a ``NamedTuple`` or ``TypedDict`` return annotation gives one output per
field; ``None`` gives none; anything else is the single output ``o0``.

Enum parameters travel as their values (an enum literal is a string) and dataclasses and pydantic
models as their JSON-like form (msgpack); :func:`input_conversions`, :func:`enum_types` and
:func:`record_types` record where they sit and what the classes look like, so that the runner hands
the function an enum *member* and a record *instance*, of the class itself when it can be imported
there, else of a stand-in with the same name and fields (see :mod:`executors.runtime.annotated_values`).
"""

from __future__ import annotations

import datetime
import enum
import inspect
import json
import textwrap
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flyteidl.core import tasks_pb2

from executors.core.cache import Cache
from executors.core.errors import LiteralConversionError
from executors.data.dataframes import dataframe_kind, dataset_literal_type
from executors.data.files import Directory, File
from executors.data.literals import literal_type_from_python
from executors.data.record_types import RecordField, is_pydantic_model, is_record_type, record_fields
from executors.data.task_template import build_task_template

RUNNER_COMMAND = [
    "python",
    "-m",
    "executors.runtime.runner",
    "{{.input}}",
    "{{.outputPrefix}}",
    "{{.taskTemplatePath}}",
    "{{.rawOutputDataPrefix}}",
]

SINGLE_OUTPUT = "o0"


def _is_named_tuple(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, tuple) and hasattr(tp, "_fields")


def output_types(fn: Callable[..., Any]) -> tuple[str, dict[str, Any]]:
    """``(kind, {name: annotation})`` with kind ``none``, ``single``, ``namedtuple`` or ``typeddict``."""
    hints = typing.get_type_hints(fn, include_extras=True)  # Annotated DataFrames declare columns
    if "return" not in hints:
        raise LiteralConversionError(
            f"function {fn.__qualname__} return", "a return annotation (use -> None for no output)", "none"
        )
    ret = hints["return"]
    if ret is None or ret is type(None):
        return "none", {}
    if _is_named_tuple(ret) or typing.is_typeddict(ret):
        kind, fields = (
            ("namedtuple" if _is_named_tuple(ret) else "typeddict"),
            typing.get_type_hints(ret, include_extras=True),
        )
    else:
        kind, fields = "single", {SINGLE_OUTPUT: ret}
    for name, tp in fields.items():
        literal_type_from_python(tp, path=f"function {fn.__qualname__} return {name!r}")
    return kind, dict(fields)


def _return_type_name(fn: Callable[..., Any]) -> str:
    return str(typing.get_type_hints(fn)["return"].__name__)


def input_types(fn: Callable[..., Any], *, reserved: Sequence[str] = ()) -> dict[str, Any]:
    """The annotated parameters; ``*args``/``**kwargs``, missing annotations and reserved names
    (Airflow context keys: the function runs elsewhere and gets only its inputs) are errors."""
    hints = typing.get_type_hints(fn, include_extras=True)
    types: dict[str, Any] = {}
    for name, param in inspect.signature(fn).parameters.items():
        where = f"function {fn.__qualname__} parameter {name!r}"
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise LiteralConversionError(where, "a named, annotated parameter", str(param))
        if name in reserved:
            raise LiteralConversionError(
                where, "a task input (the function runs on the executor, without Airflow's context)",
                "an Airflow context key",
            )  # fmt: skip
        if name not in hints:
            raise LiteralConversionError(where, "a type annotation", "none")
        literal_type_from_python(hints[name], path=where)  # unsupported: fail now, naming it
        types[name] = hints[name]
    return types


def _type_key(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def value_descriptor(tp: Any) -> dict[str, Any] | None:
    """What the runner must do to a plain input value to give the function what it annotated.

    ``{"enum": key}`` for an ``Enum`` (a key of :func:`enum_types`: the member), ``{"record": key}``
    for a dataclass or pydantic model (a key of :func:`record_types`: an instance),
    ``{"dataframe": "pandas" | "arrow", "columns": [...]}`` (the dataset read), ``{"file": True}`` /
    ``{"directory": True}`` (a lazy reference to the URI), ``{"date": True}``,
    ``{"datetime": True}``, ``{"timedelta": True}`` (a record field holds them as strings and
    seconds), ``{"list": d}`` / ``{"dict": d}`` / ``{"union": [d, ...]}`` around one, ``None`` for a
    type whose plain value is already right.
    """
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": _type_key(tp)}
    if is_record_type(tp):
        return {"record": _type_key(tp)}
    frame = dataframe_kind(tp)
    if frame is not None:
        declared = dataset_literal_type(tp, path="", column_type=literal_type_from_python)
        return {"dataframe": frame, "columns": [c.name for c in declared.structured_dataset_type.columns]}
    if typing.get_origin(tp) is typing.Annotated:  # its metadata matters only to a DataFrame
        return value_descriptor(typing.get_args(tp)[0])
    if tp is File or tp is Directory:
        return {"file" if tp is File else "directory": True}
    scalar = _SCALAR_DESCRIPTORS.get(tp) if isinstance(tp, type) else None
    if scalar:
        return {scalar: True}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list and len(args) == 1:
        inner = value_descriptor(args[0])
        return {"list": inner} if inner else None
    if origin is dict and len(args) == 2:
        inner = value_descriptor(args[1])
        return {"dict": inner} if inner else None
    if origin is typing.Union or origin is types.UnionType:
        variants = [value_descriptor(arg) for arg in args]
        return {"union": variants} if any(variants) else None
    return None


_SCALAR_DESCRIPTORS: dict[type, str] = {
    datetime.date: "date",
    datetime.datetime: "datetime",
    datetime.timedelta: "timedelta",
}


def input_conversions(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """``{parameter: value_descriptor}`` for the parameters whose plain value needs converting."""
    found = {name: value_descriptor(tp) for name, tp in inputs.items()}
    return {name: descriptor for name, descriptor in found.items() if descriptor}


def _named_types_in(tp: Any, enums: dict[str, type[enum.Enum]], records: dict[str, type]) -> None:
    """Collect the enum and record classes ``tp`` names, also inside record fields (once each)."""
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        enums.setdefault(_type_key(tp), tp)
        return
    if is_record_type(tp):
        if _type_key(tp) in records:
            return
        records[_type_key(tp)] = tp
        for item in record_fields(tp):
            _named_types_in(item.annotation, enums, records)
        return
    for arg in typing.get_args(tp):
        _named_types_in(arg, enums, records)


def _named_types(*annotated: Mapping[str, Any]) -> tuple[dict[str, type[enum.Enum]], dict[str, type]]:
    enums: dict[str, type[enum.Enum]] = {}
    records: dict[str, type] = {}
    for types_by_name in annotated:
        for tp in types_by_name.values():
            _named_types_in(tp, enums, records)
    return enums, records


def _importable(cls: type, fn: Callable[..., Any]) -> bool:
    # Not when it is defined in the function's own module: that is the DAG file, which must not run
    # on the backend.
    return cls.__module__ != fn.__module__


def enum_types(fn: Callable[..., Any], *annotated: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every enum class the annotations name (inputs and outputs, and inside their records), by key:
    its name, module, qualified name, members, the kind of its values (``int`` ones are restored as
    ints: the template's ``custom`` is a protobuf Struct, where numbers are doubles), and whether the
    runner may import it."""
    enums, _ = _named_types(*annotated)
    return {
        key: {
            "name": cls.__name__,
            "module": cls.__module__,
            "qualname": cls.__qualname__,
            "members": [[member.name, member.value] for member in cls],
            "value_kind": "int" if all(isinstance(m.value, int) for m in cls) else "str",
            "importable": _importable(cls, fn),
        }
        for key, cls in enums.items()
    }


def _default_json(item: RecordField) -> str:
    try:
        return json.dumps(item.default)
    except (TypeError, ValueError):  # not JSON-like: the stand-in then defaults to None
        return "null"


def record_types(fn: Callable[..., Any], *annotated: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every dataclass and pydantic model the annotations name (also nested), by key: its name,
    module, qualified name, kind (``dataclass`` / ``pydantic``), whether the runner may import it, and
    its fields (name, :func:`value_descriptor`, whether it has a default, the default as JSON text:
    JSON keeps ints ints, the Struct would not). The runner builds a stand-in from the fields when the
    class cannot be imported there."""
    _, records = _named_types(*annotated)
    return {
        key: {
            "name": cls.__name__,
            "module": cls.__module__,
            "qualname": cls.__qualname__,
            "kind": "pydantic" if is_pydantic_model(cls) else "dataclass",
            "importable": _importable(cls, fn),
            "fields": [
                {
                    "name": item.name,
                    "convert": value_descriptor(item.annotation),
                    "has_default": item.has_default,
                    "default_json": _default_json(item) if item.has_default else "",
                }
                for item in record_fields(cls)
            ],
        }
        for key, cls in records.items()
    }


def function_source(fn: Callable[..., Any]) -> tuple[str, int]:
    """The function's own source (decorators removed, dedented) and the line its ``def`` is on."""
    raw, first = inspect.getsourcelines(fn)
    lines = textwrap.dedent("".join(raw)).splitlines()
    # Everything above the ``def`` line is decorators (possibly spanning several lines).
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith(("def ", "async def ")))
    return "\n".join(lines[start:]) + "\n", first + start


def function_template(
    fn: Callable[..., Any],
    *,
    name: str,
    reserved_inputs: Sequence[str] = (),
    recoverable_exceptions: Sequence[type[BaseException] | str] = (),
    cache: Cache | None = None,
    retries: int = 0,
    secrets: Sequence[tuple[str, str] | Mapping[str, str]] = (),
) -> tasks_pb2.TaskTemplate:
    """The TaskTemplate running ``fn`` through :mod:`executors.runtime.runner`. Raises
    :class:`LiteralConversionError` naming the parameter for an unsupported annotation."""
    if inspect.iscoroutinefunction(fn):
        raise LiteralConversionError(
            f"function {fn.__qualname__}", "a plain (not async) function", "async def"
        )
    kind, outputs = output_types(fn)
    inputs = input_types(fn, reserved=reserved_inputs)
    template = build_task_template(
        RUNNER_COMMAND,
        name=name,
        inputs=inputs,
        outputs=outputs,
        cache=cache,
        retries=retries,
        secrets=secrets,
    )
    source, line = function_source(fn)
    template.custom.update(
        {
            "python_source": source,
            "source_file": inspect.getsourcefile(fn) or "<unknown>",
            "source_line": line,
            "function_name": fn.__name__,
            "output_kind": kind,
            "output_type_name": _return_type_name(fn) if kind in ("namedtuple", "typeddict") else "",
            "output_names": list(outputs),
            "input_conversions": input_conversions(inputs),
            "enum_types": enum_types(fn, inputs, outputs),
            "record_types": record_types(fn, inputs, outputs),
            "recoverable_exceptions": [
                e if isinstance(e, str) else f"{e.__module__}.{e.__qualname__}"
                for e in recoverable_exceptions
            ],
        }
    )
    return template
