"""``Cache``: how a task is cached in the catalog, as one value (flytekit's ``Cache`` is the model).

It is what a ``TaskTemplate``'s metadata says about caching (``discoverable``,
``discovery_version``, ``cache_serializable``, ``cache_ignore_input_vars``), written once and
passed whole from the operator or the decorator to the template builder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from flyteidl.core import tasks_pb2


@dataclasses.dataclass(frozen=True)
class Cache:
    """Serve identical executions from the catalog.

    :param version: part of the cache key: bump it when the task's code changes its results.
        Required: a cached task without a version fails before it starts, naming the task.
    :param serialize: identical executions that overlap wait for the first one instead of running
        again (Flyte's ``cache_serializable``).
    :param ignored_inputs: inputs left out of the cache key (a log level, a request id).
    """

    version: str = ""
    serialize: bool = False
    ignored_inputs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.version, str):
            raise TypeError(f"Cache(version=...) must be a string, got {self.version!r}")
        ignored = self.ignored_inputs
        if isinstance(ignored, str) or not all(isinstance(name, str) for name in ignored):
            raise TypeError(f"Cache(ignored_inputs=...) must be a sequence of input names, got {ignored!r}")
        object.__setattr__(self, "ignored_inputs", tuple(ignored))

    @classmethod
    def of(cls, value: bool | Cache | None) -> Cache | None:
        """``None`` for no caching; ``True`` is ``Cache()`` (which still needs a version)."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, Cache):
            return value
        raise TypeError(f"cache= takes True, False or Cache(version=...), got {value!r}")

    def apply(self, metadata: tasks_pb2.TaskMetadata) -> None:
        """Write these settings into a template's metadata."""
        metadata.discoverable = True
        metadata.discovery_version = self.version
        metadata.cache_serializable = self.serialize
        del metadata.cache_ignore_input_vars[:]
        metadata.cache_ignore_input_vars.extend(self.ignored_inputs)


LEGACY_CACHE_ARGUMENTS = {
    "cache_version": "Cache(version=...)",
    "cache_serialize": "Cache(serialize=True)",
    "cache_ignore_inputs": "Cache(ignored_inputs=(...))",
}


def refuse_legacy_cache_arguments(where: str, given: Sequence[str]) -> None:
    """A clear TypeError for the keywords that ``Cache`` replaced, naming the replacement."""
    legacy = [name for name in given if name in LEGACY_CACHE_ARGUMENTS]
    if legacy:
        hints = ", ".join(f"{name}= is now cache={LEGACY_CACHE_ARGUMENTS[name]}" for name in legacy)
        raise TypeError(f"{where}: {hints} (from executors import Cache)")
