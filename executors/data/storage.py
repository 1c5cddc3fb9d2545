"""DataStore: read and write an execution's data at any fsspec URL, without blocking the loop.

References are plain URL strings (``/tmp/run/inputs.pb``, ``file:///...``, ``memory://...``,
``s3://bucket/...``), so they travel in trigger kwargs as they are. We use fsspec rather than our
own backends because it already speaks every store our users have, with one API and one way of
passing credentials (``storage_options``).

Async rule: filesystems with a native async implementation (s3fs, gcsfs, http, ...) are driven
through their coroutines on the running loop; every other filesystem (local, memory, ...) runs in a
worker thread via ``asyncio.to_thread``. Either way, no call here blocks an event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import os
import sys
import urllib.parse
import uuid
import weakref
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, TypeVar

import fsspec
import fsspec.utils
from google.protobuf import message as pb_message

from executors.core.errors import CorruptDataError, DataNotFoundError, DataStoreError
from executors.data.task_files import DataTooLargeError, RefusedDataError, read_task_file

M = TypeVar("M", bound=pb_message.Message)

__all__ = [
    "DataStore",
    "DataTooLargeError",
    "RefusedDataError",
    "is_local",
    "join",
    "local_path",
    "path_segment",
    "protocol_of",
]

_MAX_SEGMENT = 120


def join(base: str, *parts: str) -> str:
    """Join URL path segments with ``/`` (never the OS separator: references are URLs)."""
    out = base.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


def path_segment(name: str) -> str:
    """One safe path segment for any string: no separators, no ``.``/``..``, bounded length.

    Anything outside ``[A-Za-z0-9_.:+=@,-]`` is percent-encoded (so distinct names stay distinct and
    readable), a segment of dots is encoded whole, and a very long segment keeps a readable head
    plus a hash of the whole.
    """
    encoded = urllib.parse.quote(name, safe="-_.:+=@,")
    if encoded != encoded.lower():
        # Case-insensitive filesystems (macOS, Windows) would fold "Load" and "load" together.
        encoded = f"{encoded}~{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    if encoded.strip(".") == "":
        encoded = encoded.replace(".", "%2E") or "%00"
    if len(encoded) > _MAX_SEGMENT:
        digest = hashlib.sha256(name.encode()).hexdigest()[:16]
        head = encoded[: _MAX_SEGMENT - 17]
        head = head[: head.rfind("%")] if "%" in head[-2:] else head  # never cut an escape in half
        encoded = f"{head}~{digest}"
    return encoded


def protocol_of(reference: str) -> str:
    """``s3`` for ``s3://b/k``, ``file`` for a plain path or ``file://`` URL."""
    if "://" in reference:
        return reference.split("://", 1)[0].lower()
    return "file"


def is_local(reference: str) -> bool:
    """True for a plain path or a ``file://`` URL."""
    return protocol_of(reference) in ("file", "local")


def local_path(reference: str) -> str:
    """The filesystem path of a local reference; ValueError for any other URL."""
    if not is_local(reference):
        raise ValueError(f"{reference}: not a local path")
    return reference.split("://", 1)[1] if "://" in reference else reference


def _check_object(reference: str, info: Mapping[str, Any], max_bytes: int) -> None:
    """Refuse, before reading it, an object that is a folder or larger than ``max_bytes``."""
    if info.get("type") == "directory":
        raise RefusedDataError(reference, "is a directory, not a file")
    size = info.get("size")
    if isinstance(size, int) and size > max_bytes:
        raise DataTooLargeError(reference, size, max_bytes)


def parse_protobuf(reference: str, data: bytes, message_type: type[M]) -> M:
    """``data`` (read from ``reference``) as a ``message_type``; CorruptDataError naming the file."""
    message = message_type()
    try:
        message.ParseFromString(data)
    except Exception as exc:  # protobuf raises DecodeError, sometimes RuntimeWarning-ish others
        raise CorruptDataError(
            reference,
            f"not a valid {message_type.DESCRIPTOR.full_name} ({len(data)} bytes): {exc}",
        ) from exc
    return message  # type: ignore[no-any-return]


@dataclasses.dataclass
class _LoopFilesystems:
    """The async filesystems of one event loop, and what closes them when the loop shuts down."""

    by_key: dict[str, Any] = dataclasses.field(default_factory=dict)
    closer: AsyncGenerator[None, None] | None = None


_LOOP_FILESYSTEMS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopFilesystems] = (
    weakref.WeakKeyDictionary()
)


async def _loop_filesystem(cls: type[Any], protocol: str, options: dict[str, Any]) -> Any:
    """The async filesystem of ``cls`` with ``options`` for the running loop: one per loop, shared
    by every DataStore on it (one S3 client and connection pool for a triggerer's thousands of
    triggers, not one each).

    Not fsspec's own instance cache: it tells instances apart by a token of their arguments, and an
    event loop's repr holds no identity, so a filesystem made on a loop that has since closed (each
    ``asyncio.run`` in a worker makes a new one) came back on the next loop and failed with "Event
    loop is closed". Filesystems here go with their loop (a weak key), and their clients are closed
    while it shuts down (see :func:`_close_at_loop_shutdown`)."""
    loop = asyncio.get_running_loop()
    mine = _LOOP_FILESYSTEMS.get(loop)
    if mine is None:
        mine = _LOOP_FILESYSTEMS[loop] = _LoopFilesystems()
    key = f"{protocol}:{fsspec.utils.tokenize(sorted(options.items(), key=lambda kv: kv[0]))}"
    fs = mine.by_key.get(key)
    if fs is None:
        fs = mine.by_key[key] = cls(asynchronous=True, loop=loop, skip_instance_cache=True, **options)
        if mine.closer is None:
            mine.closer = _close_at_loop_shutdown(mine.by_key)
            await mine.closer.__anext__()
    return fs


async def _close_at_loop_shutdown(filesystems: dict[str, Any]) -> AsyncGenerator[None, None]:
    """Closes ``filesystems``' network clients when its loop shuts down.

    asyncio has no "loop closing" callback, but ``asyncio.run`` (and every well-behaved loop owner)
    calls ``loop.shutdown_asyncgens()`` while the loop still runs, which closes each unfinished
    async generator: this one waits at its ``yield`` until then. Without it each closed loop left
    an aiohttp session behind ("Unclosed client session" on stderr)."""
    try:
        yield
    finally:
        for fs in list(filesystems.values()):
            await _close_filesystem(fs)
        filesystems.clear()


async def _close_filesystem(fs: Any) -> None:
    """Close what an async fsspec filesystem holds open: s3fs's aiobotocore client, the aiohttp
    session of http/gcsfs. Best effort: the loop is going away either way."""
    with contextlib.suppress(Exception):
        client = getattr(fs, "_s3", None)
        if client is not None:
            await client.__aexit__(None, None, None)
            fs._s3 = None
    with contextlib.suppress(Exception):
        session = getattr(fs, "_session", None)
        if session is not None and hasattr(session, "close"):
            await session.close()


class DataStore:
    """Protobuf and bytes I/O over fsspec.

    ``storage_options`` maps a protocol (``s3``, ``gcs``, ...) to the keyword arguments of its
    fsspec filesystem (credentials, endpoint, ...). Writes to a local path are atomic (written to a
    temporary sibling and renamed), so a concurrent reader never sees half a file; object stores
    give the same guarantee natively. Missing parent folders are created.

    Errors: :class:`DataNotFoundError` when a reference does not exist, :class:`CorruptDataError`
    when it does not parse as the requested message, :class:`RefusedDataError` (a CorruptDataError)
    when a read with ``within=``/``max_bytes=`` refuses the file, :class:`DataStoreError` for
    anything else; each names the reference.

    Reading what a task wrote: pass ``within=`` (its execution folder) and ``max_bytes=``. A local
    reference is then read by :func:`executors.data.task_files.read_task_file`: the file must be a
    regular file whose real path is inside ``within`` (a symlink inside it is followed, one out of
    it is refused), of at most ``max_bytes`` bytes, and a FIFO or device is refused before any read,
    so the read cannot block without end nor fill memory. An object store has no FIFOs nor symlinks:
    ``within`` is ignored there and ``max_bytes`` is checked on the object's size before reading it
    (and on what is read).
    """

    def __init__(self, storage_options: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self._storage_options = {k: dict(v) for k, v in (storage_options or {}).items()}

    @property
    def storage_options(self) -> dict[str, dict[str, Any]]:
        """The fsspec options per protocol this store was built with (a copy): what another
        process needs to open the same store (``DataStore(store.storage_options)``)."""
        return {k: dict(v) for k, v in self._storage_options.items()}

    def _options(self, protocol: str) -> dict[str, Any]:
        # No listings cache unless asked for: with one, fsspec answers "not found" for a file made
        # after its folder was listed (s3fs's ``info`` trusts the cached listing), and a poll would
        # never see the ``outputs.pb`` a task wrote later.
        return {"use_listings_cache": False, **self._storage_options.get(protocol, {})}

    def filesystem(self, reference: str) -> tuple[Any, str]:
        """The (synchronous-mode) fsspec filesystem and path for a reference."""
        fs, path = fsspec.url_to_fs(reference, **self._options(protocol_of(reference)))
        return fs, path

    async def _async_fs(self, reference: str) -> tuple[Any, str] | None:
        """An async-mode filesystem bound to the running loop, or None for sync-only filesystems."""
        protocol = protocol_of(reference)
        cls = fsspec.get_filesystem_class(protocol)
        if not getattr(cls, "async_impl", False):
            return None
        fs = await _loop_filesystem(cls, protocol, self._options(protocol))
        return fs, fs._strip_protocol(reference)

    async def read_bytes(
        self, reference: str, *, within: str | None = None, max_bytes: int | None = None
    ) -> bytes:
        """The content of ``reference``. ``within`` (a local folder) and ``max_bytes`` guard a read
        of a file a task wrote: see the class docstring."""
        try:
            if is_local(reference) and (within is not None or max_bytes is not None):
                data = await asyncio.to_thread(
                    read_task_file,
                    local_path(reference),
                    within=local_path(within) if within is not None and is_local(within) else None,
                    max_bytes=max_bytes if max_bytes is not None else sys.maxsize,
                    reference=reference,
                )
                return data
            afs = await self._async_fs(reference)
            if afs is not None:
                fs, path = afs
                if max_bytes is None:
                    data = await fs._cat_file(path)
                else:
                    _check_object(reference, await fs._info(path), max_bytes)
                    data = await fs._cat_file(path, start=0, end=max_bytes + 1)
            else:
                data = await asyncio.to_thread(self._read_sync, reference, max_bytes)
        except FileNotFoundError as exc:
            raise DataNotFoundError(reference) from exc
        except DataStoreError:
            raise
        except Exception as exc:
            raise DataStoreError(reference, f"read failed: {type(exc).__name__}: {exc}") from exc
        if max_bytes is not None and len(data) > max_bytes:
            raise DataTooLargeError(reference, len(data), max_bytes, grew=True)
        return bytes(data)

    def _read_sync(self, reference: str, max_bytes: int | None = None) -> bytes:
        fs, path = self.filesystem(reference)
        if max_bytes is None:
            return fs.cat_file(path)  # type: ignore[no-any-return]
        _check_object(reference, fs.info(path), max_bytes)
        return fs.cat_file(path, start=0, end=max_bytes + 1)  # type: ignore[no-any-return]

    async def write_bytes(self, reference: str, data: bytes) -> None:
        try:
            afs = await self._async_fs(reference)
            if afs is not None:
                fs, path = afs
                parent = path.rsplit("/", 1)[0]
                if parent:
                    await fs._makedirs(parent, exist_ok=True)
                await fs._pipe_file(path, data)
            else:
                await asyncio.to_thread(self._write_sync, reference, data)
        except DataStoreError:
            raise
        except Exception as exc:
            raise DataStoreError(reference, f"write failed: {type(exc).__name__}: {exc}") from exc

    async def write_many(self, items: Sequence[tuple[str, bytes]]) -> list[DataStoreError | None]:
        """Write many small objects at once: the local ones in one thread (one hop off the event
        loop for all of them, not one each), the others concurrently. Returns, per item, ``None``
        or the error that write met (never raises for one of them)."""
        results: list[DataStoreError | None] = [None] * len(items)
        local = [i for i, (reference, _) in enumerate(items) if is_local(reference)]

        def write_local() -> None:
            for i in local:
                reference, data = items[i]
                try:
                    self._write_sync(reference, data)
                except Exception as exc:
                    results[i] = DataStoreError(reference, f"write failed: {type(exc).__name__}: {exc}")

        async def write_other(i: int) -> None:
            try:
                await self.write_bytes(*items[i])
            except DataStoreError as exc:
                results[i] = exc

        others = [write_other(i) for i in range(len(items)) if i not in set(local)]
        await asyncio.gather(asyncio.to_thread(write_local) if local else asyncio.sleep(0), *others)
        return results

    def _write_sync(self, reference: str, data: bytes) -> None:
        if is_local(reference):
            path = local_path(reference)
            # Private: an execution's folder holds its inputs and outputs (0700 for a new leaf).
            os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
            tmp = f"{path}.tmp-{uuid.uuid4().hex}"
            try:
                with open(tmp, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            return
        fs, path = self.filesystem(reference)
        parent = path.rsplit("/", 1)[0]
        if parent:
            fs.makedirs(parent, exist_ok=True)
        fs.pipe_file(path, data)

    async def exists(self, reference: str) -> bool:
        """Whether the reference exists. A store that cannot answer raises DataStoreError: fsspec's
        own ``exists`` would answer False (it swallows every error), and "no outputs" is not the
        same as "could not look"."""
        try:
            afs = await self._async_fs(reference)
            if afs is not None:
                fs, path = afs
                await fs._info(path)
            else:
                fs, path = self.filesystem(reference)
                await asyncio.to_thread(fs.info, path)
            return True
        except FileNotFoundError:
            return False
        except Exception as exc:
            raise DataStoreError(reference, f"exists check failed: {type(exc).__name__}: {exc}") from exc

    async def create_exclusive(self, reference: str, data: bytes) -> bool | None:
        """Create ``reference`` with ``data`` only if it does not exist yet, atomically: True when
        this call created it, False when it existed. ``None`` when the store offers no conditional
        create (then nothing is written): a local path does (a hard link of a written temporary
        file), S3 does (``PUT`` with ``If-None-Match: *``, through s3fs's ``mode="create"``); other
        object stores are not tried."""
        protocol = protocol_of(reference)
        try:
            if is_local(reference):
                return await asyncio.to_thread(_create_exclusive_local, local_path(reference), data)
            if protocol not in ("s3", "s3a"):
                return None
            afs = await self._async_fs(reference)
            assert afs is not None  # s3fs is async
            fs, path = afs
            try:
                await fs._pipe_file(path, data, mode="create")
            except FileExistsError:
                return False
            except OSError as exc:  # s3fs maps 412 PreconditionFailed to a plain OSError
                if "PreconditionFailed" in str(exc) or "412" in str(exc):
                    return False
                raise
            return True
        except Exception as exc:
            raise DataStoreError(reference, f"exclusive create failed: {type(exc).__name__}: {exc}") from exc

    async def remove(self, reference: str) -> bool:
        """Remove one file; True when there was one. On an object store "was there" is a look
        before the delete (S3 answers a delete of a missing key with success)."""
        try:
            afs = await self._async_fs(reference)
            if afs is None:
                fs, path = self.filesystem(reference)

                def remove_sync() -> bool:
                    try:
                        fs.rm_file(path)
                    except FileNotFoundError:
                        return False
                    return True

                return await asyncio.to_thread(remove_sync)
            fs, path = afs
            try:
                await fs._info(path)
            except FileNotFoundError:
                return False
            await fs._rm_file(path)
            return True
        except Exception as exc:
            raise DataStoreError(reference, f"remove failed: {type(exc).__name__}: {exc}") from exc

    async def find(self, folder: str, suffix: str = "") -> list[str]:
        """The references of every file under ``folder`` (recursively) whose name ends with
        ``suffix``, sorted; ``[]`` when the folder does not exist."""
        try:
            afs = await self._async_fs(folder)
            if afs is not None:
                fs, path = afs
                found = await fs._find(path)
            else:
                fs, path = self.filesystem(folder)
                found = await asyncio.to_thread(fs.find, path)
        except FileNotFoundError:
            return []
        except Exception as exc:
            raise DataStoreError(folder, f"listing failed: {type(exc).__name__}: {exc}") from exc
        # Each in the caller's own form (plain path, file:// or s3:// URL): the folder + the rest.
        base = path.rstrip("/") + "/"
        rest = sorted(
            str(p)[len(base) :] for p in found if str(p).startswith(base) and str(p).endswith(suffix)
        )
        return [join(folder, r) for r in rest]

    async def remove_tree(self, folder: str) -> None:
        """Remove ``folder`` and everything under it (nothing to do when it does not exist)."""
        try:
            afs = await self._async_fs(folder)
            if afs is not None:
                fs, path = afs
                await fs._rm(path, recursive=True)
            else:
                fs, path = self.filesystem(folder)
                await asyncio.to_thread(fs.rm, path, recursive=True)
        except FileNotFoundError:
            return
        except Exception as exc:
            raise DataStoreError(folder, f"remove failed: {type(exc).__name__}: {exc}") from exc

    async def read_protobuf(
        self,
        reference: str,
        message_type: type[M],
        *,
        within: str | None = None,
        max_bytes: int | None = None,
    ) -> M:
        """Read and parse one protobuf message; a truncated or foreign file is CorruptDataError.
        ``within`` and ``max_bytes`` as for :meth:`read_bytes`."""
        data = await self.read_bytes(reference, within=within, max_bytes=max_bytes)
        return parse_protobuf(reference, data, message_type)

    async def write_protobuf(self, reference: str, message: pb_message.Message) -> None:
        # Deterministic serialization: identical messages give identical bytes (map order).
        await self.write_bytes(reference, message.SerializeToString(deterministic=True))


def _create_exclusive_local(path: str, data: bytes) -> bool:
    """Create ``path`` with ``data`` only if it does not exist, atomically: written to a temporary
    sibling, then hard-linked to ``path`` (``link`` fails when the name is taken)."""
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    with open(tmp, "wb") as fh:
        fh.write(data)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)
