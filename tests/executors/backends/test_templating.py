from __future__ import annotations

import math
import re

import pytest
from flyteidl.core import literals_pb2, types_pb2
from flyteidl.core.types_pb2 import Error as ErrorValue
from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2

from executors.backends.templating import (
    TemplateParameters,
    literal_to_template_string,
    render_arg,
    render_command,
)
from executors.core.errors import TemplateRenderError

# --- literal builders ---------------------------------------------------------------------------


def primitive(**value: object) -> literals_pb2.Literal:
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(**value)))


def collection(*items: literals_pb2.Literal) -> literals_pb2.Literal:
    return literals_pb2.Literal(collection=literals_pb2.LiteralCollection(literals=list(items)))


def blob(uri: str) -> literals_pb2.Literal:
    meta = literals_pb2.BlobMetadata(type=types_pb2.BlobType(dimensionality=types_pb2.BlobType.SINGLE))
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(blob=literals_pb2.Blob(uri=uri, metadata=meta)))


def union(inner: literals_pb2.Literal) -> literals_pb2.Literal:
    simple = types_pb2.LiteralType(simple=types_pb2.INTEGER)
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(union=literals_pb2.Union(value=inner, type=simple))
    )


def none() -> literals_pb2.Literal:
    return literals_pb2.Literal(scalar=literals_pb2.Scalar(none_type=literals_pb2.Void()))


def timestamp(seconds: int, nanos: int = 0) -> literals_pb2.Literal:
    return primitive(datetime=timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos))


def duration(seconds: int, nanos: int = 0) -> literals_pb2.Literal:
    return primitive(duration=duration_pb2.Duration(seconds=seconds, nanos=nanos))


def literal_map(**literals: literals_pb2.Literal) -> literals_pb2.LiteralMap:
    return literals_pb2.LiteralMap(literals=literals)


PARAMS = TemplateParameters(
    input_file="s3://bucket/run/n0/inputs.pb",
    input_prefix="s3://bucket/run/n0",
    output_prefix="s3://bucket/run/n0/0",
    raw_output_prefix="s3://bucket/raw/ab/run-n0-0",
    checkpoint_output_prefix="s3://bucket/raw/ab/run-n0-0/_flytecheckpoints",
    prev_checkpoint_prefix="s3://bucket/raw/cd/run-n0-0/_flytecheckpoints",
    per_retry_unique_key="arun_n0_0",
    task_template_path="s3://bucket/run/n0/task.pb",
    inputs=literal_map(
        x=primitive(integer=42),
        name=primitive(string_value="world"),
        Upper=primitive(string_value="case-sensitive"),
    ),
)

# --- path placeholders --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("{{.input}}", "s3://bucket/run/n0/inputs.pb"),
        ("{{ .Input }}", "s3://bucket/run/n0/inputs.pb"),
        ("{{$input}}", "s3://bucket/run/n0/inputs.pb"),
        ("{{ $INPUT }}", "s3://bucket/run/n0/inputs.pb"),
        ("{{\t.input\n}}", "s3://bucket/run/n0/inputs.pb"),
        ("{{.inputPrefix}}", "s3://bucket/run/n0"),
        ("{{ .InputPrefix }}", "s3://bucket/run/n0"),
        ("{{$inputprefix}}", "s3://bucket/run/n0"),
        ("{{.outputPrefix}}", "s3://bucket/run/n0/0"),
        ("{{ .OutputPrefix }}", "s3://bucket/run/n0/0"),
        ("{{$OUTPUTPREFIX}}", "s3://bucket/run/n0/0"),
        ("{{.rawOutputDataPrefix}}", "s3://bucket/raw/ab/run-n0-0"),
        ("{{ .RawOutputDataPrefix }}", "s3://bucket/raw/ab/run-n0-0"),
        ("{{ $RawOutputDataPrefix }}", "s3://bucket/raw/ab/run-n0-0"),
        ("{{.checkpointOutputPrefix}}", "s3://bucket/raw/ab/run-n0-0/_flytecheckpoints"),
        ("{{ .checkpointoutputprefix }}", "s3://bucket/raw/ab/run-n0-0/_flytecheckpoints"),
        ("{{$CheckpointOutputPrefix}}", "s3://bucket/raw/ab/run-n0-0/_flytecheckpoints"),
        ("{{.prevCheckpointPrefix}}", "s3://bucket/raw/cd/run-n0-0/_flytecheckpoints"),
        ("{{ .PrevCheckpointPrefix }}", "s3://bucket/raw/cd/run-n0-0/_flytecheckpoints"),
        ("{{$prevcheckpointprefix}}", "s3://bucket/raw/cd/run-n0-0/_flytecheckpoints"),
        ("{{.perRetryUniqueKey}}", "arun_n0_0"),
        ("{{ .PerretryuNIqueKey }}", "arun_n0_0"),
        ("{{$perRetryUniqueKey}}", "arun_n0_0"),
        ("{{.taskTemplatePath}}", "s3://bucket/run/n0/task.pb"),
        ("{{ .TaskTemplatePath }}", "s3://bucket/run/n0/task.pb"),
        ("{{$tasktemplatepath}}", "s3://bucket/run/n0/task.pb"),
        ("--inputs={{.input}}", "--inputs=s3://bucket/run/n0/inputs.pb"),
        ("{{.input}} {{.outputPrefix}}", "s3://bucket/run/n0/inputs.pb s3://bucket/run/n0/0"),
        ("{{.input}}{{.input}}", "s3://bucket/run/n0/inputs.pb" * 2),
        ("plain", "plain"),
        ("", ""),
    ],
)
def test_path_placeholders(arg: str, expected: str) -> None:
    assert render_arg(arg, PARAMS) == expected


def test_empty_prev_checkpoint_renders_two_double_quotes_like_flyte() -> None:
    params = TemplateParameters(input_file="i", input_prefix="p", output_prefix="o", raw_output_prefix="r")
    assert render_command(["--prev={{ .PrevCheckpointPrefix }}", "{{.prevCheckpointPrefix}}"], params) == [
        '--prev=""',
        '""',
    ]


def test_empty_checkpoint_output_prefix_renders_empty() -> None:
    params = TemplateParameters(input_file="i", input_prefix="p", output_prefix="o", raw_output_prefix="r")
    assert render_command(["--checkpoint-path", "{{.checkpointOutputPrefix}}"], params) == [
        "--checkpoint-path",
        "",
    ]


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("{{.perRetryUniqueKey}}", "per-retry unique key"),
        ("{{ .TaskTemplatePath }}", "task template path"),
    ],
)
def test_unprovided_required_value_is_an_error(arg: str, message: str) -> None:
    params = TemplateParameters(input_file="i", input_prefix="p", output_prefix="o", raw_output_prefix="r")
    with pytest.raises(TemplateRenderError) as info:
        render_command(["run", arg], params)
    assert str(info.value) == (
        f"command argument 1: {arg!r} is used but no {message} was provided for this execution"
    )


# --- flytekit's real command lines --------------------------------------------------------------


def test_flytekit_default_command_end_to_end() -> None:
    # PythonAutoContainerTask.get_default_command, as serialized by `pyflyte package`.
    command = [
        "pyflyte-execute",
        "--inputs",
        "{{.input}}",
        "--output-prefix",
        "{{.outputPrefix}}",
        "--raw-output-data-prefix",
        "{{.rawOutputDataPrefix}}",
        "--checkpoint-path",
        "{{.checkpointOutputPrefix}}",
        "--prev-checkpoint",
        "{{.prevCheckpointPrefix}}",
        "--resolver",
        "flytekit.core.python_auto_container.default_task_resolver",
        "--",
        "task-module",
        "my_pkg.workflows",
        "task-name",
        "t1",
    ]
    params = TemplateParameters(
        input_file="/data/run/n0/inputs.pb",
        input_prefix="/data/run/n0",
        output_prefix="/data/run/n0/0",
        raw_output_prefix="/data/raw/run-n0-0",
        checkpoint_output_prefix="/data/raw/run-n0-0/_flytecheckpoints",
    )
    assert render_command(command, params) == [
        "pyflyte-execute",
        "--inputs",
        "/data/run/n0/inputs.pb",
        "--output-prefix",
        "/data/run/n0/0",
        "--raw-output-data-prefix",
        "/data/raw/run-n0-0",
        "--checkpoint-path",
        "/data/raw/run-n0-0/_flytecheckpoints",
        "--prev-checkpoint",
        '""',
        "--resolver",
        "flytekit.core.python_auto_container.default_task_resolver",
        "--",
        "task-module",
        "my_pkg.workflows",
        "task-name",
        "t1",
    ]


def test_flytekit_map_task_command_with_empty_vars_argument() -> None:
    command = [
        "pyflyte-map-execute",
        "--inputs",
        "{{.input}}",
        "--output-prefix",
        "{{.outputPrefix}}",
        "--raw-output-data-prefix",
        "{{.rawOutputDataPrefix}}",
        "--checkpoint-path",
        "{{.checkpointOutputPrefix}}",
        "--prev-checkpoint",
        "{{.prevCheckpointPrefix}}",
        "--experimental",
        "--resolver",
        "ArrayNodeMapTaskResolver",
        "--",
        "vars",
        "",
    ]
    assert render_command(command, PARAMS) == [
        "pyflyte-map-execute",
        "--inputs",
        "s3://bucket/run/n0/inputs.pb",
        "--output-prefix",
        "s3://bucket/run/n0/0",
        "--raw-output-data-prefix",
        "s3://bucket/raw/ab/run-n0-0",
        "--checkpoint-path",
        "s3://bucket/raw/ab/run-n0-0/_flytecheckpoints",
        "--prev-checkpoint",
        "s3://bucket/raw/cd/run-n0-0/_flytecheckpoints",
        "--experimental",
        "--resolver",
        "ArrayNodeMapTaskResolver",
        "--",
        "vars",
        "",
    ]


def test_render_command_keeps_length_and_accepts_tuples() -> None:
    assert render_command((), PARAMS) == []
    assert render_command(("echo", "{{.inputs.x}}"), PARAMS) == ["echo", "42"]


def test_render_command_rejects_a_single_string() -> None:
    with pytest.raises(TypeError, match="sequence of arguments"):
        render_command("{{.input}}", PARAMS)


# --- {{.inputs.<name>}} -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("{{.inputs.x}}", "42"),
        ("{{ .Inputs.x }}", "42"),
        ("{{$INPUTS.x}}", "42"),
        ("--x={{.inputs.x}}", "--x=42"),
        ("hello {{ .inputs.name }}!", "hello world!"),
        ("{{.inputs.Upper}}", "case-sensitive"),
        ("{{.inputs.x}}/{{.inputs.name}}/{{.outputPrefix}}", "42/world/s3://bucket/run/n0/0"),
    ],
)
def test_input_placeholders(arg: str, expected: str) -> None:
    assert render_arg(arg, PARAMS) == expected


def test_multi_line_sql_like_flyte() -> None:
    params = TemplateParameters(
        input_file="i",
        input_prefix="p",
        output_prefix="o",
        raw_output_prefix="r",
        inputs=literal_map(
            ds=timestamp(-2208985139, 1),
            table=primitive(string_value="my_table"),
            hr=primitive(string_value="hr"),
            min=primitive(integer=15),
        ),
    )
    sql = (
        "SELECT COUNT(*) FROM hive.events.{{ .Inputs.table }}\n"
        "WHERE ds = '{{ .Inputs.ds }}' AND hr = '{{ .Inputs.hr }}' AND min = {{ .Inputs.min }}"
    )
    assert render_arg(sql, params) == (
        "SELECT COUNT(*) FROM hive.events.my_table\n"
        "WHERE ds = '1900-01-01T01:01:01.000000001Z' AND hr = 'hr' AND min = 15"
    )


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        # integer
        (primitive(integer=0), "0"),
        (primitive(integer=-7), "-7"),
        (primitive(integer=2**63 - 1), "9223372036854775807"),
        # float: Go's %v
        (primitive(float_value=1.5), "1.5"),
        (primitive(float_value=1.0), "1"),
        (primitive(float_value=0.0), "0"),
        (primitive(float_value=-0.0), "-0"),
        (primitive(float_value=0.1), "0.1"),
        (primitive(float_value=-2.5), "-2.5"),
        (primitive(float_value=100.0), "100"),
        (primitive(float_value=123456.0), "123456"),
        (primitive(float_value=999999.5), "999999.5"),
        (primitive(float_value=1e6), "1e+06"),
        (primitive(float_value=1234567.0), "1.234567e+06"),
        (primitive(float_value=1e21), "1e+21"),
        (primitive(float_value=1e100), "1e+100"),
        (primitive(float_value=0.0001), "0.0001"),
        (primitive(float_value=0.000123), "0.000123"),
        (primitive(float_value=0.00001), "1e-05"),
        (primitive(float_value=-1.25e-7), "-1.25e-07"),
        (primitive(float_value=5e-324), "5e-324"),
        (primitive(float_value=1.7976931348623157e308), "1.7976931348623157e+308"),
        (primitive(float_value=math.inf), "+Inf"),
        (primitive(float_value=-math.inf), "-Inf"),
        (primitive(float_value=math.nan), "NaN"),
        # string
        (primitive(string_value="a b"), "a b"),
        (primitive(string_value=""), ""),
        # boolean: Go's %v
        (primitive(boolean=True), "true"),
        (primitive(boolean=False), "false"),
        # datetime: RFC 3339 with nanoseconds, UTC, trailing zeros dropped
        (timestamp(0), "1970-01-01T00:00:00Z"),
        (timestamp(1_700_000_000, 500_000_000), "2023-11-14T22:13:20.5Z"),
        (timestamp(1_700_000_000, 123_000), "2023-11-14T22:13:20.000123Z"),
        (timestamp(-2208985139, 1), "1900-01-01T01:01:01.000000001Z"),
        (timestamp(-62135596800), "0001-01-01T00:00:00Z"),
        # duration: Flyte prints the Duration message's text format
        (duration(90), "seconds:90"),
        (duration(1, 500_000_000), "seconds:1 nanos:500000000"),
        (duration(0, 250), "nanos:250"),
        (duration(-3, -5), "seconds:-3 nanos:-5"),
        (duration(0), ""),
        # collections
        (collection(primitive(string_value="a"), primitive(string_value="b")), "[a,b]"),
        (collection(primitive(integer=1), primitive(integer=2), primitive(integer=3)), "[1,2,3]"),
        (
            collection(
                collection(primitive(string_value="a"), primitive(string_value="b")),
                collection(primitive(integer=1), primitive(integer=2)),
            ),
            "[[a,b],[1,2]]",
        ),
        (collection(primitive(boolean=True), primitive(float_value=2.0)), "[true,2]"),
        (collection(), "[]"),
        # blob, schema, structured dataset: the URI
        (blob("s3://bucket/data/file.csv"), "s3://bucket/data/file.csv"),
        (collection(blob("/a"), blob("/b")), "[/a,/b]"),
        (
            literals_pb2.Literal(scalar=literals_pb2.Scalar(schema=literals_pb2.Schema(uri="s3://b/schema"))),
            "s3://b/schema",
        ),
        (
            literals_pb2.Literal(
                scalar=literals_pb2.Scalar(
                    structured_dataset=literals_pb2.StructuredDataset(uri="s3://b/df.parquet")
                )
            ),
            "s3://b/df.parquet",
        ),
        # union: its value
        (union(primitive(integer=5)), "5"),
        (union(collection(primitive(integer=1))), "[1]"),
        (union(union(primitive(string_value="deep"))), "deep"),
    ],
)
def test_literal_to_template_string(literal: literals_pb2.Literal, expected: str) -> None:
    assert literal_to_template_string(literal, variable="input 'v'") == expected


@pytest.mark.parametrize(
    ("literal", "what"),
    [
        (literals_pb2.Literal(map=literals_pb2.LiteralMap(literals={"a": primitive(integer=1)})), "a map"),
        (none(), "a none value"),
        (union(none()), "a none value"),
        (
            literals_pb2.Literal(
                scalar=literals_pb2.Scalar(
                    generic=struct_pb2.Struct(fields={"a": struct_pb2.Value(number_value=1)})
                )
            ),
            "a struct (generic)",
        ),
        (
            literals_pb2.Literal(
                scalar=literals_pb2.Scalar(binary=literals_pb2.Binary(value=b"\x01", tag="msgpack"))
            ),
            "a binary value",
        ),
        (
            literals_pb2.Literal(scalar=literals_pb2.Scalar(error=ErrorValue(message="boom"))),
            "an error value",
        ),
        (
            literals_pb2.Literal(offloaded_metadata=literals_pb2.LiteralOffloadedMetadata(uri="s3://x")),
            "an offloaded literal",
        ),
        (literals_pb2.Literal(), "an empty literal"),
        (literals_pb2.Literal(scalar=literals_pb2.Scalar()), "an empty scalar"),
        (primitive(), "an empty primitive"),
    ],
)
def test_unrenderable_literals(literal: literals_pb2.Literal, what: str) -> None:
    with pytest.raises(TemplateRenderError) as info:
        literal_to_template_string(literal, variable="input 'v'")
    assert str(info.value) == (
        f"input 'v': {what} cannot be rendered into a command argument; only primitives, blobs, "
        "schemas, structured datasets, unions and collections of them can"
    )


def test_unrenderable_collection_element_is_named_by_position() -> None:
    literal = collection(primitive(integer=1), primitive(integer=2), none())
    with pytest.raises(TemplateRenderError, match=r"^input 'xs'\[2\]: a none value cannot be rendered"):
        literal_to_template_string(literal, variable="input 'xs'")


def test_unrenderable_input_in_a_command_names_argument_and_placeholder() -> None:
    params = TemplateParameters(
        input_file="i",
        input_prefix="p",
        output_prefix="o",
        raw_output_prefix="r",
        inputs=literal_map(m=literals_pb2.Literal(map=literals_pb2.LiteralMap())),
    )
    with pytest.raises(TemplateRenderError) as info:
        render_command(["run", "--m", "{{ .inputs.m }}"], params)
    assert str(info.value) == (
        "command argument 2: '{{ .inputs.m }}': input 'm': a map cannot be rendered into a command "
        "argument; only primitives, blobs, schemas, structured datasets, unions and collections of them can"
    )


@pytest.mark.parametrize(
    ("literal", "message"),
    [
        (timestamp(253402300800), "invalid datetime (seconds=253402300800, nanos=0)"),
        (timestamp(0, -1), "invalid datetime (seconds=0, nanos=-1)"),
    ],
)
def test_invalid_datetime_is_an_error(literal: literals_pb2.Literal, message: str) -> None:
    with pytest.raises(TemplateRenderError, match="^" + re.escape(f"input 'd': {message}")):
        literal_to_template_string(literal, variable="input 'd'")


# --- errors -------------------------------------------------------------------------------------


def test_unknown_input_names_variable_index_and_known_inputs() -> None:
    with pytest.raises(TemplateRenderError) as info:
        render_command(["echo", "a", "b", "--y={{ .Inputs.y }}"], PARAMS)
    assert str(info.value) == (
        "command argument 3: '{{ .Inputs.y }}' refers to unknown input 'y'; known inputs: Upper, name, x"
    )


def test_input_names_are_case_sensitive() -> None:
    with pytest.raises(TemplateRenderError, match="unknown input 'X'"):
        render_arg("{{.inputs.X}}", PARAMS, index=0)


@pytest.mark.parametrize("inputs", [None, literals_pb2.LiteralMap()])
def test_unknown_input_without_any_inputs(inputs: literals_pb2.LiteralMap | None) -> None:
    params = TemplateParameters(
        input_file="i", input_prefix="p", output_prefix="o", raw_output_prefix="r", inputs=inputs
    )
    with pytest.raises(TemplateRenderError) as info:
        render_arg("{{.inputs.x}}", params, index=0)
    assert str(info.value) == (
        "command argument 0: '{{.inputs.x}}' refers to unknown input 'x'; "
        "known inputs: (the task has no inputs)"
    )


KNOWN = (
    "{{.input}}, {{.inputPrefix}}, {{.outputPrefix}}, {{.rawOutputDataPrefix}}, "
    "{{.checkpointOutputPrefix}}, {{.prevCheckpointPrefix}}, {{.perRetryUniqueKey}}, "
    "{{.taskTemplatePath}}, {{.inputs.<name>}}"
)


@pytest.mark.parametrize(
    ("arg", "placeholder"),
    [
        ("{{.foo}}", "{{.foo}}"),
        ("--x={{ .wrongOutputDataPrefix }}", "{{ .wrongOutputDataPrefix }}"),
        ("{{$Namespace}}", "{{$Namespace}}"),
        ("{{.inputFile}}", "{{.inputFile}}"),  # Flyte's docs say InputFile, its regex only accepts Input
        ("{{.inputs}}", "{{.inputs}}"),
        ("{{.inputs.}}", "{{.inputs.}}"),
        ("{{ .remote_package_path }}", "{{ .remote_package_path }}"),  # fast-register, filled by flytekit
        ("{{.input}} then {{.State.Running}}", "{{.State.Running}}"),
    ],
)
def test_unknown_placeholder(arg: str, placeholder: str) -> None:
    with pytest.raises(TemplateRenderError) as info:
        render_command(["a", "b", "c", arg], PARAMS)
    assert str(info.value) == f"command argument 3: unknown placeholder {placeholder!r}; known: {KNOWN}"


def test_error_without_index() -> None:
    with pytest.raises(TemplateRenderError) as info:
        render_arg("{{.foo}}", PARAMS)
    assert str(info.value) == f"command argument: unknown placeholder '{{{{.foo}}}}'; known: {KNOWN}"


def test_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        render_arg("{{.foo}}", PARAMS, index=0)


# --- text that is not a placeholder -------------------------------------------------------------


@pytest.mark.parametrize(
    "arg",
    [
        "{{ }}",
        "{{}}",
        "{{foo}}",
        "{{ input }}",
        "${{input}}",
        "{{.}}",
        "{{$}}",
        "{{- .input -}}",
        "{ .input }",
        ".input }}",
        "awk '{print $1}'",
        "{{ range .Items }}",
    ],
)
def test_non_placeholder_braces_are_left_alone(arg: str) -> None:
    assert render_arg(arg, PARAMS, index=0) == arg


@pytest.mark.parametrize(
    "arg", ["{{ .Inputs.blah blah }}", "{{{.input}", "{{ .input", "{{.in put}}", "x {{.outputPrefix"]
)
def test_unclosed_or_malformed_placeholders_are_errors(arg: str) -> None:
    # They look like placeholders: leaving them in the command would fail later, far from the cause.
    with pytest.raises(TemplateRenderError, match="command argument 2: unclosed or malformed placeholder"):
        render_arg(arg, PARAMS, index=2)


def test_extra_braces_around_a_placeholder_are_kept() -> None:
    assert render_arg("{{{.input}}}", PARAMS) == "{s3://bucket/run/n0/inputs.pb}"


# --- no double expansion ------------------------------------------------------------------------


def test_substituted_paths_are_not_expanded_again() -> None:
    params = TemplateParameters(
        input_file="s3://b/{{.outputPrefix}}/inputs.pb",
        input_prefix="p",
        output_prefix="s3://b/{{.input}}",
        raw_output_prefix="{{.foo}}",
    )
    assert render_command(["{{.input}}", "{{.outputPrefix}}", "{{.rawOutputDataPrefix}}"], params) == [
        "s3://b/{{.outputPrefix}}/inputs.pb",
        "s3://b/{{.input}}",
        "{{.foo}}",
    ]


def test_substituted_input_values_are_not_expanded_again() -> None:
    params = TemplateParameters(
        input_file="i",
        input_prefix="p",
        output_prefix="o",
        raw_output_prefix="r",
        inputs=literal_map(
            s=primitive(string_value="{{.input}} {{.inputs.t}} {{.unknown}}"),
            t=primitive(string_value="T"),
        ),
    )
    assert render_arg("{{.inputs.s}}|{{.inputs.t}}", params) == "{{.input}} {{.inputs.t}} {{.unknown}}|T"
