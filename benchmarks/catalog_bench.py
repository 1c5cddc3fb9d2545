"""Benchmark 4: the result catalog (``FsspecCatalog``) on a local folder.

* ``get`` latency, hit and miss, in a catalog of 1,000 and of 100,000 entries (all in one dataset
  folder, the worst case for a directory): it must stay flat. Each ``get`` is the whole client call
  (cache key from template and inputs, then one read and parse); ``get_entry`` with a precomputed
  key is reported beside it. Baseline: a bare threaded read of the same file (miss: a threaded
  ``os.path.exists``).
* ``put`` throughput, one at a time and 32 at once, into the 100,000-entry catalog. Baseline: a bare
  atomic write (temporary file + rename, in a thread) of the same bytes.
* ``cache_key`` for 1 MB of inputs (serialized LiteralMap size), three shapes. Baseline: SHA-256
  of the deterministic protobuf serialization of the same inputs.

How the 100,000 entries are made fast: not through ``put`` (a thread hop and an fsspec round per
entry) but by writing the entry files directly, in one thread: the path is the catalog's own
``entry_reference(key)``, the bytes the same ``datacatalog.Artifact`` that ``put_entry`` builds, and
the key the one ``cache_key`` computes (dataset and version once, the tag from ``inputs_hash`` per
entry). A sample is read back through ``catalog.get`` before anything is timed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import random
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.common import Report, cli, fmt, log, summary_ms
from executors import Cache

SIZES, QUICK_SIZES = (1_000, 100_000), (1_000, 20_000)
SAMPLES, QUICK_SAMPLES = 1_000, 200
PUTS, QUICK_PUTS = 2_000, 300
PUT_CONCURRENCY = 32
FLAT_TARGET = 1.5


def _template() -> Any:
    from executors.data.task_template import build_task_template

    return build_task_template(
        ["true"], name="bench.catalog", inputs={"x": int}, outputs={"y": int}, cache=Cache(version="1")
    )


def _inputs(i: int) -> Any:
    from flyteidl.core import literals_pb2

    lm = literals_pb2.LiteralMap()
    lm.literals["x"].scalar.primitive.integer = i
    return lm


def _outputs(i: int) -> Any:
    from flyteidl.core import literals_pb2

    lm = literals_pb2.LiteralMap()
    lm.literals["y"].scalar.primitive.integer = 2 * i
    return lm


def _artifact_bytes(key: Any, outputs: Any) -> bytes:
    """The same Artifact as ``FsspecCatalog.put_entry`` writes."""
    from flyteidl.datacatalog import datacatalog_pb2

    artifact = datacatalog_pb2.Artifact(id=uuid.uuid4().hex, dataset=key.dataset_id())
    for name, literal in sorted(outputs.literals.items()):
        artifact.data.add(name=name, value=literal)
    created = dt.datetime.now(dt.UTC)
    artifact.created_at.FromDatetime(created.replace(tzinfo=None))
    artifact.metadata.key_map.update(
        {"tag": key.tag, "created_at": created.isoformat(), "source_execution": "{}", "task_version": ""}
    )
    artifact.tags.add(name=key.tag, artifact_id=artifact.id, dataset=key.dataset_id())
    return bytes(artifact.SerializeToString(deterministic=True))


def _fill(catalog: Any, template: Any, count: int) -> float:
    """Write ``count`` entries (inputs x = 0..count-1) straight to their files; returns seconds."""
    from executors.catalog import CacheKey, cache_key, inputs_hash
    from executors.data.storage import local_path

    base = cache_key(template, _inputs(0))
    ignore = list(template.metadata.cache_ignore_input_vars)
    started = time.perf_counter()
    made: set[str] = set()
    for i in range(count):
        key = CacheKey(
            base.project,
            base.domain,
            base.dataset,
            base.version,
            f"flyte_cached-{inputs_hash(_inputs(i), ignore)}",
        )
        path = local_path(catalog.entry_reference(key))
        folder = os.path.dirname(path)
        if folder not in made:
            os.makedirs(folder, exist_ok=True)
            made.add(folder)
        with open(path, "wb") as fh:
            fh.write(_artifact_bytes(key, _outputs(i)))
    return time.perf_counter() - started


async def _timed(coro_fn: Any, items: list[Any]) -> list[float]:
    out = []
    for item in items:
        start = time.perf_counter()
        await coro_fn(item)
        out.append(time.perf_counter() - start)
    return out


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def _atomic_write(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


async def _measure_sizes(workdir: Path, sizes: tuple[int, ...], samples: int) -> dict[int, dict[str, Any]]:
    """Fill one catalog per size, then time hits and misses in blocks that alternate between the
    sizes (and between ours and the baselines), so a change in machine load hits all alike."""
    from executors.catalog import FsspecCatalog, cache_key
    from executors.data.storage import local_path

    template = _template()
    setups: dict[int, dict[str, Any]] = {}
    for n in sizes:
        catalog = FsspecCatalog(str(workdir / f"catalog-{n}"))
        log(f"catalog: writing {n:,} entries")
        fill_s = _fill(catalog, template, n)
        rng = random.Random(n)
        sample = [rng.randrange(n) for _ in range(samples)]
        for i in sample[:20]:  # the fast path made real entries: get() finds them
            got = await catalog.get(template, _inputs(i))
            if got is None or got.literals["y"].scalar.primitive.integer != 2 * i:
                raise RuntimeError(f"entry {i} of the pre-filled catalog is not found by get()")
        misses = [n + 1 + rng.randrange(10 * n) for _ in range(samples)]
        if await catalog.get(template, _inputs(misses[0])) is not None:
            raise RuntimeError("a miss was a hit")
        keys = {i: cache_key(template, _inputs(i)) for i in sample + misses}
        setups[n] = {
            "catalog": catalog,
            "fill_s": fill_s,
            "sample": sample,
            "misses": misses,
            "keys": keys,
            "paths": {i: local_path(catalog.entry_reference(keys[i])) for i in sample + misses},
            "inputs": {i: _inputs(i) for i in sample + misses},
            "times": {k: [] for k in ("hit", "hit_entry", "hit_raw", "miss", "miss_raw")},
        }
        log(f"  filled in {fill_s:.1f}s")

    block = max(1, samples // 20)
    for b in range(0, samples, block):
        for n in sizes:
            st = setups[n]
            catalog, inputs, keys, paths, times = (
                st["catalog"],
                st["inputs"],
                st["keys"],
                st["paths"],
                st["times"],
            )
            hits, missing = st["sample"][b : b + block], st["misses"][b : b + block]
            times["hit"] += await _timed(lambda i: catalog.get(template, inputs[i]), hits)  # noqa: B023
            times["hit_entry"] += await _timed(lambda i: catalog.get_entry(keys[i]), hits)  # noqa: B023
            times["hit_raw"] += await _timed(lambda i: asyncio.to_thread(_read, paths[i]), hits)  # noqa: B023
            times["miss"] += await _timed(lambda i: catalog.get(template, inputs[i]), missing)  # noqa: B023
            times["miss_raw"] += await _timed(
                lambda i: asyncio.to_thread(os.path.exists, paths[i]),  # noqa: B023
                missing,
            )
    return {
        n: {"n": n, "fill_s": st["fill_s"], **{k: summary_ms(v) for k, v in st["times"].items()}}
        for n, st in setups.items()
    }


async def _measure_puts(root: Path, start: int, count: int) -> dict[str, float]:
    from flyteidl.core import identifier_pb2

    from executors.catalog import FsspecCatalog, cache_key

    template = _template()
    catalog = FsspecCatalog(str(root))
    ident = identifier_pb2.TaskExecutionIdentifier()
    ident.node_execution_id.node_id = "bench"
    items = [(start + i, _inputs(start + i), _outputs(start + i)) for i in range(2 * count)]

    t0 = time.perf_counter()
    for _, inputs, outputs in items[:count]:
        await catalog.put(template, ident, inputs, outputs)
    sequential = count / (time.perf_counter() - t0)

    semaphore = asyncio.Semaphore(PUT_CONCURRENCY)

    async def put(inputs: Any, outputs: Any) -> None:
        async with semaphore:
            await catalog.put(template, ident, inputs, outputs)

    t0 = time.perf_counter()
    await asyncio.gather(*(put(i, o) for _, i, o in items[count:]))
    concurrent = count / (time.perf_counter() - t0)

    from executors.data.storage import local_path

    raw_items = []
    for _, inputs, outputs in items[:count]:
        key = cache_key(template, inputs)
        raw_items.append((local_path(catalog.entry_reference(key)) + ".raw", _artifact_bytes(key, outputs)))
    t0 = time.perf_counter()
    for path, data in raw_items:
        await asyncio.to_thread(_atomic_write, path, data)
    raw = count / (time.perf_counter() - t0)
    return {"sequential": sequential, "concurrent": concurrent, "raw": raw}


def _key_cost(quick: bool) -> list[dict[str, Any]]:
    from executors.catalog import cache_key
    from executors.data.literals import interface_from_python, to_literal_map
    from executors.data.task_template import build_task_template

    mb = 1_000_000
    shapes: list[tuple[str, Any, Any]] = [
        ("one str of 1 MB", str, "x" * mb),
        ("list[int]", list[int], None),
        ("dict[str, float]", dict[str, float], None),
    ]
    out = []
    for label, tp, value in shapes:
        template = build_task_template(
            ["true"], name="bench.key", inputs={"v": tp}, outputs={}, cache=Cache(version="1")
        )
        variables = interface_from_python({"v": tp}, {}).inputs
        if value is None:  # grow the value until its LiteralMap is about 1 MB
            count = 10_000
            for _ in range(3):
                value = (
                    list(range(10**9, 10**9 + count))
                    if tp == list[int]
                    else {f"key{i:07d}": i * 0.37 for i in range(count)}
                )
                size = to_literal_map({"v": value}, variables).ByteSize()
                count = round(count * mb / size)
        lm = to_literal_map({"v": value}, variables)
        size = lm.ByteSize()
        repeats = 3 if quick else 7
        ours = []
        raw = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            cache_key(template, lm)
            ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            hashlib.sha256(lm.SerializeToString(deterministic=True)).hexdigest()
            raw.append(time.perf_counter() - t0)
        items = 1 if isinstance(value, str) else len(value)
        out.append(
            {
                "label": f"{label} ({items:,} items, {size / mb:.2f} MB)",
                "ours_ms": statistics.median(ours) * 1000,
                "raw_ms": statistics.median(raw) * 1000,
                "mb": size / mb,
            }
        )
    return out


def run(quick: bool) -> Report:
    report = Report("4. catalog")
    sizes = QUICK_SIZES if quick else SIZES
    samples = QUICK_SAMPLES if quick else SAMPLES
    puts = QUICK_PUTS if quick else PUTS
    workdir = Path(tempfile.mkdtemp(prefix="bench-catalog-"))
    try:
        results = asyncio.run(_measure_sizes(workdir, sizes, samples))
        for n, r in results.items():
            log(f"  n={n:,}: get hit p50 {r['hit']['p50']:.3f} ms, miss {r['miss']['p50']:.3f} ms")
        big = max(sizes)
        log(f"catalog: {puts} puts sequential, {puts} with {PUT_CONCURRENCY} at once")
        put = asyncio.run(_measure_puts(workdir / f"catalog-{big}", big + 10**7, puts))
        log("catalog: cache_key for 1 MB of inputs")
        keys = _key_cost(quick)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    small, big = min(sizes), max(sizes)
    for what in ("hit", "miss"):
        for n in sizes:
            r = results[n]
            base = r["hit_raw"] if what == "hit" else r["miss_raw"]
            report.add(
                f"get, {what}, {n:,} entries, p50",
                r[what]["p50"],
                "ms",
                baseline=base["p50"],
                baseline_label="threaded raw read" if what == "hit" else "threaded exists()",
                notes=f"p95 {fmt(r[what]['p95'])} ms, p99 {fmt(r[what]['p99'])} ms",
            )
        report.add(
            f"get, {what}: p50 at {big:,} entries vs {small:,} (flat)",
            results[big][what]["p50"],
            "ms",
            baseline=results[small][what]["p50"],
            baseline_label=f"{small:,} entries",
            target=f"ratio <= {FLAT_TARGET:g}",
            met=results[big][what]["p50"] <= FLAT_TARGET * results[small][what]["p50"],
        )
    report.add(
        f"put, one at a time, into {big:,} entries",
        put["sequential"],
        "puts/s",
        baseline=put["raw"],
        baseline_label="threaded raw atomic write",
    )
    report.add(
        f"put, {PUT_CONCURRENCY} at once",
        put["concurrent"],
        "puts/s",
        baseline=put["raw"],
        baseline_label="threaded raw atomic write (one at a time)",
    )
    for k in keys:
        report.add(
            f"cache_key, {k['label']}",
            k["ours_ms"],
            "ms",
            baseline=k["raw_ms"],
            baseline_label="SHA-256 of the serialized LiteralMap",
            notes=f"{k['mb'] / (k['ours_ms'] / 1000):.1f} MB/s",
        )
    rows = [
        "| entries | write (fast path) | get hit p50/p95 ms | get_entry hit p50 ms | raw read p50 ms | "
        "get miss p50/p95 ms | raw exists p50 ms |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in sizes:
        r = results[n]
        rows.append(
            f"| {n:,} | {r['fill_s']:.1f} s ({n / r['fill_s']:,.0f}/s) | "
            f"{fmt(r['hit']['p50'])} / {fmt(r['hit']['p95'])} | "
            f"{fmt(r['hit_entry']['p50'])} | {fmt(r['hit_raw']['p50'])} | {fmt(r['miss']['p50'])} / "
            f"{fmt(r['miss']['p95'])} | {fmt(r['miss_raw']['p50'])} |"
        )
    report.details = (
        "\n".join(rows)
        + f"\n\n{samples:,} random hits and {samples:,} misses per size, one at a time on one event loop, in "
        "blocks alternating between the sizes and between ours and the baselines, "
        "files warm in the page cache. All entries of one task sit in one dataset/version folder. "
        "Entries were written directly (same paths from `FsspecCatalog.entry_reference`, same Artifact as "
        "`put_entry`, keys as `cache_key`), one thread, then checked through `get`. "
        f"Puts: {puts:,} one at a time, then {puts:,} with {PUT_CONCURRENCY} in flight (asyncio.gather + "
        f"semaphore).\n"
    )
    return report


if __name__ == "__main__":
    cli(run)
