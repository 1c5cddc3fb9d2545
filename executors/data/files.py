"""Files and directories that travel between tasks: ``File`` and ``Directory``.

Their wire form is flytekit's ``FlyteFile`` / ``FlyteDirectory``: a blob literal (single part for a
file, multipart for a directory) holding a URI, so a flytekit task on either end reads and writes
the same literals. In a ``@task.executor`` function:

* **returned**, a ``File("report.csv")`` (or a plain path) names a file the task wrote locally; the
  runner uploads it to the data store, under the execution's raw output prefix, and the literal
  holds the uploaded URI (``<prefix>/<random>/report.csv``, flytekit's layout). A directory is
  uploaded file by file. A value that is already a remote URI (``s3://...``) is passed on as is.
* **received**, it is a reference: nothing is downloaded until it is used. :meth:`File.open`
  streams from the store through fsspec; ``open(f)`` / :func:`os.fspath` / :attr:`File.path`
  download it once to a local temporary copy, as ``FlyteFile`` does. :meth:`Directory.files` lists
  a directory without downloading it; :func:`os.fspath` downloads the whole of it.

On the Airflow side a downstream plain ``@task`` receives the URI (a ``str``): ``File(uri).open()``
reads it there the same way.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from typing import IO, Any

__all__ = ["Directory", "File", "is_remote", "upload"]


def is_remote(location: str) -> bool:
    """True for a URI with a scheme other than ``file`` (``s3://``, ``memory://``, ...)."""
    scheme, sep, _ = location.partition("://")
    return bool(sep) and scheme not in ("", "file") and "/" not in scheme


def _local(location: str) -> str:
    return location[len("file://") :] if location.startswith("file://") else location


class _Reference(os.PathLike[str]):
    """A location (a local path or a URI) downloaded at most once, on first local use."""

    format: str
    """The blob format (``"csv"``, ...) or ``""``, as the literal type declares it."""

    def __init__(self, location: str | os.PathLike[str], *, format: str = "") -> None:
        if isinstance(location, _Reference):
            format = format or location.format
            location = location.uri
        self._uri = os.fspath(location) if isinstance(location, os.PathLike) else str(location)
        if not self._uri:
            raise ValueError(f"{type(self).__name__} needs a path or a URI, got an empty one")
        self.format = format
        self._downloaded: str | None = None

    @property
    def uri(self) -> str:
        """Where it is: the URI a blob literal holds, or the local path it was made with."""
        return self._uri

    @property
    def remote(self) -> bool:
        return is_remote(self._uri)

    @property
    def path(self) -> str:
        """A local path to it: the path itself when it is local, else a copy downloaded once."""
        if not self.remote:
            return _local(self._uri)
        if self._downloaded is None:
            self._downloaded = self._download()
        return self._downloaded

    def __fspath__(self) -> str:
        return self.path

    def _filesystem(self) -> tuple[Any, str]:
        from executors.data.storage import DataStore

        fs, path = DataStore().filesystem(self._uri)
        return fs, str(path)

    def _download(self) -> str:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reference) and type(other) is type(self) and other.uri == self.uri

    def __hash__(self) -> int:
        return hash((type(self), self._uri))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._uri!r})"


class File(_Reference):
    """A file: a local path a task wrote, or a URI in the data store (read lazily)."""

    def open(self, mode: str = "rb", **kwargs: Any) -> IO[Any]:
        """Open it through fsspec (a remote file is streamed, not downloaded first)."""
        if not self.remote:
            return open(_local(self._uri), mode, **kwargs)  # the caller closes it
        fs, path = self._filesystem()
        return fs.open(path, mode, **kwargs)  # type: ignore[no-any-return]

    def read_bytes(self) -> bytes:
        with self.open("rb") as source:
            return bytes(source.read())

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def _download(self) -> str:
        fs, path = self._filesystem()
        folder = tempfile.mkdtemp(prefix="executors-file-")
        target = os.path.join(folder, path.rstrip("/").rsplit("/", 1)[-1] or "file")
        fs.get_file(path, target)
        return target


class Directory(_Reference):
    """A directory: a local folder a task wrote, or a URI prefix in the data store (read lazily)."""

    def files(self) -> list[File]:
        """Every file under it, in name order, as :class:`File` references (nothing downloaded)."""
        if not self.remote:
            root = Path(_local(self._uri))
            return [File(str(p)) for p in sorted(root.rglob("*")) if p.is_file()]
        fs, path = self._filesystem()
        return [File(fs.unstrip_protocol(found)) for found in sorted(fs.find(path))]

    def _download(self) -> str:
        fs, path = self._filesystem()
        folder = tempfile.mkdtemp(prefix="executors-directory-")
        root = path.rstrip("/")
        for found in sorted(fs.find(root)):
            target = Path(folder, found[len(root) :].lstrip("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(found, str(target))
        return folder


def upload(value: File | Directory, prefix: str) -> str:
    """Upload a local file or folder under ``prefix`` (a new random folder, flytekit's layout) and
    return its URI; a remote one is not copied. Raises ``FileNotFoundError`` naming the path."""
    from executors.data.storage import DataStore

    if value.remote:
        return value.uri
    source = Path(_local(value.uri))
    if isinstance(value, Directory) != source.is_dir() or not source.exists():
        what = "folder" if isinstance(value, Directory) else "file"
        raise FileNotFoundError(f"no {what} at {source}")
    target = f"{prefix.rstrip('/')}/{uuid.uuid4().hex}"
    fs, root = DataStore().filesystem(target)
    if isinstance(value, File):
        fs.makedirs(root, exist_ok=True)
        fs.put_file(str(source), f"{root}/{source.name}")
        return f"{target}/{source.name}"
    # File by file: fsspec's recursive put copies a folder into or onto the target depending on
    # whether it exists and on trailing slashes; this layout is the same everywhere.
    fs.makedirs(root, exist_ok=True)
    for path in sorted(source.rglob("*")):
        if path.is_file():
            relative = path.relative_to(source).as_posix()
            if "/" in relative:
                fs.makedirs(f"{root}/{relative.rsplit('/', 1)[0]}", exist_ok=True)
            fs.put_file(str(path), f"{root}/{relative}")
    return target
