"""Initialized executors shared by everything on one event loop, and the wake-up registry.

In the triggerer, thousands of ``ExecutorTrigger`` s run on one loop: they share one initialized
executor per (id, configuration) instead of building one each, exactly as Flyte initializes a
plugin once per process. The pool is per event loop because executors may hold loop-bound
resources (an async HTTP client); a worker's ``asyncio.run`` gets a fresh pool each time.

``enqueue_owner`` (the seed's EnqueueOwner) is :func:`executors.engine.waking.wake_owner`: it wakes
the drivers (triggers) of that owner id at once, from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

from airflow_provider.stats import AirflowStatsScope
from executors import (
    DataStore,
    Executor,
    ExecutorInitializationParameters,
    create_executor,
)
from executors.catalog import FsspecCatalog
from executors.catalog.gate import CachingExecutor
from executors.engine.events import DataStoreEventRecorder
from executors.engine.waking import wake_owner

T = TypeVar("T")


class _LoopPool:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.executors: dict[str, asyncio.Future[Executor]] = {}


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPool] = weakref.WeakKeyDictionary()


def _pool() -> _LoopPool:
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None:
        pool = _pools[loop] = _LoopPool(loop)
    return pool


async def get_executor(
    executor_id: str, config: dict[str, Any], store: DataStore, catalog: dict[str, Any] | None = None
) -> Executor:
    """The initialized executor for this id and configuration on the running loop.

    ``config["conn_id"]``, when present, names an ``executor`` connection whose settings (address,
    token, extra options) are merged under the explicit ones. ``catalog`` (``{"conn_id": ...}`` or
    ``{"root": url}``) puts the result catalog in front of the executor (:class:`CachingExecutor`).
    Credentials are resolved here, in the process that runs the executor, and never travel in
    trigger kwargs.

    Raises what the registry raises for an unknown id and what ``initialize`` raises; a failed
    initialization is not cached, so the next call tries again.
    """
    pool = _pool()
    key = json.dumps([executor_id, config, catalog], sort_keys=True, default=str)
    future = pool.executors.get(key)
    if future is None:
        future = pool.loop.create_future()
        pool.executors[key] = future
        try:
            executor = create_executor(executor_id, **await _resolve_config(config))
            await executor.initialize(
                ExecutorInitializationParameters(
                    data_store=store,
                    event_recorder=DataStoreEventRecorder(store),
                    enqueue_owner=wake_owner,  # thread-safe: wakes the drivers of that owner
                    owner_kind="TaskInstance",
                    metrics_scope=AirflowStatsScope(f"executors.{executor_id}"),
                )
            )
            if catalog:
                executor = CachingExecutor(
                    executor,
                    await _catalog(catalog),
                    store=store,
                    metrics=AirflowStatsScope(f"executors.{executor_id}"),
                )
        except BaseException as exc:
            del pool.executors[key]
            future.set_exception(exc)
            future.exception()  # mark retrieved: concurrent waiters re-raise it themselves
            raise
        future.set_result(executor)
    return await asyncio.shield(future)


async def _resolve_config(config: dict[str, Any]) -> dict[str, Any]:
    conn_id = config.get("conn_id")
    if not conn_id:
        return {k: v for k, v in config.items() if k != "conn_id"}
    from airflow_provider.hooks import ExecutorHook

    resolved = await ExecutorHook(conn_id).aexecutor_config()
    resolved.update({k: v for k, v in config.items() if k != "conn_id"})
    return resolved


async def _catalog(spec: dict[str, Any]) -> FsspecCatalog:
    if spec.get("conn_id"):
        from airflow_provider.hooks import CatalogHook

        return await CatalogHook(spec["conn_id"]).aget_catalog()
    return FsspecCatalog(spec["root"])


async def closing(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro``, then close every executor this loop's pool created: for the short-lived
    loops of a worker (``asyncio.run`` per call). The triggerer's loop keeps its executors."""
    try:
        return await coro
    finally:
        pool = _pool()
        futures, pool.executors = list(pool.executors.values()), {}
        for future in futures:
            if future.done() and not future.exception():
                with contextlib.suppress(Exception):
                    await future.result().close()
