"""The catalog: cached task results with Flyte's cache semantics, on any fsspec store."""

from __future__ import annotations

from executors.catalog.key import (
    CacheKey,
    CacheKeyError,
    cache_key,
    inputs_hash,
    interface_hash,
    is_cacheable,
)
from executors.catalog.store import CatalogEntry, FsspecCatalog

__all__ = [
    "CacheKey",
    "CacheKeyError",
    "CatalogEntry",
    "FsspecCatalog",
    "cache_key",
    "inputs_hash",
    "interface_hash",
    "is_cacheable",
]
