"""The executor registry: executor ids to classes, fed by a Python entry-point group.

A third-party package adds a backend by declaring one entry point, with no change to this package
or to the Airflow provider::

    [project.entry-points."airflow_provider_executors.executors"]
    mybackend = "mypkg.executor:MyExecutor"

The entry point's name must equal the class's ``id``. Entry points are loaded lazily, the first
time an id is looked up, so importing the package stays cheap.
"""

from __future__ import annotations

import importlib.metadata
import threading
from typing import Any

from executors.core.errors import DuplicateExecutorError, UnknownExecutorError
from executors.core.interface import Executor

ENTRY_POINT_GROUP = "airflow_provider_executors.executors"


class ExecutorRegistry:
    """Maps executor ids to :class:`Executor` subclasses."""

    def __init__(self, entry_point_group: str | None = ENTRY_POINT_GROUP) -> None:
        self._group = entry_point_group
        self._classes: dict[str, type[Executor]] = {}
        self._sources: dict[str, str] = {}
        self._broken: dict[str, str] = {}
        self._loaded = entry_point_group is None
        self._lock = threading.Lock()

    def register(self, cls: type[Executor], *, source: str = "register()") -> None:
        """Add an executor class; an id already taken by another class is an error."""
        executor_id = getattr(cls, "id", None)
        if not isinstance(executor_id, str) or not executor_id:
            raise TypeError(f"{cls.__module__}.{cls.__qualname__} has no 'id' class attribute")
        existing = self._classes.get(executor_id)
        if existing is not None and existing is not cls:
            raise DuplicateExecutorError(
                f"executor id {executor_id!r} is claimed twice: by {self._sources[executor_id]} "
                f"({existing.__module__}.{existing.__qualname__}) and by {source} "
                f"({cls.__module__}.{cls.__qualname__})"
            )
        self._classes[executor_id] = cls
        self._sources[executor_id] = source

    def _load_entry_points(self) -> None:
        with self._lock:
            if self._loaded:
                return
            assert self._group is not None
            seen: dict[str, str] = {}
            for ep in importlib.metadata.entry_points(group=self._group):
                dist = ep.dist.name if ep.dist is not None else "unknown distribution"
                source = f"entry point {ep.name!r} = {ep.value!r} of {dist}"
                if ep.name in seen and seen[ep.name] != ep.value:
                    raise DuplicateExecutorError(
                        f"executor id {ep.name!r} is claimed twice in entry-point group "
                        f"{self._group!r}: {seen[ep.name]} and {source}"
                    )
                if ep.name in seen:
                    continue  # the same distribution seen twice on sys.path
                seen[ep.name] = source
                try:
                    cls = ep.load()
                except Exception as exc:  # one broken plugin must not take the others down
                    self._broken[ep.name] = f"{source} failed to load: {type(exc).__name__}: {exc}"
                    continue
                if getattr(cls, "id", None) != ep.name:
                    raise DuplicateExecutorError(
                        f"{source} loads a class whose id is {getattr(cls, 'id', None)!r}, not {ep.name!r}"
                    )
                self.register(cls, source=source)
            self._loaded = True

    def known_ids(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._classes)

    def get(self, executor_id: str) -> type[Executor]:
        """The class registered under ``executor_id``; UnknownExecutorError lists the known ids."""
        self._load_entry_points()
        try:
            return self._classes[executor_id]
        except KeyError:
            if executor_id in self._broken:
                raise UnknownExecutorError(
                    f"executor {executor_id!r} is installed but {self._broken[executor_id]}"
                ) from None
            known = ", ".join(repr(k) for k in sorted(self._classes)) or "none"
            raise UnknownExecutorError(
                f"unknown executor id {executor_id!r}; known executors: {known}"
            ) from None

    def create(self, executor_id: str, **config: Any) -> Executor:
        """Instantiate the executor with its configuration keyword arguments."""
        return self.get(executor_id)(**config)


default_registry = ExecutorRegistry()
"""The process-wide registry, fed by installed entry points."""


def get_executor_class(executor_id: str) -> type[Executor]:
    return default_registry.get(executor_id)


def create_executor(executor_id: str, **config: Any) -> Executor:
    return default_registry.create(executor_id, **config)


def known_executor_ids() -> list[str]:
    return default_registry.known_ids()
