"""FsspecCatalog: the result cache on any fsspec store (a local folder, S3, GCS, ...).

One entry is one file, a real flyteidl ``datacatalog.Artifact`` (outputs as ``ArtifactData``,
metadata in ``key_map``), at ``{root}/{project}/{domain}/{dataset}/{version}/{tag}.pb``:

* ``get`` is a single read; a missing file is a miss, an entry older than ``max_age`` is a miss.
* ``put`` is atomic: written to a temporary sibling and renamed on local folders, a single object
  write on object stores. A reader never sees half an entry; two concurrent puts leave one valid
  entry (the last one).
* reservations (for ``cache_serializable``) are ``datacatalog.Reservation`` files beside the entry,
  with an owner, a heartbeat interval and an expiry; see :meth:`FsspecCatalog.acquire`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from flyteidl.core import identifier_pb2, literals_pb2, tasks_pb2
from flyteidl.datacatalog import datacatalog_pb2
from google.protobuf import json_format

from executors.catalog.key import CacheKey, cache_key
from executors.core.errors import DataNotFoundError
from executors.data.storage import DataStore, join, path_segment

ENTRY_SUFFIX = ".pb"
RESERVATION_SUFFIX = ".reservation"


@dataclasses.dataclass(frozen=True)
class CatalogEntry:
    """One cached result, with where it came from."""

    key: CacheKey
    outputs: literals_pb2.LiteralMap
    created_at: dt.datetime
    source_execution: str
    task_version: str
    reference: str

    def describe(self) -> dict[str, Any]:
        return {
            "key": str(self.key),
            "created_at": self.created_at.isoformat(),
            "source_execution": self.source_execution,
            "task_version": self.task_version,
            "outputs": sorted(self.outputs.literals),
            "reference": self.reference,
        }


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class FsspecCatalog:
    """A :class:`executors.CatalogClient` over fsspec.

    ``max_age``: entries older than this are misses (and are left for eviction). ``store`` lets
    the caller share a :class:`DataStore` (and its storage options/credentials).
    """

    def __init__(
        self,
        root: str,
        *,
        max_age: dt.timedelta | None = None,
        storage_options: Mapping[str, Mapping[str, Any]] | None = None,
        store: DataStore | None = None,
    ) -> None:
        self.root = root.rstrip("/")
        self.max_age = max_age
        self._store = store or DataStore(storage_options)

    # -- layout --------------------------------------------------------------------------------

    def dataset_folder(self, project: str, domain: str, dataset: str, version: str | None = None) -> str:
        parts = [project or "_", domain or "_", dataset]
        if version:
            parts.append(version)
        return join(self.root, *(path_segment(p) for p in parts))

    def entry_reference(self, key: CacheKey) -> str:
        folder = self.dataset_folder(key.project, key.domain, key.dataset, key.version)
        return join(folder, path_segment(key.tag) + ENTRY_SUFFIX)

    def reservation_reference(self, key: CacheKey) -> str:
        folder = self.dataset_folder(key.project, key.domain, key.dataset, key.version)
        return join(folder, path_segment(key.tag) + RESERVATION_SUFFIX)

    # -- CatalogClient -------------------------------------------------------------------------

    async def get(
        self, task: tasks_pb2.TaskTemplate, inputs: literals_pb2.LiteralMap
    ) -> literals_pb2.LiteralMap | None:
        """The cached outputs, or ``None`` on a miss. A corrupt entry raises CorruptDataError."""
        entry = await self.get_entry(cache_key(task, inputs))
        return entry.outputs if entry is not None else None

    async def put(
        self,
        task: tasks_pb2.TaskTemplate,
        execution_id: identifier_pb2.TaskExecutionIdentifier,
        inputs: literals_pb2.LiteralMap,
        outputs: literals_pb2.LiteralMap,
    ) -> None:
        source = json_format.MessageToJson(execution_id, indent=None, preserving_proto_field_name=True)
        key = cache_key(task, inputs)
        await self.put_entry(key, outputs, source_execution=source, task_version=task.id.version)

    # -- entries -------------------------------------------------------------------------------

    async def get_entry(self, key: CacheKey) -> CatalogEntry | None:
        reference = self.entry_reference(key)
        try:
            artifact = await self._store.read_protobuf(reference, datacatalog_pb2.Artifact)
        except DataNotFoundError:
            return None
        entry = self._entry(key, artifact, reference)
        if self.max_age is not None and _now() - entry.created_at > self.max_age:
            return None
        return entry

    async def put_entry(
        self, key: CacheKey, outputs: literals_pb2.LiteralMap, *, source_execution: str, task_version: str
    ) -> str:
        """Store an entry atomically; returns its reference."""
        artifact = datacatalog_pb2.Artifact(id=uuid.uuid4().hex, dataset=key.dataset_id())
        for name, literal in sorted(outputs.literals.items()):
            artifact.data.add(name=name, value=literal)
        created = _now()
        artifact.created_at.FromDatetime(created.replace(tzinfo=None))
        artifact.metadata.key_map.update(
            {
                "tag": key.tag,
                "created_at": created.isoformat(),
                "source_execution": source_execution,
                "task_version": task_version,
            }
        )
        artifact.tags.add(name=key.tag, artifact_id=artifact.id, dataset=key.dataset_id())
        reference = self.entry_reference(key)
        await self._store.write_protobuf(reference, artifact)
        return reference

    @staticmethod
    def _entry(key: CacheKey, artifact: datacatalog_pb2.Artifact, reference: str) -> CatalogEntry:
        outputs = literals_pb2.LiteralMap()
        for data in artifact.data:
            outputs.literals[data.name].CopyFrom(data.value)
        meta = artifact.metadata.key_map
        created = artifact.created_at.ToDatetime(tzinfo=dt.UTC)
        return CatalogEntry(
            key=key,
            outputs=outputs,
            created_at=created,
            source_execution=meta.get("source_execution", ""),
            task_version=meta.get("task_version", ""),
            reference=reference,
        )

    async def list_entries(self, dataset: str | None = None) -> list[CatalogEntry]:
        """Every entry (of one dataset name, e.g. ``flyte_task-my.task``, when given)."""
        entries = []
        for reference in await self._store.find(self.root, ENTRY_SUFFIX):
            try:
                artifact = await self._store.read_protobuf(reference, datacatalog_pb2.Artifact)
            except Exception:
                continue  # a corrupt entry is skipped here; get() reports it
            ds = artifact.dataset
            if dataset is not None and ds.name != dataset:
                continue
            tag = artifact.metadata.key_map.get("tag", "")
            key = CacheKey(ds.project, ds.domain, ds.name, ds.version, tag)
            entries.append(self._entry(key, artifact, reference))
        return entries

    async def evict(self, key: CacheKey) -> bool:
        """Remove one entry; True when there was one."""
        return await self._store.remove(self.entry_reference(key))

    async def evict_dataset(self, project: str, domain: str, dataset: str, version: str | None = None) -> int:
        """Remove every entry of a dataset (all versions unless one is named); returns the count."""
        folder = self.dataset_folder(project, domain, dataset, version)
        count = len(await self._store.find(folder, ENTRY_SUFFIX))
        await self._store.remove_tree(folder)
        return count

    # -- reservations (cache_serializable) -----------------------------------------------------

    async def read_reservation(self, key: CacheKey) -> datacatalog_pb2.Reservation | None:
        try:
            reference = self.reservation_reference(key)
            return await self._store.read_protobuf(reference, datacatalog_pb2.Reservation)
        except DataNotFoundError:
            return None

    async def acquire(
        self, key: CacheKey, owner: str, *, heartbeat: dt.timedelta = dt.timedelta(seconds=30)
    ) -> tuple[bool, datacatalog_pb2.Reservation]:
        """Take (or extend) the reservation of ``key`` for ``owner``.

        Returns ``(True, reservation)`` when ``owner`` holds it now, ``(False, reservation of the
        holder)`` otherwise. A reservation expires ``3 * heartbeat`` after its last renewal, so one
        whose owner died is taken over. The first reservation is created exclusively where the store
        can (a local folder: ``link``; S3: ``PUT`` with ``If-None-Match: *``), so of owners racing
        for a free key exactly one gets it. Elsewhere (and for every take-over and renewal) it is
        written, then read back: the last writer holds it, and a racer that read back before the
        last write may also believe it does, for one heartbeat at most.
        """
        current = await self.read_reservation(key)
        now = _now()
        if current is not None and current.owner_id != owner and current.expires_at.ToDatetime(dt.UTC) > now:
            return False, current
        mine = datacatalog_pb2.Reservation(owner_id=owner)
        mine.reservation_id.dataset_id.CopyFrom(key.dataset_id())
        mine.reservation_id.tag_name = key.tag
        mine.heartbeat_interval.FromTimedelta(heartbeat)
        mine.expires_at.FromDatetime((now + 3 * heartbeat).replace(tzinfo=None))
        reference = self.reservation_reference(key)
        data = mine.SerializeToString(deterministic=True)
        created = await self._store.create_exclusive(reference, data) if current is None else None
        if created is False:
            holder = await self.read_reservation(key)
            return (holder is not None and holder.owner_id == owner), holder or mine
        if created is None:  # a take-over, a renewal, or a store without conditional create
            await self._store.write_bytes(reference, data)
        holder = await self.read_reservation(key)
        if holder is None:
            return False, mine
        return holder.owner_id == owner, holder

    async def release(self, key: CacheKey, owner: str) -> None:
        """Drop the reservation if ``owner`` holds it (idempotent)."""
        current = await self.read_reservation(key)
        if current is not None and current.owner_id == owner:
            await self._store.remove(self.reservation_reference(key))
