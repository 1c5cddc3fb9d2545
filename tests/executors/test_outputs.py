"""OutputsResolver and error documents, on a real local folder and on ``memory://``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flyteidl.core import errors_pb2, execution_pb2, literals_pb2

from executors import (
    CorruptDataError,
    DataNotFoundError,
    DataStore,
    ErrorOrigin,
    OutputsError,
    OutputsResolver,
    TaskContext,
    TaskExecutionID,
    TaskPhase,
    read_error_document,
    status_from_error_document,
)
from executors.literals import from_literal_map
from tests.conftest import make_identifier


@pytest.fixture(params=["local", "memory"])
def ctx(request: pytest.FixtureRequest, tmp_path: Path, store: DataStore) -> Iterator[TaskContext]:
    if request.param == "local":
        data_dir = str(tmp_path / "exec")
    else:
        data_dir = f"memory://outputs-tests/{uuid.uuid4().hex}"
    yield TaskContext(task_execution_id=TaskExecutionID.create(make_identifier()), data_dir=data_dir)
    if request.param == "memory":
        fs, path = store.filesystem(data_dir)
        if fs.exists(path):
            fs.rm(path, recursive=True)


def sample_outputs() -> literals_pb2.LiteralMap:
    lm = literals_pb2.LiteralMap()
    lm.literals["a"].scalar.primitive.integer = 7
    lm.literals["b"].scalar.primitive.string_value = "x"
    lm.literals["c"].scalar.primitive.float_value = 2.5
    return lm


def as_python(literals: dict[str, literals_pb2.Literal]) -> dict[str, object]:
    lm = literals_pb2.LiteralMap()
    for name, literal in literals.items():
        lm.literals[name].CopyFrom(literal)
    return from_literal_map(lm)


async def test_all_outputs(ctx: TaskContext, store: DataStore) -> None:
    await store.write_protobuf(ctx.outputs_file, sample_outputs())
    resolver = OutputsResolver(store)
    assert await resolver.read_outputs(ctx) == sample_outputs()
    outputs = await resolver.resolve_outputs(ctx)
    assert sorted(outputs) == ["a", "b", "c"]
    assert as_python(outputs) == {"a": 7, "b": "x", "c": 2.5}


async def test_named_subset_only(ctx: TaskContext, store: DataStore) -> None:
    await store.write_protobuf(ctx.outputs_file, sample_outputs())
    outputs = await OutputsResolver(store).resolve_outputs(ctx, "c", "a")
    assert list(outputs) == ["c", "a"]
    assert as_python(outputs) == {"a": 7, "c": 2.5}
    assert outputs["a"] == sample_outputs().literals["a"]


async def test_missing_outputs_file_names_the_file(ctx: TaskContext, store: DataStore) -> None:
    resolver = OutputsResolver(store)
    with pytest.raises(OutputsError) as info:
        await resolver.resolve_outputs(ctx, "a")
    assert ctx.outputs_file in str(info.value)
    assert "not found" in str(info.value)
    assert isinstance(info.value.__cause__, DataNotFoundError)
    with pytest.raises(OutputsError, match="outputs.pb"):
        await resolver.read_outputs(ctx)


async def test_missing_variable_names_it_and_lists_the_present_ones(
    ctx: TaskContext, store: DataStore
) -> None:
    await store.write_protobuf(ctx.outputs_file, sample_outputs())
    with pytest.raises(OutputsError) as info:
        await OutputsResolver(store).resolve_outputs(ctx, "a", "nope", "zz")
    message = str(info.value)
    assert "'nope'" in message and "'zz'" in message
    assert "'a'" not in message.split("(present")[0]  # only the missing ones are named as missing
    assert "(present: a, b, c)" in message
    assert ctx.outputs_file in message


async def test_missing_variable_in_empty_outputs(ctx: TaskContext, store: DataStore) -> None:
    await store.write_protobuf(ctx.outputs_file, literals_pb2.LiteralMap())
    resolver = OutputsResolver(store)
    assert await resolver.resolve_outputs(ctx) == {}
    with pytest.raises(OutputsError, match=r"'y'.*\(present: none\)"):
        await resolver.resolve_outputs(ctx, "y")


async def test_corrupt_outputs_file(ctx: TaskContext, store: DataStore) -> None:
    await store.write_bytes(ctx.outputs_file, b"\xff\xff\xff")
    with pytest.raises(CorruptDataError) as info:
        await OutputsResolver(store).resolve_outputs(ctx)
    assert info.value.reference == ctx.outputs_file
    assert ctx.outputs_file in str(info.value)
    assert "LiteralMap" in str(info.value)


# -- error documents ----------------------------------------------------------------------------


def document(
    *,
    code: str = "BadThing",
    message: str = "the input was odd",
    kind: int | None = None,
    origin: int | None = None,
) -> errors_pb2.ErrorDocument:
    doc = errors_pb2.ErrorDocument()
    doc.error.code = code
    doc.error.message = message
    if kind is not None:
        doc.error.kind = kind
    if origin is not None:
        doc.error.origin = origin
    return doc


@pytest.mark.parametrize(
    ("kind", "phase"),
    [
        (errors_pb2.ContainerError.RECOVERABLE, TaskPhase.RETRYABLE_FAILURE),
        (errors_pb2.ContainerError.NON_RECOVERABLE, TaskPhase.PERMANENT_FAILURE),
        (None, TaskPhase.PERMANENT_FAILURE),  # the default kind
    ],
)
def test_error_kind_decides_retryable_or_permanent(kind: int | None, phase: TaskPhase) -> None:
    status = status_from_error_document(document(kind=kind, origin=execution_pb2.ExecutionError.USER))
    assert status.phase is phase
    assert status.err is not None
    assert status.err.code == "BadThing"
    assert status.err.message == "the input was odd"
    assert status.err.origin is ErrorOrigin.USER


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        (execution_pb2.ExecutionError.USER, ErrorOrigin.USER),
        (execution_pb2.ExecutionError.SYSTEM, ErrorOrigin.SYSTEM),
        (execution_pb2.ExecutionError.UNKNOWN, ErrorOrigin.UNKNOWN),
        (None, ErrorOrigin.UNKNOWN),
    ],
)
def test_error_origin_mapping(origin: int | None, expected: ErrorOrigin) -> None:
    status = status_from_error_document(
        document(
            code="Oom", message="killed by OOM", kind=errors_pb2.ContainerError.RECOVERABLE, origin=origin
        )
    )
    assert status.phase is TaskPhase.RETRYABLE_FAILURE
    assert status.err is not None
    assert (status.err.code, status.err.message, status.err.origin) == ("Oom", "killed by OOM", expected)


def test_error_document_without_code() -> None:
    status = status_from_error_document(document(code="", message="boom"))
    assert status.phase is TaskPhase.PERMANENT_FAILURE
    assert status.err is not None and status.err.code == "UserError" and status.err.message == "boom"


async def test_read_error_document_absent_is_none(ctx: TaskContext, store: DataStore) -> None:
    assert await read_error_document(store, ctx.error_file) is None


async def test_read_error_document_round_trip(ctx: TaskContext, store: DataStore) -> None:
    doc = document(kind=errors_pb2.ContainerError.RECOVERABLE, origin=execution_pb2.ExecutionError.SYSTEM)
    await store.write_protobuf(ctx.error_file, doc)
    read = await read_error_document(store, ctx.error_file)
    assert read == doc
    assert read is not None and status_from_error_document(read).phase is TaskPhase.RETRYABLE_FAILURE


async def test_read_error_document_corrupt_raises(ctx: TaskContext, store: DataStore) -> None:
    await store.write_bytes(ctx.error_file, b"\xff\xff")
    with pytest.raises(CorruptDataError) as info:
        await read_error_document(store, ctx.error_file)
    assert info.value.reference == ctx.error_file
    assert "ErrorDocument" in str(info.value)
