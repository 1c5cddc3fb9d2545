"""The function-task runner, packed to travel with a job to machines that do not have this package installed.

A function task's command is ``python -m executors.runtime.runner ...``: it needs the ``executors``
package and a few libraries (:data:`RUNNER_DISTRIBUTIONS`) on the machine that runs it. An executor
whose workers are other machines (a Ray cluster) ships the package itself with every such job, as a
zip (:func:`package_archive`), and can ask the worker to install the libraries
(:func:`runner_requirements`).

The archive is built from the files this process imports ``executors`` from, so the code that
runs remotely is exactly the code that wrote the task. It is deterministic (sorted names, fixed
timestamps and modes): the same sources give the same bytes and the same :attr:`PackageArchive.digest`,
which executors use as a content address, so a cluster stores one copy per version.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import io
import itertools
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

DISTRIBUTION = "airflow-provider-executors"
PACKAGE = "executors"
RUNNER_MODULE = "executors.runtime.runner"

RUNNER_DISTRIBUTIONS = ("flyteidl", "protobuf", "fsspec", "msgpack", "jsonschema", "referencing")
"""What the runner's modules import besides the standard library and ``executors`` (a test checks
the list against their import statements). ``referencing`` comes with ``jsonschema>=4.18``."""

STORE_DISTRIBUTIONS = {
    "s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs",
    "abfs": "adlfs", "abfss": "adlfs", "az": "adlfs",
}  # fmt: skip
"""The fsspec filesystem a runner needs for a data dir on an object store, by URL protocol."""

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_SKIPPED_DIRS = {"__pycache__"}
_SKIPPED_SUFFIXES = {".pyc", ".pyo"}


@dataclass(frozen=True)
class PackageArchive:
    """A zip of the ``executors`` package: ``executors/...`` at its top level."""

    data: bytes
    digest: str
    """SHA-256 (hex) of the archived names and contents."""
    files: int


def runs_the_runner(command: Sequence[str]) -> bool:
    """Whether a task's command starts the function-task runner (``-m executors.runtime.runner``)."""
    return any(a == "-m" and b == RUNNER_MODULE for a, b in itertools.pairwise(command))


def _package_root() -> Path:
    import executors

    return Path(executors.__file__).resolve().parent


def _archived_files(root: Path) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if any(part in _SKIPPED_DIRS for part in relative.parts) or not path.is_file():
            continue
        if path.suffix in _SKIPPED_SUFFIXES:
            continue
        found.append((f"{PACKAGE}/{relative.as_posix()}", path))
    return sorted(found)


@functools.cache
def package_archive() -> PackageArchive:
    """The zip of the installed ``executors`` package (built once per process: it reads ~80 files,
    so callers on an event loop run it in a thread)."""
    digest = hashlib.sha256()
    buffer = io.BytesIO()
    files = _archived_files(_package_root())
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, path in files:
            content = path.read_bytes()
            digest.update(name.encode() + b"\0" + len(content).to_bytes(8, "big") + content)
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return PackageArchive(data=buffer.getvalue(), digest=digest.hexdigest(), files=len(files))


_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _declared(distribution: str) -> dict[str, str]:
    """Requirement strings this package declares (core and extras), by normalized name."""
    try:
        requires = importlib.metadata.requires(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        return {}
    out: dict[str, str] = {}
    for line in requires:
        spec = line.split(";", 1)[0].strip()
        match = _NAME_RE.match(spec)
        if match:
            out.setdefault(_normalize(match.group(1)), spec.replace(" ", ""))
    return out


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runner_requirements(protocols: Iterable[str] = ()) -> list[str]:
    """pip requirements for the runner: :data:`RUNNER_DISTRIBUTIONS` plus the filesystem of each
    object-store protocol in ``protocols``, with the version ranges this package declares (so pip
    leaves a library the machine already has alone when its version fits)."""
    names = list(RUNNER_DISTRIBUTIONS)
    for protocol in protocols:
        store = STORE_DISTRIBUTIONS.get(protocol)
        if store and store not in names:
            names.append(store)
    declared = _declared(DISTRIBUTION)
    return [declared.get(_normalize(name), name) for name in names]
