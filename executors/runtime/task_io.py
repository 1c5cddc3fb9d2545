"""Helpers for the *task side*: read ``inputs.pb``, write ``outputs.pb`` / ``error.pb``.

A task's command receives Flyte's paths through placeholders and can use these functions to
speak plain Python::

    python -c "
    import sys
    from executors import task_io
    inputs = task_io.read_inputs(sys.argv[1], sys.argv[3])
    task_io.write_outputs(sys.argv[2], {'y': inputs['x'] * 2}, sys.argv[3])
    " {{.input}} {{.outputPrefix}} {{.taskTemplatePath}}

Any other program that reads and writes the same flyteidl protobufs (flytekit's entrypoint, a Go
or Java binary) works just as well: these helpers are a convenience, not a contract.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from flyteidl.core import errors_pb2, execution_pb2, literals_pb2, tasks_pb2

from executors.data.literals import from_literal_map, to_literal_map
from executors.data.storage import DataStore, join


class RecoverableError(Exception):
    """Raise it (or a subclass) from a function task to have Airflow retry the task."""


def load_template(template_file: str) -> tasks_pb2.TaskTemplate:
    return asyncio.run(DataStore().read_protobuf(template_file, tasks_pb2.TaskTemplate))


def _template(template_file: str | None) -> tasks_pb2.TaskTemplate | None:
    return load_template(template_file) if template_file else None


def read_inputs(inputs_file: str, template_file: str | None = None) -> dict[str, Any]:
    """The task's inputs as Python values (typed by the template's interface when given)."""
    literal_map = asyncio.run(DataStore().read_protobuf(inputs_file, literals_pb2.LiteralMap))
    template = _template(template_file)
    return from_literal_map(literal_map, template.interface.inputs if template else None, kind="input")


def write_outputs(output_prefix: str, values: Mapping[str, Any], template_file: str) -> None:
    """Write ``outputs.pb``; every value is checked against the declared output type."""
    template = _template(template_file)
    assert template is not None
    literal_map = to_literal_map(values, template.interface.outputs, kind="output")
    asyncio.run(DataStore().write_protobuf(join(output_prefix, "outputs.pb"), literal_map))


def write_error(
    output_prefix: str, message: str, *, code: str = "UserError", recoverable: bool = False
) -> None:
    """Write ``error.pb``: a recoverable error is retried by Airflow, another one is not."""
    document = errors_pb2.ErrorDocument()
    document.error.code = code
    document.error.message = message
    document.error.kind = (
        errors_pb2.ContainerError.RECOVERABLE if recoverable else errors_pb2.ContainerError.NON_RECOVERABLE
    )
    document.error.origin = execution_pb2.ExecutionError.USER
    asyncio.run(DataStore().write_protobuf(join(output_prefix, "error.pb"), document))
