"""Real fsspec filesystems that fail on demand (imported by tests *and* by task processes).

* ``flakymem://`` - an in-memory store (own store, not shared with ``memory://``) whose every
  operation raises ``ConnectionError`` while ``FlakyMemoryFileSystem.down`` is set.
* ``flakyfile://<absolute path>`` - the local disk behind a protocol of its own, so that a task
  process (which imports this module to register it) can read inputs and write outputs, while the
  test process makes it fail: ``FlakyLocalFileSystem.rule(op, path)`` returning True makes that
  operation raise ``ConnectionError``. Only the test process sets a rule; task processes never fail.

Standard fsspec registration, no mocks: ``executors.DataStore`` finds the classes through
``fsspec.get_filesystem_class`` like any other protocol. Failures are injected in the I/O
primitives (``info``, ``_open``, ``cat_file``, ``pipe_file``, ``makedirs``, ``ls``), where a network
filesystem fails; everything fsspec builds on them (``exists``, ``isfile``, ...) behaves as it
would for a real store that is down.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import fsspec
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem


class _FailingIO:
    """The I/O primitives, each asking ``_check`` first (``exists`` is left alone on purpose: it is
    built on ``info``, and fsspec's own ``exists`` swallows errors). Arguments pass through, so each
    filesystem keeps its own defaults."""

    def _check(self, op: str, path: Any) -> None:
        raise NotImplementedError

    def cat_file(self, path: Any, *args: Any, **kwargs: Any) -> Any:
        self._check("cat_file", path)
        return super().cat_file(path, *args, **kwargs)  # type: ignore[misc]

    def pipe_file(self, path: Any, *args: Any, **kwargs: Any) -> Any:
        self._check("pipe_file", path)
        return super().pipe_file(path, *args, **kwargs)  # type: ignore[misc]

    def _open(self, path: Any, *args: Any, **kwargs: Any) -> Any:
        self._check("open", path)
        return super()._open(path, *args, **kwargs)  # type: ignore[misc]

    def info(self, path: Any, **kwargs: Any) -> Any:
        self._check("info", path)
        return super().info(path, **kwargs)  # type: ignore[misc]

    def makedirs(self, path: Any, *args: Any, **kwargs: Any) -> None:
        self._check("makedirs", path)
        super().makedirs(path, *args, **kwargs)  # type: ignore[misc]

    def ls(self, path: Any, *args: Any, **kwargs: Any) -> Any:
        self._check("ls", path)
        return super().ls(path, *args, **kwargs)  # type: ignore[misc]


class FlakyMemoryFileSystem(_FailingIO, MemoryFileSystem):
    protocol = "flakymem"
    store: ClassVar[dict[str, Any]] = {}
    pseudo_dirs: ClassVar[list[str]] = [""]
    down: ClassVar[bool] = False
    failures: ClassVar[int] = 0

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, str):
            path = path.removeprefix("flakymem://")
        return super()._strip_protocol(path)

    def _check(self, op: str, path: Any) -> None:
        if type(self).down:
            type(self).failures += 1
            raise ConnectionError(f"flakymem store unreachable during {op}({path})")


Rule = Callable[[str, str], bool]


class FlakyLocalFileSystem(_FailingIO, LocalFileSystem):
    protocol = ("flakyfile",)
    rule: ClassVar[Rule | None] = None
    failures: ClassVar[int] = 0

    def _check(self, op: str, path: Any) -> None:
        rule = type(self).rule
        if rule is not None and rule(op, str(path)):
            type(self).failures += 1
            raise ConnectionError(f"flakyfile store unreachable during {op}({path})")


fsspec.register_implementation("flakymem", FlakyMemoryFileSystem, clobber=True)
fsspec.register_implementation("flakyfile", FlakyLocalFileSystem, clobber=True)
