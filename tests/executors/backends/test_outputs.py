"""OutputsResolver and error documents, on a real local folder and on ``memory://``."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from flyteidl.core import errors_pb2, execution_pb2, literals_pb2

from executors import DataStore, ErrorOrigin, TaskContext, TaskExecutionID, TaskPhase
from executors.backends.container import status_from_error_file
from executors.backends.outputs import (
    REFUSED_ERROR_FILE,
    OutputsResolver,
    read_error_document,
    status_from_error_document,
    task_file_root,
)
from executors.core.errors import CorruptDataError, DataNotFoundError, OutputsError
from executors.data.literals import from_literal_map
from executors.data.storage import DataTooLargeError, RefusedDataError
from tests.conftest import make_identifier
from tests.reliability_units.hostile_files import MiB, address_space_limit, fifos_released, rss_sampled


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


# -- hostile files: what the task made of outputs.pb / error.pb ------------------------------------

TIMEOUT = 5.0
"""Every read below returns at once; a read that blocks fails the test after this long."""


@pytest.fixture
def local_ctx(tmp_path: Path) -> Iterator[TaskContext]:
    """A context on a local execution folder, with a folder outside it holding valid documents."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "outputs.pb").write_bytes(sample_outputs().SerializeToString())
    (elsewhere / "error.pb").write_bytes(
        document(kind=errors_pb2.ContainerError.RECOVERABLE).SerializeToString()
    )
    ctx = TaskContext(
        task_execution_id=TaskExecutionID.create(make_identifier()), data_dir=str(tmp_path / "exec")
    )
    Path(ctx.output_prefix).mkdir(parents=True)  # what an executor makes before the task starts
    yield ctx


def released(ctx: TaskContext) -> AbstractContextManager[None]:
    """Inside the test (a fixture's teardown would come after the loop's, which waits for its
    threads): if a read got stuck on a FIFO (an unguarded reader), release it."""
    return fifos_released(Path(ctx.data_dir).parent)


def make_hostile(path: Path, how: str, ctx: TaskContext) -> str:
    """Turn ``path`` into something hostile; returns what the refusal must say about it."""
    if how == "fifo":
        os.mkfifo(path)
        return "is a FIFO, not a regular file"
    if how == "dev-zero":
        path.symlink_to("/dev/zero")
        return "symlink out of the execution folder"
    if how == "symlink-out":
        path.symlink_to(Path(ctx.data_dir).parent / "elsewhere" / path.name)  # a VALID document, outside
        return "symlink out of the execution folder"
    if how == "directory":
        path.mkdir()
        return "is a directory, not a regular file"
    raise AssertionError(how)


HOSTILE = ["fifo", "dev-zero", "symlink-out", "directory"]


@pytest.mark.parametrize("how", HOSTILE)
async def test_hostile_outputs_file_is_refused_as_bad_data(
    local_ctx: TaskContext, store: DataStore, how: str
) -> None:
    problem = make_hostile(Path(local_ctx.outputs_file), how, local_ctx)
    with (
        released(local_ctx),
        address_space_limit(),
        rss_sampled() as rss,
        pytest.raises(RefusedDataError) as info,
    ):
        await asyncio.wait_for(OutputsResolver(store).resolve_outputs(local_ctx, "a"), TIMEOUT)
    # A CorruptDataError: the operator fails the task without retry (a retry reads the same file).
    assert isinstance(info.value, CorruptDataError)
    assert str(info.value).startswith(f"{local_ctx.outputs_file}: {problem}"), str(info.value)
    assert rss.growth < 32 * MiB, str(rss)
    print(f"outputs.pb {how}: {rss}")


async def test_outputs_symlink_inside_the_folder_is_followed(
    local_ctx: TaskContext, store: DataStore
) -> None:
    raw = Path(local_ctx.data_dir) / "raw"
    raw.mkdir()
    (raw / "outputs.pb").write_bytes(sample_outputs().SerializeToString())
    Path(local_ctx.outputs_file).symlink_to("../raw/outputs.pb")  # out of the output prefix, in the folder
    assert await OutputsResolver(store).read_outputs(local_ctx) == sample_outputs()


async def test_outputs_file_over_the_cap_names_its_size_and_the_cap(
    ctx: TaskContext, store: DataStore
) -> None:
    await store.write_protobuf(ctx.outputs_file, sample_outputs())
    size = len(sample_outputs().SerializeToString())
    assert await OutputsResolver(store, max_outputs_bytes=size).read_outputs(ctx) == sample_outputs()
    with pytest.raises(DataTooLargeError) as info:
        await OutputsResolver(store, max_outputs_bytes=size - 1).resolve_outputs(ctx)
    assert (
        str(info.value) == f"{ctx.outputs_file}: {size} bytes ({size} bytes) exceeds the {size - 1} bytes cap"
    )
    assert isinstance(info.value, CorruptDataError)


async def test_outputs_file_over_the_default_cap(local_ctx: TaskContext, store: DataStore) -> None:
    with open(local_ctx.outputs_file, "wb") as fh:
        fh.truncate(65 * MiB)  # sparse
    with rss_sampled() as rss, pytest.raises(DataTooLargeError) as info:
        await OutputsResolver(store).read_outputs(local_ctx)
    assert str(info.value) == f"{local_ctx.outputs_file}: 65 MiB (68157440 bytes) exceeds the 64 MiB cap"
    assert rss.growth < 32 * MiB, str(rss)


def test_task_file_root(tmp_path: Path) -> None:
    ctx = TaskContext(
        task_execution_id=TaskExecutionID.create(make_identifier()), data_dir=str(tmp_path / "d")
    )
    assert task_file_root(ctx, ctx.outputs_file) == str(tmp_path / "d")
    assert task_file_root(ctx, f"file://{tmp_path}/d/sub/x.pb") == str(tmp_path / "d")
    assert task_file_root(ctx, str(tmp_path / "other" / "outputs.pb")) == str(tmp_path / "other")
    assert task_file_root(ctx, "s3://bucket/outputs.pb") is None


@pytest.mark.parametrize("how", HOSTILE)
async def test_hostile_error_file_is_a_permanent_failure_naming_it(
    local_ctx: TaskContext, store: DataStore, how: str
) -> None:
    problem = make_hostile(Path(local_ctx.error_file), how, local_ctx)
    with released(local_ctx), address_space_limit(), rss_sampled() as rss:
        doc = await asyncio.wait_for(read_error_document(store, local_ctx.error_file), TIMEOUT)
        status = await asyncio.wait_for(status_from_error_file(store, local_ctx), TIMEOUT)
    assert doc is not None and doc.error.kind == errors_pb2.ContainerError.NON_RECOVERABLE
    assert doc.error.code == REFUSED_ERROR_FILE
    # What container.status_from_error_file (every executor's error.pb check) makes of it:
    assert status is not None and status.phase is TaskPhase.PERMANENT_FAILURE, status
    assert status.err is not None and status.err.code == REFUSED_ERROR_FILE
    assert f"{local_ctx.error_file}: {problem}" in status.err.message, status.err.message
    assert status.err.origin is ErrorOrigin.USER
    assert rss.growth < 32 * MiB, str(rss)
    print(f"error.pb {how}: {rss}")


async def test_error_file_over_the_cap_is_a_permanent_failure(
    local_ctx: TaskContext, store: DataStore
) -> None:
    with open(local_ctx.error_file, "wb") as fh:
        fh.truncate(2 * MiB)  # sparse
    status = await asyncio.wait_for(status_from_error_file(store, local_ctx), TIMEOUT)
    assert status is not None and status.phase is TaskPhase.PERMANENT_FAILURE, status
    assert status.err is not None
    assert f"{local_ctx.error_file}: 2 MiB (2097152 bytes) exceeds the 1 MiB cap" in status.err.message
    small = document(kind=errors_pb2.ContainerError.RECOVERABLE)
    await store.write_protobuf(local_ctx.error_file, small)
    assert await read_error_document(store, local_ctx.error_file, max_bytes=small.ByteSize()) == small
    refused = await read_error_document(store, local_ctx.error_file, max_bytes=small.ByteSize() - 1)
    assert refused is not None and refused.error.code == REFUSED_ERROR_FILE


async def test_error_file_cap_on_an_object_store(ctx: TaskContext, store: DataStore) -> None:
    await store.write_bytes(ctx.error_file, b"\x0a" + b"x" * 2000)
    doc = await read_error_document(store, ctx.error_file, max_bytes=1000)
    assert doc is not None and doc.error.code == REFUSED_ERROR_FILE
    assert "exceeds the 1000 bytes cap" in doc.error.message and ctx.error_file in doc.error.message
