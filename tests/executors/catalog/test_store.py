from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing
import os
import uuid
from pathlib import Path

import pytest
from flyteidl.core import identifier_pb2, literals_pb2

from executors.catalog import FsspecCatalog, cache_key
from executors.core.cache import Cache
from executors.core.errors import CorruptDataError
from executors.data.literals import to_literal_map
from executors.data.task_template import build_task_template

TEMPLATE = build_task_template(
    ["true"],
    name="team.train",
    inputs={"x": int},
    outputs={"y": int, "z": str},
    cache=Cache(version="3"),
)


def inputs(x: int) -> literals_pb2.LiteralMap:
    return to_literal_map({"x": x}, TEMPLATE.interface.inputs)


def outputs(y: int) -> literals_pb2.LiteralMap:
    return to_literal_map({"y": y, "z": "payload" * 1000}, TEMPLATE.interface.outputs, kind="output")


EXEC = identifier_pb2.TaskExecutionIdentifier(retry_attempt=2)


@pytest.fixture(params=["local", "memory", "s3"])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> FsspecCatalog:
    if request.param == "s3":  # a real S3 server (moto's, on loopback) through s3fs
        return FsspecCatalog(f"{request.getfixturevalue('s3_bucket')}/catalog")
    root = str(tmp_path / "catalog") if request.param == "local" else f"memory://catalog-{uuid.uuid4().hex}"
    return FsspecCatalog(root)


async def test_miss_then_hit_with_metadata(catalog: FsspecCatalog) -> None:
    assert await catalog.get(TEMPLATE, inputs(1)) is None
    await catalog.put(TEMPLATE, EXEC, inputs(1), outputs(10))
    assert await catalog.get(TEMPLATE, inputs(1)) == outputs(10)
    assert await catalog.get(TEMPLATE, inputs(2)) is None
    entry = await catalog.get_entry(cache_key(TEMPLATE, inputs(1)))
    assert entry is not None
    assert '"retry_attempt": 2' in entry.source_execution
    assert dt.datetime.now(dt.UTC) - entry.created_at < dt.timedelta(seconds=10)


async def test_max_age_turns_old_entries_into_misses(tmp_path: Path) -> None:
    catalog = FsspecCatalog(str(tmp_path), max_age=dt.timedelta(seconds=0.3))
    await catalog.put(TEMPLATE, EXEC, inputs(1), outputs(10))
    assert await catalog.get(TEMPLATE, inputs(1)) is not None
    await asyncio.sleep(0.5)
    assert await catalog.get(TEMPLATE, inputs(1)) is None


async def test_corrupt_entry_raises_naming_the_file(tmp_path: Path) -> None:
    catalog = FsspecCatalog(str(tmp_path))
    await catalog.put(TEMPLATE, EXEC, inputs(1), outputs(10))
    reference = catalog.entry_reference(cache_key(TEMPLATE, inputs(1)))
    Path(reference).write_bytes(Path(reference).read_bytes()[:-7])
    with pytest.raises(CorruptDataError, match="flyte_cached-"):
        await catalog.get(TEMPLATE, inputs(1))


async def test_list_and_evict(catalog: FsspecCatalog) -> None:
    for x in (1, 2, 3):
        await catalog.put(TEMPLATE, EXEC, inputs(x), outputs(x))
    entries = await catalog.list_entries()
    assert len(entries) == 3 and {e.key.dataset for e in entries} == {"flyte_task-team.train"}
    assert await catalog.list_entries("flyte_task-other") == []
    assert await catalog.evict(cache_key(TEMPLATE, inputs(1))) is True
    assert await catalog.evict(cache_key(TEMPLATE, inputs(1))) is False
    assert (
        await catalog.get(TEMPLATE, inputs(1)) is None and await catalog.get(TEMPLATE, inputs(2)) is not None
    )
    key = cache_key(TEMPLATE, inputs(2))
    assert await catalog.evict_dataset(key.project, key.domain, key.dataset) == 2
    assert await catalog.list_entries() == []


def _writer(root: str, worker: int, rounds: int) -> None:
    async def main() -> None:
        catalog = FsspecCatalog(root)
        for i in range(rounds):
            await catalog.put(TEMPLATE, EXEC, inputs(1), outputs(worker * 1000 + i))

    asyncio.run(main())


async def test_concurrent_writers_and_readers_never_see_half_an_entry(tmp_path: Path) -> None:
    root = str(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_writer, args=(root, w, 40)) for w in range(4)]
    for p in writers:
        p.start()
    catalog = FsspecCatalog(root)
    seen = 0
    while any(p.is_alive() for p in writers):
        got = await catalog.get(TEMPLATE, inputs(1))  # raises CorruptDataError on a torn read
        if got is not None:
            assert got.literals["z"].scalar.primitive.string_value == "payload" * 1000
            seen += 1
    for p in writers:
        p.join()
        assert p.exitcode == 0
    final = await catalog.get(TEMPLATE, inputs(1))
    assert final is not None and final.literals["y"].scalar.primitive.integer % 1000 == 39
    folder = os.path.dirname(catalog.entry_reference(cache_key(TEMPLATE, inputs(1))))
    assert len(os.listdir(folder)) == 1  # one entry, no temporary files left
    assert seen > 0


async def test_reservations_one_owner_at_a_time_and_expiry(catalog: FsspecCatalog) -> None:
    key = cache_key(TEMPLATE, inputs(1))
    hb = dt.timedelta(seconds=0.1)
    ok_a, _ = await catalog.acquire(key, "a", heartbeat=hb)
    ok_b, holder = await catalog.acquire(key, "b", heartbeat=hb)
    assert ok_a and not ok_b and holder.owner_id == "a"
    assert (await catalog.acquire(key, "a", heartbeat=hb))[0]  # renewal
    await asyncio.sleep(0.4)  # 3 heartbeats without renewal: expired
    ok_b, holder = await catalog.acquire(key, "b", heartbeat=hb)
    assert ok_b and holder.owner_id == "b"
    await catalog.release(key, "a")  # not the holder: no effect
    assert (await catalog.read_reservation(key)).owner_id == "b"  # type: ignore[union-attr]
    await catalog.release(key, "b")
    assert await catalog.read_reservation(key) is None


@pytest.mark.parametrize("kind", ["local", "s3"])
async def test_racing_first_reservations_have_exactly_one_winner(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The stores with a conditional create (a local link, S3's If-None-Match: *)."""
    root = str(tmp_path) if kind == "local" else f"{request.getfixturevalue('s3_bucket')}/catalog"
    catalog = FsspecCatalog(root)
    key = cache_key(TEMPLATE, inputs(5))
    results = await asyncio.gather(*(catalog.acquire(key, f"owner-{i}") for i in range(10)))
    assert sum(1 for ok, _ in results if ok) == 1
