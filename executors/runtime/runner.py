"""Runs a function task (``python -m executors.runtime.runner <inputs.pb> <output prefix> <task.pb>
<raw output prefix>``).

It reads the function's source from ``TaskTemplate.custom`` (written by
:func:`executors.data.function_task.function_template`), calls it with the inputs from ``inputs.pb``
and writes ``outputs.pb``. When the function raises, the traceback goes to stderr (and so to the
Airflow task log) and ``error.pb`` says whether to retry: an exception that is a
:class:`executors.runtime.task_io.RecoverableError`, or whose class (or a base class) is listed in the
task's ``recoverable_exceptions``, is retryable; every other one is a permanent user error.

Inputs reach the function as the plain values of :mod:`executors.data.literals`, converted to what
its annotations ask for (:mod:`executors.runtime.annotated_values`): an enum parameter (also inside
``list``, ``dict``, ``Optional`` or a record) gets the enum *member*, a dataclass or pydantic
parameter an *instance*, a ``date`` parameter a ``date``: of the class itself when its module can be
imported here, else of a stand-in with the same name and members or fields (also given to the
function under that name, as the class lives in the DAG file). Records returned are written as
their JSON-like form (msgpack, as flytekit writes them).

A return value that does not match the declared outputs (wrong type, missing NamedTuple field, ...)
is a permanent user error too (retrying would return the same value), its code the conversion
error's class and its message naming the output (``output 'o0': expected integer, got str 'x'``).

The function's source is executed as the task itself (what the DAG author wrote); no data is ever
unpickled or evaluated: inputs and outputs are flyteidl literals.
"""

from __future__ import annotations
import __future__

import collections
import sys
import traceback
from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format

from executors.core.errors import InterfaceMismatchError, LiteralConversionError
from executors.data.function_task import SINGLE_OUTPUT
from executors.runtime.annotated_values import prepare_conversions
from executors.runtime.offload import offload_outputs
from executors.runtime.task_io import RecoverableError, load_template, read_inputs, write_error, write_outputs


def _outputs(kind: str, result: Any, type_name: str) -> dict[str, Any]:
    if kind == "none":
        return {}
    if kind == "single":
        return {SINGLE_OUTPUT: result}
    if kind == "namedtuple":
        if not (isinstance(result, tuple) and hasattr(result, "_asdict")):
            raise LiteralConversionError(
                "output", f"{type_name} (a NamedTuple)", f"{type(result).__name__} {result!r:.60}"
            )
        return dict(result._asdict())
    if not isinstance(result, Mapping):
        raise LiteralConversionError(
            "output", f"{type_name} (a TypedDict)", f"{type(result).__name__} {result!r:.60}"
        )
    return dict(result)


def _recoverable(exc: BaseException, names: list[str]) -> bool:
    if isinstance(exc, RecoverableError):
        return True
    for cls in type(exc).__mro__:
        if f"{cls.__module__}.{cls.__qualname__}" in names or cls.__qualname__ in names:
            return True
    return False


def _provide_return_type(namespace: dict[str, Any], custom: dict[str, Any]) -> None:
    """A NamedTuple/TypedDict return type lives in the DAG file, not in the function's source:
    give the function a stand-in with the same name and fields."""
    type_name = custom.get("output_type_name")
    if not type_name:
        return
    fields = list(custom.get("output_names", []))
    if custom.get("output_kind") == "namedtuple":
        namespace[type_name] = collections.namedtuple(type_name, fields)
    else:
        namespace[type_name] = dict


def main(argv: list[str]) -> int:
    inputs_file, output_prefix, template_file = argv[:3]
    # {{.rawOutputDataPrefix}}: where DataFrames are written (absent from templates made before it).
    raw_prefix = argv[3] if len(argv) > 3 else f"{output_prefix.rstrip('/')}/raw"
    template = load_template(template_file)
    custom = json_format.MessageToDict(template.custom)
    name = custom["function_name"]
    namespace: dict[str, Any] = {"__name__": f"executor_task_{name}"}
    _provide_return_type(namespace, custom)
    try:
        converters = prepare_conversions(namespace, custom)
        # Annotations stay unevaluated: they may name types of the DAG file that are not here.
        # Padded to its line in the DAG file, so tracebacks point at the DAG author's own lines.
        source = "\n" * (int(custom.get("source_line", 1)) - 1) + custom["python_source"]
        flags = __future__.annotations.compiler_flag
        code = compile(source, custom.get("source_file", f"<task {name}>"), "exec", flags=flags)
        exec(code, namespace)
        function = namespace[name]
        kwargs = read_inputs(inputs_file, template_file)
        for key, convert in converters.items():
            if key in kwargs:
                kwargs[key] = convert(kwargs[key])
        result = function(**kwargs)
    except BaseException as exc:
        text = traceback.format_exc()
        print(text, file=sys.stderr, flush=True)
        recoverable = _recoverable(exc, list(custom.get("recoverable_exceptions", [])))
        write_error(output_prefix, f"{type(exc).__name__}: {exc}\n\n{text}", code=type(exc).__name__,
                    recoverable=recoverable)  # fmt: skip
        return 1
    try:
        values = _outputs(custom.get("output_kind", "single"), result, custom.get("output_type_name", ""))
        values = offload_outputs(values, template.interface.outputs, raw_prefix)
        write_outputs(output_prefix, values, template_file)  # converts (and may refuse) before writing
    except (LiteralConversionError, InterfaceMismatchError) as exc:
        # The function returned something its annotation does not allow: every retry would too.
        message = f"{exc} (the return value of {name} does not match its declared outputs)"
        print(message, file=sys.stderr, flush=True)
        write_error(output_prefix, message, code=type(exc).__name__, recoverable=False)
        return 1
    except ModuleNotFoundError as exc:  # e.g. pyarrow, to write a DataFrame: a retry would not have it
        message = f"{exc} (writing the outputs of {name})"
        print(message, file=sys.stderr, flush=True)
        write_error(output_prefix, message, code=type(exc).__name__, recoverable=False)
        return 1
    except OSError as exc:  # the data store failed while a DataFrame was written: worth a retry
        message = f"{type(exc).__name__}: {exc} (writing the outputs of {name} to {raw_prefix})"
        print(message, file=sys.stderr, flush=True)
        write_error(output_prefix, message, code=type(exc).__name__, recoverable=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
