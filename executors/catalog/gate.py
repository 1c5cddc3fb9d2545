"""CachingExecutor: puts the catalog in front of any executor.

It wraps an executor and applies Flyte's node-level caching, so the engine (our trigger, the
worker, the CLI) needs no cache logic of its own:

* ``start_task`` looks the key up first. A hit writes the cached outputs to this execution's
  ``outputs.pb`` and answers SUCCEEDED without touching the backend. A miss starts the inner
  executor. With ``cache_serializable``, a miss first takes the key's reservation; while another
  live execution holds it, the answer is NOT_READY (the engine waits, deferred, and asks again:
  once the holder has populated the cache, the next ask is a hit).
* ``check_task_status`` passes through; on SUCCEEDED it stores the outputs (once) and releases the
  reservation; while running it renews the reservation (the heartbeat).
* A catalog that is down or holds a corrupt entry never fails the task: it is a miss (or a failed
  put) with a warning and a metric.

The outcome is kept in the custom state under ``"catalog"`` (``{"status": "CACHE_HIT", ...}``, the
names of flyteidl's ``CatalogCacheStatus``); the inner executor's own state lives under
``"executor"``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Mapping
from typing import Any

from flyteidl.core import literals_pb2, tasks_pb2

from executors.backends.outputs import OutputsResolver
from executors.catalog.key import CacheKey, cache_key, is_cacheable
from executors.catalog.store import FsspecCatalog
from executors.core.context import TaskContext
from executors.core.interface import (
    Executor,
    ExecutorInitializationParameters,
    ExecutorProperties,
    MetricsScope,
    NullMetrics,
)
from executors.core.output import OutputChunk
from executors.core.phase import TaskPhase
from executors.core.status import ErrorOrigin, TaskError, TaskStatus, not_ready_failure
from executors.data.storage import DataStore

log = logging.getLogger(__name__)

HIT, MISS, POPULATED = "CACHE_HIT", "CACHE_MISS", "CACHE_POPULATED"
LOOKUP_FAILURE, PUT_FAILURE, DISABLED, SKIPPED = (
    "CACHE_LOOKUP_FAILURE",
    "CACHE_PUT_FAILURE",
    "CACHE_DISABLED",
    "CACHE_SKIPPED",
)


@dataclasses.dataclass(frozen=True)
class CacheOutcome:
    """What the catalog did for one execution, read from its status (see the module docstring)."""

    status: str
    """A flyteidl ``CatalogCacheStatus`` name: ``CACHE_HIT``, ``CACHE_MISS``, ``CACHE_POPULATED``..."""
    key: CacheKey | None = None
    error: str | None = None
    """Catalog trouble that did not affect the task (a failed look-up or put)."""

    @classmethod
    def of(cls, task_ctx: TaskContext) -> CacheOutcome | None:
        """The outcome recorded in ``task_ctx``; ``None`` when no catalog stood in front."""
        state = task_ctx.custom_state.get("catalog")
        if not isinstance(state, dict) or not state.get("status"):
            return None
        key = state.get("key")
        error = state.get("error")
        return cls(
            str(state["status"]),
            CacheKey(**key) if isinstance(key, dict) else None,
            str(error) if error else None,
        )


class CachingExecutor(Executor):
    """Wrap ``inner`` with the catalog. ``inner`` must already be initialized."""

    def __init__(
        self,
        inner: Executor,
        catalog: FsspecCatalog,
        *,
        store: DataStore,
        heartbeat: dt.timedelta = dt.timedelta(seconds=30),
        metrics: MetricsScope | None = None,
    ) -> None:
        self.inner = inner
        self.catalog = catalog
        self.heartbeat = heartbeat
        self._store = store
        self._metrics = metrics or NullMetrics()
        self.id = inner.get_id()  # type: ignore[misc]

    def get_id(self) -> str:
        return self.inner.get_id()

    def get_properties(self) -> ExecutorProperties:
        return self.inner.get_properties()

    async def initialize(self, params: ExecutorInitializationParameters) -> None:
        return None  # the inner executor is initialized by whoever built it

    # -- state plumbing ------------------------------------------------------------------------

    @staticmethod
    def _inner_ctx(ctx: TaskContext) -> TaskContext:
        return dataclasses.replace(ctx, custom_state=dict(ctx.custom_state.get("executor") or {}))

    @staticmethod
    def _cache_state(ctx: TaskContext) -> dict[str, Any]:
        return dict(ctx.custom_state.get("catalog") or {})

    @staticmethod
    def _wrap(status: TaskStatus, ctx: TaskContext, cache: dict[str, Any]) -> TaskStatus:
        inner_state = status.state if status.state is not None else ctx.custom_state.get("executor") or {}
        return status.with_state({"executor": inner_state, "catalog": cache})

    def _enabled(self, task: tasks_pb2.TaskTemplate) -> bool:
        return is_cacheable(task) and not self.inner.get_properties().disable_node_level_caching

    # -- Executor ------------------------------------------------------------------------------

    async def start_task(
        self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate, inputs: literals_pb2.LiteralMap
    ) -> TaskStatus:
        if not self._enabled(task):
            started = await self.inner.start_task(self._inner_ctx(task_ctx), task, inputs)
            return self._wrap(started, task_ctx, {"status": DISABLED})
        key = cache_key(task, inputs)  # CacheKeyError (no version) is the author's to fix: raise it
        cache: dict[str, Any] = {"status": MISS, "key": dataclasses.asdict(key)}
        try:
            entry = await self.catalog.get_entry(key)
        except Exception as exc:
            log.warning("catalog lookup failed for %s, running the task: %s", key, exc)
            self._metrics.incr("catalog.lookup_failure")
            cache = {"status": LOOKUP_FAILURE, "key": dataclasses.asdict(key), "error": str(exc)}
            entry = None
        if entry is not None:
            await self._store.write_protobuf(task_ctx.outputs_file, entry.outputs)
            self._metrics.incr("catalog.hit")
            cache = {
                "status": HIT,
                "key": dataclasses.asdict(key),
                "source_execution": entry.source_execution,
                "created_at": entry.created_at.isoformat(),
            }
            return TaskStatus(TaskPhase.SUCCEEDED, state={"executor": {}, "catalog": cache})
        if cache["status"] == MISS:
            self._metrics.incr("catalog.miss")
        if task.metadata.cache_serializable and cache["status"] == MISS:
            try:
                acquired, holder = await self.catalog.acquire(
                    key, task_ctx.generated_name, heartbeat=self.heartbeat
                )
            except Exception as exc:  # no reservation possible: run rather than wait forever
                log.warning("catalog reservation failed for %s, running the task: %s", key, exc)
                acquired, holder = True, None
            if not acquired:
                waiting = {
                    "status": MISS,
                    "key": dataclasses.asdict(key),
                    "waiting_for": holder.owner_id if holder else "",
                }
                err = TaskError(
                    "WaitingForCache",
                    f"an identical execution ({waiting['waiting_for']}) is computing this result",
                    ErrorOrigin.SYSTEM,
                )
                return not_ready_failure(err).with_state({"executor": {}, "catalog": waiting})
            cache["reserved"] = True
            cache["renewed_at"] = time.time()
        status = await self.inner.start_task(self._inner_ctx(task_ctx), task, inputs)
        if status.phase.is_final_for_execution():
            return await self._finish(task_ctx, task, status, cache)
        return self._wrap(status, task_ctx, cache)

    async def check_task_status(self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate) -> TaskStatus:
        cache = self._cache_state(task_ctx)
        if cache.get("status") == HIT:
            return TaskStatus(TaskPhase.SUCCEEDED, state=dict(task_ctx.custom_state))
        status = await self.inner.check_task_status(self._inner_ctx(task_ctx), task)
        if status.phase.is_final_for_execution():
            return await self._finish(task_ctx, task, status, cache)
        if (
            cache.get("reserved")
            and time.time() - float(cache.get("renewed_at", 0)) > self.heartbeat.total_seconds()
        ):
            try:
                await self.catalog.acquire(
                    CacheKey(**cache["key"]), task_ctx.generated_name, heartbeat=self.heartbeat
                )
                cache = {**cache, "renewed_at": time.time()}
            except Exception as exc:
                log.warning("could not renew the cache reservation %s: %s", cache["key"], exc)
        return self._wrap(status, task_ctx, cache)

    async def _finish(
        self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate, status: TaskStatus, cache: dict[str, Any]
    ) -> TaskStatus:
        key = CacheKey(**cache["key"]) if "key" in cache else None
        if (
            status.phase is TaskPhase.SUCCEEDED
            and key is not None
            and cache.get("status") in (MISS, LOOKUP_FAILURE)
        ):
            try:
                inputs = await self._store.read_protobuf(task_ctx.inputs_file, literals_pb2.LiteralMap)
                if cache_key(task, inputs) != key:
                    raise ValueError("the inputs changed since the lookup")
                literals = await self.inner.resolve_outputs(
                    self._inner_ctx(task_ctx), *task.interface.outputs.variables
                )
                outputs = literals_pb2.LiteralMap(literals=literals)
                await self.catalog.put(task, task_ctx.task_execution_id.id, inputs, outputs)
                cache = {**cache, "status": POPULATED}
                self._metrics.incr("catalog.populated")
            except Exception as exc:
                log.warning("storing the result in the catalog failed for %s: %s", key, exc)
                self._metrics.incr("catalog.put_failure")
                cache = {**cache, "status": PUT_FAILURE, "error": str(exc)}
        if key is not None and cache.get("reserved"):
            try:
                await self.catalog.release(key, task_ctx.generated_name)
            except Exception as exc:
                log.warning("could not release the cache reservation %s: %s", key, exc)
            cache = {k: v for k, v in cache.items() if k not in ("reserved", "renewed_at")}
        return self._wrap(status, task_ctx, cache)

    async def kill_task(self, task_ctx: TaskContext, reason: str) -> None:
        await self.inner.kill_task(self._inner_ctx(task_ctx), reason)
        cache = self._cache_state(task_ctx)
        if cache.get("reserved") and "key" in cache:
            await self.catalog.release(CacheKey(**cache["key"]), task_ctx.generated_name)

    async def resolve_outputs(
        self, task_ctx: TaskContext, *output_variables: str
    ) -> dict[str, literals_pb2.Literal]:
        if self._cache_state(task_ctx).get("status") == HIT:
            return await OutputsResolver(self._store).resolve_outputs(task_ctx, *output_variables)
        return await self.inner.resolve_outputs(self._inner_ctx(task_ctx), *output_variables)

    async def close(self) -> None:
        await self.inner.close()

    def get_run_url(self, task_ctx: TaskContext) -> str | None:
        if self._cache_state(task_ctx).get("status") == HIT:
            return None  # nothing ran: the inner executor's link would point at nothing
        return self.inner.get_run_url(self._inner_ctx(task_ctx))

    async def read_logs(self, task_ctx: TaskContext, max_bytes: int = 64_000) -> str | None:
        if self._cache_state(task_ctx).get("status") == HIT:
            return None
        return await self.inner.read_logs(self._inner_ctx(task_ctx), max_bytes)

    async def read_output(
        self,
        task_ctx: TaskContext,
        cursor: Mapping[str, Any] | None,
        *,
        max_bytes: int = 64_000,
        final: bool = False,
    ) -> OutputChunk | None:
        if self._cache_state(task_ctx).get("status") == HIT:
            return OutputChunk((), dict(cursor or {}))  # nothing ran, nothing printed
        return await self.inner.read_output(
            self._inner_ctx(task_ctx), cursor, max_bytes=max_bytes, final=final
        )
