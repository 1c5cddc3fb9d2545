from __future__ import annotations

import asyncio
import os
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest
from flyteidl.core import errors_pb2, literals_pb2
from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper
from fsspec.implementations.memory import MemoryFileSystem

from executors import DataStore
from executors.core.errors import CorruptDataError, DataNotFoundError, DataStoreError
from executors.data.storage import (
    DataTooLargeError,
    RefusedDataError,
    is_local,
    join,
    local_path,
    protocol_of,
)
from executors.data.task_files import (
    MAX_ERROR_BYTES,
    MAX_OUTPUTS_BYTES,
    format_size,
    read_task_file,
    tail_task_file,
)
from tests.reliability_units.hostile_files import MiB, address_space_limit, fifos_released, rss_sampled


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


@pytest.fixture(params=["local", "file-url", "memory", "asyncmem", "s3"])
def base_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    kind = request.param
    if kind == "s3":  # a real S3 server (moto's, on loopback) through s3fs
        return str(request.getfixturevalue("s3_bucket"))
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


async def test_write_many_writes_each_and_reports_each_failure_alone(
    store: DataStore, base_url: str, tmp_path: Any
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    items = [(f"{base_url}/many/{i}.json", f"{i}".encode()) for i in range(5)]
    items.insert(2, (str(blocker / "under-a-file.json"), b"x"))  # local, and cannot be written
    results = await store.write_many(items)
    assert [r is None for r in results] == [True, True, False, True, True, True]
    failed = results[2]
    assert isinstance(failed, DataStoreError) and "under-a-file.json" in str(failed)
    for reference, data in items[:2] + items[3:]:
        assert await store.read_bytes(reference) == data


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


# -- the guarded reader for files a task wrote (within= / max_bytes=) -------------------------------

GUARD_TIMEOUT = 5.0
"""A guarded read never waits for anything: well under this, or the test fails (instead of hanging)."""


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """An execution folder, and a sibling folder outside it (``../elsewhere``) with a valid file.
    (Its FIFOs are released at teardown: a safety net only, as the loop may be closed first.)"""
    (tmp_path / "exec").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "outputs.pb").write_bytes(sample().SerializeToString())
    with fifos_released(tmp_path):
        yield tmp_path / "exec"


async def guarded(store: DataStore, path: Path, folder: Path, max_bytes: int = MAX_OUTPUTS_BYTES) -> bytes:
    return await asyncio.wait_for(
        store.read_bytes(str(path), within=str(folder), max_bytes=max_bytes), GUARD_TIMEOUT
    )


def assert_refused(exc: BaseException, path: Path, problem: str) -> None:
    assert isinstance(exc, RefusedDataError) and isinstance(exc, CorruptDataError), type(exc)
    assert exc.reference == str(path)
    assert str(exc) == f"{path}: {problem}", str(exc)


async def test_guarded_read_of_a_regular_file_returns_it(store: DataStore, folder: Path) -> None:
    (folder / "outputs.pb").write_bytes(b"abc")
    assert await guarded(store, folder / "outputs.pb", folder) == b"abc"
    empty = folder / "empty.pb"
    empty.write_bytes(b"")
    assert await guarded(store, empty, folder) == b""


async def test_guarded_read_refuses_a_fifo_without_ever_blocking(store: DataStore, folder: Path) -> None:
    fifo = folder / "error.pb"
    os.mkfifo(fifo)
    for _ in range(3 * (min(32, (os.cpu_count() or 1) + 4))):  # more reads than the pool has threads
        with pytest.raises(RefusedDataError) as info:
            await guarded(store, fifo, folder)
        assert_refused(info.value, fifo, "is a FIFO, not a regular file")


async def test_guarded_read_refuses_a_symlink_to_dev_zero_in_bounded_memory(
    store: DataStore, folder: Path
) -> None:
    link = folder / "outputs.pb"
    link.symlink_to("/dev/zero")
    with address_space_limit(), rss_sampled() as rss, pytest.raises(RefusedDataError) as info:
        await guarded(store, link, folder)
    print(f"/dev/zero symlink: {rss}")
    assert_refused(info.value, link, f"symlink out of the execution folder {folder} (to /dev/zero)")
    assert rss.growth < 32 * MiB, str(rss)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null", "/dev/urandom"])
async def test_guarded_read_refuses_a_device_before_opening_it(store: DataStore, device: str) -> None:
    # A folder that holds devices: the containment check passes, the file-type check refuses.
    with pytest.raises(RefusedDataError) as info:
        await asyncio.wait_for(store.read_bytes(device, within="/dev", max_bytes=10), GUARD_TIMEOUT)
    assert str(info.value) == f"{device}: is a character device, not a regular file"


async def test_guarded_read_refuses_a_symlink_out_of_the_folder(store: DataStore, folder: Path) -> None:
    link = folder / "outputs.pb"
    outside = folder.parent / "elsewhere" / "outputs.pb"
    link.symlink_to(outside)
    with pytest.raises(RefusedDataError) as info:
        await guarded(store, link, folder)
    assert_refused(info.value, link, f"symlink out of the execution folder {folder} (to {outside})")
    # Relative, through a sub-folder, and a folder of the path that is the link: all the same.
    link.unlink()
    link.symlink_to("../elsewhere/outputs.pb")
    with pytest.raises(RefusedDataError, match="symlink out of the execution folder"):
        await guarded(store, link, folder)
    (folder / "logs").symlink_to(folder.parent / "elsewhere")
    with pytest.raises(RefusedDataError, match="symlink out of the execution folder"):
        await guarded(store, folder / "logs" / "outputs.pb", folder)


async def test_guarded_read_follows_a_symlink_inside_the_folder(store: DataStore, folder: Path) -> None:
    (folder / "raw").mkdir()
    (folder / "raw" / "outputs.pb").write_bytes(b"mine")
    (folder / "outputs.pb").symlink_to("raw/outputs.pb")
    (folder / "alias").symlink_to("raw", target_is_directory=True)
    assert await guarded(store, folder / "outputs.pb", folder) == b"mine"
    assert await guarded(store, folder / "alias" / "outputs.pb", folder) == b"mine"


async def test_guarded_read_refuses_a_path_outside_the_folder(store: DataStore, folder: Path) -> None:
    path = folder / ".." / "elsewhere" / "outputs.pb"
    with pytest.raises(RefusedDataError) as info:
        await guarded(store, path, folder)
    assert_refused(info.value, path, f"is outside the execution folder {folder}")


@pytest.mark.parametrize("kind", ["directory", "socket", "symlink loop"])
async def test_guarded_read_refuses_other_non_regular_files(
    store: DataStore, folder: Path, kind: str
) -> None:
    path = folder / "error.pb"
    if kind == "directory":
        path.mkdir()
        problem = "is a directory, not a regular file"
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sock.close()
        problem = "is a socket, not a regular file"
    else:
        path.symlink_to("error.pb")
        problem = "is a symlink that does not resolve (a loop?) or that changed"
    with pytest.raises(RefusedDataError) as info:
        await guarded(store, path, folder)
    assert_refused(info.value, path, problem)


async def test_guarded_read_missing_is_not_found(store: DataStore, folder: Path) -> None:
    with pytest.raises(DataNotFoundError, match="nope.pb: not found"):
        await guarded(store, folder / "nope.pb", folder)
    (folder / "logs").write_text("a file where a folder should be")
    with pytest.raises(DataNotFoundError):
        await guarded(store, folder / "logs" / "stderr.log", folder)
    with pytest.raises(DataNotFoundError):  # the execution folder itself is missing
        await guarded(store, folder / "gone" / "x.pb", folder / "gone")
    (folder / "dangling").symlink_to("nowhere.pb")
    with pytest.raises(DataNotFoundError):
        await guarded(store, folder / "dangling", folder)


async def test_guarded_read_of_a_huge_file_is_refused_from_its_size(store: DataStore, folder: Path) -> None:
    big = folder / "outputs.pb"
    with open(big, "wb") as fh:
        fh.truncate(4_509_715_660)  # sparse: 4.2 GiB that take no disk
    with rss_sampled() as rss, pytest.raises(DataTooLargeError) as info:
        await guarded(store, big, folder)
    assert_refused(info.value, big, "4.2 GiB (4509715660 bytes) exceeds the 64 MiB cap")
    assert (info.value.size, info.value.max_bytes) == (4_509_715_660, MAX_OUTPUTS_BYTES)
    assert rss.growth < 32 * MiB, str(rss)


async def test_guarded_read_cap_is_inclusive(store: DataStore, folder: Path) -> None:
    path = folder / "error.pb"
    path.write_bytes(b"x" * 100)
    assert await guarded(store, path, folder, max_bytes=100) == b"x" * 100
    with pytest.raises(
        DataTooLargeError, match=r"error.pb: 100 bytes \(100 bytes\) exceeds the 99 bytes cap"
    ):
        await guarded(store, path, folder, max_bytes=99)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux procfs")
def test_a_file_larger_than_its_size_says_is_still_read_bounded() -> None:
    # procfs files are regular and claim 0 bytes: the reader reads on, but never past the cap.
    assert b"Name:" in read_task_file("/proc/self/status", within="/proc/self", max_bytes=1 * MiB)
    with pytest.raises(DataTooLargeError, match=r"grew past the 100 bytes cap"):
        read_task_file("/proc/self/status", within="/proc/self", max_bytes=100)


async def test_guarded_protobuf_read(store: DataStore, folder: Path) -> None:
    ref = str(folder / "outputs.pb")
    await store.write_protobuf(ref, sample())
    assert (
        await store.read_protobuf(ref, literals_pb2.LiteralMap, within=str(folder), max_bytes=100) == sample()
    )
    with pytest.raises(DataTooLargeError):
        await store.read_protobuf(ref, literals_pb2.LiteralMap, within=str(folder), max_bytes=3)
    os.unlink(ref)
    os.mkfifo(ref)
    with fifos_released(folder), pytest.raises(RefusedDataError, match="is a FIFO"):
        await asyncio.wait_for(
            store.read_protobuf(ref, errors_pb2.ErrorDocument, within=f"file://{folder}", max_bytes=10),
            GUARD_TIMEOUT,
        )


async def test_max_bytes_is_honored_on_every_store(store: DataStore, base_url: str) -> None:
    ref = join(base_url, "sub", "outputs.pb")
    await store.write_bytes(ref, b"y" * 1000)
    assert await store.read_bytes(ref, max_bytes=1000) == b"y" * 1000
    with pytest.raises(DataTooLargeError) as info:
        await store.read_bytes(ref, max_bytes=999)
    assert str(info.value) == f"{ref}: 1000 bytes (1000 bytes) exceeds the 999 bytes cap"
    assert isinstance(info.value, CorruptDataError)  # bad data, not a store outage
    with pytest.raises(DataNotFoundError):
        await store.read_bytes(join(base_url, "nope.pb"), max_bytes=10)


async def test_an_unreadable_execution_folder_is_a_store_error_not_bad_data(
    store: DataStore, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(DataStoreError) as info:
        await store.read_bytes(str(blocker / "data" / "error.pb"), within=str(blocker / "data"), max_bytes=10)
    assert not isinstance(info.value, CorruptDataError)
    assert "read failed" in str(info.value)


def test_tail_reads_only_the_end(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "stderr.log"
    log.parent.mkdir()
    log.write_bytes(b"0123456789")
    assert tail_task_file(str(log), 4, within=str(tmp_path)) == (b"6789", 10)
    assert tail_task_file(str(log), 100, within=str(tmp_path)) == (b"0123456789", 10)
    log.unlink()
    os.mkfifo(log)
    with fifos_released(tmp_path), pytest.raises(RefusedDataError, match="stderr.log: is a FIFO"):
        tail_task_file(str(log), 4, within=str(tmp_path))


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 bytes"), (1023, "1023 bytes"), (1024, "1 KiB"), (MAX_ERROR_BYTES, "1 MiB"),
     (MAX_OUTPUTS_BYTES, "64 MiB"), (4_509_715_660, "4.2 GiB"), (sys.maxsize, "8388608 TiB")],
)  # fmt: skip
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text


async def test_max_bytes_alone_checks_the_file_type_of_a_symlink_target(
    store: DataStore, folder: Path
) -> None:
    # Without within= there is no folder to stay in: a symlink is followed, its target checked.
    (folder / "real.pb").write_bytes(b"abc")
    (folder / "link.pb").symlink_to("real.pb")
    assert await store.read_bytes(str(folder / "link.pb"), max_bytes=3) == b"abc"
    (folder / "zero.pb").symlink_to("/dev/zero")
    with pytest.raises(RefusedDataError) as info:
        await asyncio.wait_for(store.read_bytes(str(folder / "zero.pb"), max_bytes=3), GUARD_TIMEOUT)
    assert str(info.value) == f"{folder / 'zero.pb'}: is a character device, not a regular file"


def test_a_store_outlives_each_event_loop(
    store: DataStore, base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker runs each step in its own ``asyncio.run``: the same store on the next loop still
    works (it failed with "Event loop is closed" on S3), and no loop leaves a client open."""
    ref = join(base_url, "loops", "inputs.pb")
    asyncio.run(store.write_protobuf(ref, sample()))
    assert asyncio.run(store.read_protobuf(ref, literals_pb2.LiteralMap)) == sample()
    assert asyncio.run(DataStore().exists(ref))
    assert not [r for r in caplog.records if "Unclosed" in r.getMessage()], caplog.text


async def test_a_file_written_after_its_folder_was_listed_is_seen(store: DataStore, base_url: str) -> None:
    """No stale listing: a poll must see the outputs.pb a task writes after anything listed."""
    folder = join(base_url, "listed")
    await store.write_bytes(join(folder, "a.pb"), b"a")
    assert await store.find(folder) == [join(folder, "a.pb")]
    await store.write_bytes(join(folder, "outputs.pb"), b"o")
    assert await store.exists(join(folder, "outputs.pb"))
    assert await store.find(folder, ".pb") == [join(folder, "a.pb"), join(folder, "outputs.pb")]


async def test_remove_says_whether_there_was_a_file(store: DataStore, base_url: str) -> None:
    ref = join(base_url, "gone", "x.pb")
    await store.write_bytes(ref, b"x")
    assert await store.remove(ref) is True
    assert await store.remove(ref) is False  # S3 itself answers success for a missing key
    assert not await store.exists(ref)
    await store.write_bytes(join(base_url, "tree", "a", "b.pb"), b"b")
    await store.remove_tree(join(base_url, "tree"))
    assert await store.find(join(base_url, "tree")) == []
    await store.remove_tree(join(base_url, "never-made"))  # nothing to do


async def test_exclusive_create_admits_one_of_many(store: DataStore, base_url: str) -> None:
    ref = join(base_url, "claims", "one.reservation")
    results = await asyncio.gather(*(store.create_exclusive(ref, b"%d" % i) for i in range(8)))
    if protocol_of(base_url) in ("file", "s3"):
        assert sorted(results, key=str) == [False] * 7 + [True], results
        winner = results.index(True)
        assert await store.read_bytes(ref) == b"%d" % winner
    else:  # no conditional create offered: says so, writes nothing
        assert results == [None] * 8
        assert not await store.exists(ref)
