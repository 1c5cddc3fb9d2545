"""Flyte command templating: fill ``{{.input}}``, ``{{.outputPrefix}}``, ... in a container command.

Flyte serializes a container task's command with placeholders that the engine fills in just before
the container starts (seed: flyteplugins ``pluginmachinery/core/template``). flytekit's default
command, for instance, is::

    pyflyte-execute --inputs {{.input}} --output-prefix {{.outputPrefix}}
        --raw-output-data-prefix {{.rawOutputDataPrefix}}
        --checkpoint-path {{.checkpointOutputPrefix}} --prev-checkpoint {{.prevCheckpointPrefix}} ...

:func:`render_command` fills them the way Flyte does, so such commands run unchanged:

* A placeholder is ``{{``, optional whitespace, a sigil (``.`` or ``$``), a name, optional
  whitespace, ``}}``. Names are case-insensitive: ``{{.input}}``, ``{{ .Input }}`` and
  ``{{$INPUT}}`` are the same placeholder.
* ``{{.inputs.<name>}}`` is replaced by the value of input ``<name>`` rendered as text (see
  :func:`literal_to_template_string`). The input name itself is case-sensitive.
* An empty previous-checkpoint prefix renders as ``""`` (two double quotes), as in Flyte; flytekit
  reads that as "no previous checkpoint".

Where we are stricter than Flyte (which leaves anything it does not recognise untouched): a
placeholder with an unknown name, an unknown input, or a value that cannot be rendered is a
:class:`~executors.core.errors.TemplateRenderError` naming the argument. Text with braces that is not a
field reference (``{{ }}``, ``{{foo}}``, ``${{input}}``, ``{{ .a b }}``) is left alone.

Substitution is one pass over each argument: a substituted value is never scanned again, so a
path or an input value that happens to contain ``{{.input}}`` stays as it is.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import math
import re
from collections.abc import Callable, Sequence

from flyteidl.core import literals_pb2

from executors.core.errors import TemplateRenderError

__all__ = [
    "TemplateParameters",
    "literal_to_template_string",
    "render_arg",
    "render_command",
]


@dataclasses.dataclass(frozen=True)
class TemplateParameters:
    """The values placeholders are replaced with, for one execution attempt of one task."""

    input_file: str
    """``{{.input}}``: URL of ``inputs.pb``."""
    input_prefix: str
    """``{{.inputPrefix}}``: the folder that holds ``inputs.pb``."""
    output_prefix: str
    """``{{.outputPrefix}}``: the folder where ``outputs.pb`` / ``error.pb`` are written."""
    raw_output_prefix: str
    """``{{.rawOutputDataPrefix}}``: where the task writes offloaded data (files, dataframes)."""
    checkpoint_output_prefix: str = ""
    """``{{.checkpointOutputPrefix}}``: where this attempt writes checkpoints ("" if unsupported)."""
    prev_checkpoint_prefix: str = ""
    """``{{.prevCheckpointPrefix}}``: the previous attempt's checkpoints; "" renders as ``""``."""
    per_retry_unique_key: str = ""
    """``{{.perRetryUniqueKey}}``: unique per attempt; using it while it is "" is an error."""
    task_template_path: str = ""
    """``{{.taskTemplatePath}}``: URL of the serialized task template; using it while "" is an error."""
    inputs: literals_pb2.LiteralMap | None = None
    """The task's inputs, for ``{{.inputs.<name>}}``."""


# One placeholder: ``{{``, blanks, sigil ``.`` or ``$``, a name without blanks or braces, blanks, ``}}``.
# Flyte has one case-insensitive regex per name; matching every name in one pass (and dispatching
# on the name) is what lets us reject unknown names and never re-scan a substituted value.
_PLACEHOLDER_RE = re.compile(r"\{\{\s*[.$](?P<name>[^{}\s]+)\s*\}\}")

# What starts a placeholder: one that is not a complete match is unclosed or malformed.
_OPENING_RE = re.compile(r"\{\{\s*[.$][A-Za-z]")

# ``{{.inputs.<var>}}``: the ``inputs.`` part is case-insensitive, the variable name is not.
_INPUT_NAME_RE = re.compile(r"inputs\.(?P<var>.+)", re.IGNORECASE)

_EMPTY_PREV_CHECKPOINT = '""'
"""What Flyte renders for an empty previous-checkpoint prefix; flytekit maps it back to None."""


class _MissingValue(Exception):
    """Internal: a known placeholder whose value is not available."""


def _prev_checkpoint(params: TemplateParameters) -> str:
    return params.prev_checkpoint_prefix or _EMPTY_PREV_CHECKPOINT


def _required(get: Callable[[TemplateParameters], str], what: str) -> Callable[[TemplateParameters], str]:
    def value(params: TemplateParameters) -> str:
        text = get(params)
        if not text:
            raise _MissingValue(f"no {what} was provided for this execution")
        return text

    return value


# Spelling shown in messages -> how to get its value. Looked up by the lower-cased name.
_SPELLINGS: dict[str, Callable[[TemplateParameters], str]] = {
    "input": lambda p: p.input_file,
    "inputPrefix": lambda p: p.input_prefix,
    "outputPrefix": lambda p: p.output_prefix,
    "rawOutputDataPrefix": lambda p: p.raw_output_prefix,
    "checkpointOutputPrefix": lambda p: p.checkpoint_output_prefix,
    "prevCheckpointPrefix": _prev_checkpoint,
    "perRetryUniqueKey": _required(lambda p: p.per_retry_unique_key, "per-retry unique key"),
    "taskTemplatePath": _required(lambda p: p.task_template_path, "task template path"),
}
_PLACEHOLDERS = {spelling.lower(): value for spelling, value in _SPELLINGS.items()}
_KNOWN_PLACEHOLDERS = ", ".join([*(f"{{{{.{s}}}}}" for s in _SPELLINGS), "{{.inputs.<name>}}"])


def render_command(args: Sequence[str], params: TemplateParameters) -> list[str]:
    """Fill the placeholders of every argument of a container command (or its args).

    Errors name the argument by its 0-based position in ``args``.
    """
    if isinstance(args, str):
        raise TypeError("render_command() takes a sequence of arguments, not a single string")
    return [render_arg(arg, params, index=index) for index, arg in enumerate(args)]


def render_arg(arg: str, params: TemplateParameters, *, index: int | None = None) -> str:
    """Fill the placeholders of one argument; ``index`` (its position) only serves error messages.

    Raises :class:`TemplateRenderError` for an unknown placeholder, an unknown input, an input
    whose literal cannot be rendered as text, or a placeholder whose value was not provided.
    """
    where = "command argument" if index is None else f"command argument {index}"

    def substitute(match: re.Match[str]) -> str:
        placeholder = match.group(0)
        name = match.group("name")
        value = _PLACEHOLDERS.get(name.lower())
        if value is not None:
            try:
                return value(params)
            except _MissingValue as exc:
                raise TemplateRenderError(f"{where}: {placeholder!r} is used but {exc}") from None
        input_match = _INPUT_NAME_RE.fullmatch(name)
        if input_match is None:
            raise TemplateRenderError(
                f"{where}: unknown placeholder {placeholder!r}; known: {_KNOWN_PLACEHOLDERS}"
            )
        return _render_input(input_match.group("var"), placeholder, params, where)

    complete = {m.start() for m in _PLACEHOLDER_RE.finditer(arg)}
    for opening in _OPENING_RE.finditer(arg):
        if opening.start() not in complete:
            fragment = arg[opening.start() : opening.start() + 40]
            raise TemplateRenderError(f"{where}: unclosed or malformed placeholder {fragment!r}")
    return _PLACEHOLDER_RE.sub(substitute, arg)


def _render_input(var: str, placeholder: str, params: TemplateParameters, where: str) -> str:
    literals = params.inputs.literals if params.inputs is not None else {}
    if var not in literals:
        known = ", ".join(sorted(literals)) if literals else "(the task has no inputs)"
        raise TemplateRenderError(
            f"{where}: {placeholder!r} refers to unknown input {var!r}; known inputs: {known}"
        )
    try:
        return literal_to_template_string(literals[var], variable=f"input {var!r}")
    except TemplateRenderError as exc:
        raise TemplateRenderError(f"{where}: {placeholder!r}: {exc}") from exc


def literal_to_template_string(literal: literals_pb2.Literal, *, variable: str) -> str:
    """Render one input literal as command-line text, the way Flyte's templating does.

    * integer: decimal; float: Go's ``%v`` (shortest, ``1e+06`` from 1e6 on, ``+Inf``, ``NaN``);
      string: as is; boolean: ``true`` / ``false``.
    * datetime: RFC 3339 in UTC with as many fraction digits as needed, e.g.
      ``1900-01-01T01:01:01.000000001Z``.
    * duration: protobuf text of the ``Duration`` message, as Flyte prints it: ``seconds:90``,
      ``seconds:1 nanos:500000000``; a zero duration is the empty string.
    * collection: ``[a,b,...]`` of its rendered elements (nested collections nest).
    * blob, schema and structured dataset: their URI. Union: its value (both beyond Flyte, which
      only renders primitives, blobs, schemas and collections).
    * Anything else (map, none, struct, binary, error, offloaded literal) raises
      :class:`TemplateRenderError`.

    ``variable`` names the value in error messages, e.g. ``input 'xs'``; collection elements get
    ``[i]`` appended.
    """
    kind = literal.WhichOneof("value")
    if kind == "scalar":
        return _scalar_to_string(literal.scalar, variable)
    if kind == "collection":
        rendered = (
            literal_to_template_string(element, variable=f"{variable}[{position}]")
            for position, element in enumerate(literal.collection.literals)
        )
        return "[" + ",".join(rendered) + "]"
    raise _cannot_render(variable, _LITERAL_KIND_NAMES.get(kind, "an empty literal"))


_LITERAL_KIND_NAMES = {"map": "a map", "offloaded_metadata": "an offloaded literal"}
_SCALAR_KIND_NAMES = {
    "none_type": "a none value",
    "generic": "a struct (generic)",
    "binary": "a binary value",
    "error": "an error value",
}


def _cannot_render(variable: str, what: str) -> TemplateRenderError:
    return TemplateRenderError(
        f"{variable}: {what} cannot be rendered into a command argument; only primitives, blobs, "
        "schemas, structured datasets, unions and collections of them can"
    )


def _scalar_to_string(scalar: literals_pb2.Scalar, variable: str) -> str:
    kind = scalar.WhichOneof("value")
    if kind == "primitive":
        return _primitive_to_string(scalar.primitive, variable)
    if kind == "blob":
        return str(scalar.blob.uri)
    if kind == "schema":
        return str(scalar.schema.uri)
    if kind == "structured_dataset":
        return str(scalar.structured_dataset.uri)
    if kind == "union":
        return literal_to_template_string(scalar.union.value, variable=variable)
    raise _cannot_render(variable, _SCALAR_KIND_NAMES.get(kind, "an empty scalar"))


def _primitive_to_string(primitive: literals_pb2.Primitive, variable: str) -> str:
    kind = primitive.WhichOneof("value")
    if kind == "integer":
        return str(primitive.integer)
    if kind == "float_value":
        return _go_float(primitive.float_value)
    if kind == "string_value":
        return str(primitive.string_value)
    if kind == "boolean":
        return "true" if primitive.boolean else "false"
    if kind == "datetime":
        return _rfc3339_utc(primitive.datetime.seconds, primitive.datetime.nanos, variable)
    if kind == "duration":
        return _duration_text(primitive.duration.seconds, primitive.duration.nanos)
    raise _cannot_render(variable, "an empty primitive")


def _go_float(value: float) -> str:
    """``value`` as Go's ``fmt.Sprintf("%v", float64)`` prints it (``strconv`` format 'g', shortest).

    Shortest round-trip digits (Python's ``repr`` finds the same ones as Go), then exponent form
    when the decimal exponent is below -4 or at least 6, with a signed, two-digit-minimum exponent.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign, digit_tuple, exponent = decimal.Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)  # finite, so never 'n' / 'N' / 'F'
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + exponent  # the decimal point sits after this many digits
    decimal_exponent = point - 1
    prefix = "-" if sign else ""
    if decimal_exponent < -4 or decimal_exponent >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        exponent_sign = "-" if decimal_exponent < 0 else "+"
        return f"{prefix}{mantissa}e{exponent_sign}{abs(decimal_exponent):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{prefix}{digits}{'0' * (point - len(digits))}"
    return f"{prefix}{digits[:point]}.{digits[point:]}"


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def _rfc3339_utc(seconds: int, nanos: int, variable: str) -> str:
    """A protobuf ``Timestamp`` as Go's ``time.RFC3339Nano`` in UTC (trailing fraction zeros dropped)."""
    try:
        if not 0 <= nanos <= 999_999_999:
            raise ValueError(f"nanos {nanos} out of range")
        moment = _EPOCH + datetime.timedelta(seconds=seconds)
    except (ValueError, OverflowError) as exc:
        raise TemplateRenderError(
            f"{variable}: invalid datetime (seconds={seconds}, nanos={nanos}): {exc}"
        ) from None
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    return text + "Z"


def _duration_text(seconds: int, nanos: int) -> str:
    """A protobuf ``Duration`` the way Flyte prints it: the message's compact text format.

    Flyte calls ``Duration.String()``, which omits zero fields (so a zero duration renders as "").
    Go's protobuf randomly puts one or two blanks between fields to discourage parsing; we use one.
    """
    fields = []
    if seconds:
        fields.append(f"seconds:{seconds}")
    if nanos:
        fields.append(f"nanos:{nanos}")
    return " ".join(fields)
