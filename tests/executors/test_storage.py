from __future__ import annotations

import os
import uuid
from typing import Any

import fsspec
import pytest
from flyteidl.core import errors_pb2, literals_pb2
from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper
from fsspec.implementations.memory import MemoryFileSystem

from executors import CorruptDataError, DataNotFoundError, DataStore
from executors.storage import is_local, join, local_path, protocol_of


class AsyncMemoryFileSystem(AsyncFileSystemWrapper):  # type: ignore[misc]
    """fsspec's own async wrapper over its memory filesystem: exercises the native-async path."""

    protocol = "asyncmem"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(MemoryFileSystem(), *args, **kwargs)


fsspec.register_implementation("asyncmem", AsyncMemoryFileSystem, clobber=True)


def sample() -> literals_pb2.LiteralMap:
    lm = literals_pb2.LiteralMap()
    lm.literals["a"].scalar.primitive.integer = 7
    lm.literals["b"].scalar.primitive.string_value = "x"
    return lm


@pytest.fixture(params=["local", "file-url", "memory", "asyncmem"])
def base_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    kind = request.param
    if kind == "local":
        return str(tmp_path)
    if kind == "file-url":
        return f"file://{tmp_path}"
    return f"{kind}://store-{uuid.uuid4().hex}"


async def test_protobuf_round_trip_on_every_store(store: DataStore, base_url: str) -> None:
    ref = join(base_url, "deep", "er", "inputs.pb")
    await store.write_protobuf(ref, sample())
    assert await store.exists(ref)
    assert await store.read_protobuf(ref, literals_pb2.LiteralMap) == sample()


async def test_missing_reference_is_not_found_naming_it(store: DataStore, base_url: str) -> None:
    ref = join(base_url, "nope.pb")
    assert not await store.exists(ref)
    with pytest.raises(DataNotFoundError, match="nope.pb: not found"):
        await store.read_bytes(ref)


async def test_corrupt_protobuf_names_file_and_type(store: DataStore, tmp_path: Any) -> None:
    ref = os.path.join(tmp_path, "outputs.pb")
    good = sample().SerializeToString()
    await store.write_bytes(ref, good[:-3])  # truncated
    with pytest.raises(CorruptDataError, match=r"outputs.pb: not a valid flyteidl.core.LiteralMap"):
        await store.read_protobuf(ref, literals_pb2.LiteralMap)
    await store.write_bytes(ref, b"\xff\xff\xff")
    with pytest.raises(CorruptDataError, match="ErrorDocument"):
        await store.read_protobuf(ref, errors_pb2.ErrorDocument)


async def test_native_async_filesystems_are_driven_through_their_coroutines(store: DataStore) -> None:
    ref = f"asyncmem://s-{uuid.uuid4().hex}/f.pb"
    async_fs = await store._async_fs(ref)
    assert async_fs is not None and async_fs[0].asynchronous
    assert await store._async_fs("memory://x/f.pb") is None  # sync-only: goes to a thread
    assert await store._async_fs("/tmp/f.pb") is None
    await store.write_bytes(ref, b"abc")
    assert await store.read_bytes(ref) == b"abc"


async def test_local_write_is_atomic_and_leaves_no_temp_files(store: DataStore, tmp_path: Any) -> None:
    ref = os.path.join(tmp_path, "x", "f.bin")
    for i in range(5):
        await store.write_bytes(ref, bytes([i]) * 1000)
    assert os.listdir(os.path.dirname(ref)) == ["f.bin"]
    assert await store.read_bytes(ref) == bytes([4]) * 1000


async def test_unwritable_location_is_a_clear_error(store: DataStore, tmp_path: Any) -> None:
    blocker = os.path.join(tmp_path, "file")
    with open(blocker, "w") as fh:
        fh.write("x")
    with pytest.raises(OSError, match=r"file/sub/f.pb: write failed"):
        await store.write_bytes(os.path.join(blocker, "sub", "f.pb"), b"1")


@pytest.mark.parametrize(
    ("ref", "protocol", "local"),
    [
        ("/a/b", "file", True),
        ("file:///a/b", "file", True),
        ("s3://b/k", "s3", False),
        ("memory://x", "memory", False),
    ],
)
def test_reference_helpers(ref: str, protocol: str, local: bool) -> None:
    assert protocol_of(ref) == protocol
    assert is_local(ref) is local
    if local:
        assert local_path(ref) == "/a/b"
    else:
        with pytest.raises(ValueError, match="not a local path"):
            local_path(ref)


def test_join_uses_slashes() -> None:
    assert join("s3://b/", "/x/", "y.pb") == "s3://b/x/y.pb"
