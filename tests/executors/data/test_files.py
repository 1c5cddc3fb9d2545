"""``File`` and ``Directory``: lazy references, flytekit's blob types, and the upload layout.

Remote locations are fsspec's in-memory filesystem (``memory://``, a real fsspec implementation);
an S3 store is exercised by the across-machines suites.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
from flyteidl.core import types_pb2

from executors import Directory, File
from executors.core.errors import LiteralConversionError
from executors.data.files import is_remote, upload
from executors.data.literals import literal_type_from_python, to_literal, to_python
from executors.runtime.offload import offload_outputs


@pytest.fixture
def memory() -> Iterator[fsspec.AbstractFileSystem]:
    fs = fsspec.filesystem("memory")
    yield fs
    if fs.exists("/files-test"):
        fs.rm("/files-test", recursive=True)


def test_types_are_declared_as_flytekit_declares_flytefile_and_flytedirectory() -> None:
    # flytekit: FlyteFile -> blob {}, FlyteDirectory -> blob {dimensionality: MULTIPART},
    # FlyteFile["csv"] -> blob {format: "csv"}.
    assert literal_type_from_python(File) == types_pb2.LiteralType(blob=types_pb2.BlobType())
    assert literal_type_from_python(Directory).blob.dimensionality == types_pb2.BlobType.MULTIPART
    assert literal_type_from_python(typing.Annotated[File, "csv"]).blob.format == "csv"


def test_a_reference_becomes_its_uri_in_a_literal_never_a_download(memory: fsspec.AbstractFileSystem) -> None:
    memory.pipe("/files-test/a.txt", b"abc")
    f = File("memory:///files-test/a.txt")
    literal_type = literal_type_from_python(File)
    assert (
        to_python(to_literal(f, literal_type, path="input 'f'"), literal_type) == "memory:///files-test/a.txt"
    )
    assert f._downloaded is None


def test_a_remote_file_is_read_lazily(memory: fsspec.AbstractFileSystem) -> None:
    memory.pipe("/files-test/a.txt", b"hello\n")
    f = File("memory:///files-test/a.txt")
    assert f.remote and f._downloaded is None
    assert f.read_text() == "hello\n" and f._downloaded is None  # streamed, not downloaded
    with open(f) as local:  # os.fspath: downloaded once
        assert local.read() == "hello\n"
    first = f.path
    assert f.path == first and Path(first).name == "a.txt" and not is_remote(first)


def test_a_remote_directory_is_listed_without_a_download(memory: fsspec.AbstractFileSystem) -> None:
    memory.pipe("/files-test/d/x.txt", b"x")
    memory.pipe("/files-test/d/sub/y.txt", b"y")
    d = Directory("memory:///files-test/d")
    assert [f.uri for f in d.files()] == ["memory:///files-test/d/sub/y.txt", "memory:///files-test/d/x.txt"]
    assert d._downloaded is None
    local = Path(os.fspath(d))
    assert sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()) == [
        "sub/y.txt",
        "x.txt",
    ]


def test_upload_lays_out_as_flytekit(tmp_path: Path, memory: fsspec.AbstractFileSystem) -> None:
    (tmp_path / "report.csv").write_text("a,b\n")
    (tmp_path / "out" / "sub").mkdir(parents=True)
    (tmp_path / "out" / "one.txt").write_text("1")
    (tmp_path / "out" / "sub" / "two.txt").write_text("2")
    uri = upload(File(tmp_path / "report.csv"), "memory:///files-test/raw")
    assert uri.startswith("memory:///files-test/raw/") and uri.endswith("/report.csv")
    assert memory.cat(uri) == b"a,b\n"
    folder = upload(Directory(str(tmp_path / "out")), "memory:///files-test/raw")
    assert sorted(memory.find(folder)) == [
        f"{folder[len('memory://') :]}/one.txt",
        f"{folder[len('memory://') :]}/sub/two.txt",
    ]
    # A remote one is passed on, not copied.
    assert (
        upload(File("memory:///files-test/raw/elsewhere.txt"), "memory:///other")
        == "memory:///files-test/raw/elsewhere.txt"
    )


def test_returned_paths_are_uploaded_and_a_missing_one_is_named(tmp_path: Path) -> None:
    from flyteidl.core import interface_pb2

    outputs = interface_pb2.VariableMap()
    outputs.variables["f"].type.CopyFrom(literal_type_from_python(File))
    outputs.variables["fs"].type.CopyFrom(literal_type_from_python(list[File]))
    (tmp_path / "a.txt").write_text("a")
    raw = str(tmp_path / "raw")
    done = offload_outputs({"f": str(tmp_path / "a.txt"), "fs": [File(tmp_path / "a.txt")]}, outputs, raw)
    assert done["f"].startswith(raw) and Path(done["f"]).read_text() == "a"
    assert done["fs"][0].startswith(raw) and done["fs"][0] != done["f"]
    with pytest.raises(
        LiteralConversionError,
        match=r"^output 'f': expected a file the task wrote, got no file at .*nope\.txt$",
    ):
        offload_outputs({"f": File(tmp_path / "nope.txt")}, outputs, raw)
