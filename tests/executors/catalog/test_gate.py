"""CachingExecutor in front of the real LocalExecutor."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
from flyteidl.core import tasks_pb2

from executors import (
    DataStore,
    ExecutionDriver,
    ExecutorInitializationParameters,
    ExecutorProperties,
    PollPolicy,
    TaskContext,
    TaskPhase,
)
from executors.backends.local import LocalExecutor
from executors.catalog import FsspecCatalog
from executors.catalog.gate import CachingExecutor
from executors.core.cache import Cache
from executors.data.literals import from_literal_map, to_literal_map
from executors.data.task_template import build_task_template

SCRIPT = """
import sys, time
from executors import task_io
open(sys.argv[4], "a").write("started\\n")
time.sleep(float(sys.argv[5]))
x = task_io.read_inputs(sys.argv[1], sys.argv[3])["x"]
task_io.write_outputs(sys.argv[2], {"y": x * 10}, sys.argv[3])
"""


CACHED = Cache(version="1")


def make_template(
    marker: Path, *, sleep: float = 0.0, cache: Cache | None = CACHED
) -> tasks_pb2.TaskTemplate:
    command = [
        "python",
        "-c",
        SCRIPT,
        "{{.input}}",
        "{{.outputPrefix}}",
        "{{.taskTemplatePath}}",
        str(marker),
        str(sleep),
    ]
    return build_task_template(
        command, name="tests.cached", inputs={"x": int}, outputs={"y": int}, cache=cache
    )


@pytest.fixture
async def gate(tmp_path: Path, store: DataStore) -> CachingExecutor:
    inner = LocalExecutor(state_root=str(tmp_path / "state"))
    await inner.initialize(ExecutorInitializationParameters(data_store=store))
    return CachingExecutor(inner, FsspecCatalog(str(tmp_path / "catalog")), store=store)


async def run(
    gate: CachingExecutor, store: DataStore, ctx: TaskContext, template: tasks_pb2.TaskTemplate, x: int
):  # type: ignore[no-untyped-def]
    inputs = to_literal_map({"x": x}, template.interface.inputs)
    await store.write_protobuf(ctx.task_template_file, template)
    await store.write_protobuf(ctx.inputs_file, inputs)

    async def load():  # type: ignore[no-untyped-def]
        return inputs

    driver = ExecutionDriver(
        gate, template, ctx, inputs_loader=load, policy=PollPolicy(interval=0.05, jitter=0)
    )
    status = await driver.run()
    return status, driver.ctx


async def outputs_of(gate: CachingExecutor, ctx: TaskContext, template: tasks_pb2.TaskTemplate) -> dict:  # type: ignore[type-arg]
    from flyteidl.core import literals_pb2

    literals = await gate.resolve_outputs(ctx, "y")
    return from_literal_map(literals_pb2.LiteralMap(literals=literals), template.interface.outputs)


async def test_miss_populates_then_hit_starts_nothing(
    gate: CachingExecutor, store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path
) -> None:
    marker = tmp_path / "starts"
    template = make_template(marker)
    status, _ = await run(gate, store, make_ctx(run="r1"), template, 4)
    assert status.phase is TaskPhase.SUCCEEDED and status.state["catalog"]["status"] == "CACHE_POPULATED"  # type: ignore[index]
    status, ctx2 = await run(gate, store, make_ctx(run="r2"), template, 4)
    assert status.phase is TaskPhase.SUCCEEDED and status.state["catalog"]["status"] == "CACHE_HIT"  # type: ignore[index]
    assert await outputs_of(gate, ctx2, template) == {"y": 40}
    assert Path(ctx2.outputs_file).exists()  # the hit wrote this execution's outputs.pb
    assert marker.read_text() == "started\n"
    status, _ = await run(gate, store, make_ctx(run="r3"), template, 5)  # other inputs: a miss
    assert status.state["catalog"]["status"] == "CACHE_POPULATED"  # type: ignore[index]
    assert marker.read_text() == "started\nstarted\n"


async def test_not_discoverable_is_disabled(
    gate: CachingExecutor, store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path
) -> None:
    template = make_template(tmp_path / "m", cache=None)
    for run_id in ("a", "b"):
        status, _ = await run(gate, store, make_ctx(run=run_id), template, 1)
        assert status.state["catalog"]["status"] == "CACHE_DISABLED"  # type: ignore[index]
    assert (tmp_path / "m").read_text().count("started") == 2


async def test_executor_that_disables_node_level_caching_is_respected(
    store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path
) -> None:
    class SelfCaching(LocalExecutor):
        def get_properties(self) -> ExecutorProperties:
            return ExecutorProperties(requires_finalizer=True, disable_node_level_caching=True)

    inner = SelfCaching(state_root=str(tmp_path / "s"))
    await inner.initialize(ExecutorInitializationParameters(data_store=store))
    gate = CachingExecutor(inner, FsspecCatalog(str(tmp_path / "c")), store=store)
    status, _ = await run(gate, store, make_ctx(), make_template(tmp_path / "m"), 1)
    assert status.state["catalog"]["status"] == "CACHE_DISABLED"  # type: ignore[index]


async def test_catalog_down_is_a_lookup_failure_and_the_task_still_runs(
    store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    inner = LocalExecutor(state_root=str(tmp_path / "s"))
    await inner.initialize(ExecutorInitializationParameters(data_store=store))
    gate = CachingExecutor(inner, FsspecCatalog(str(blocker)), store=store)
    status, ctx = await run(gate, store, make_ctx(), make_template(tmp_path / "m"), 2)
    assert status.phase is TaskPhase.SUCCEEDED
    assert status.state["catalog"]["status"] == "CACHE_PUT_FAILURE"  # type: ignore[index]
    assert await outputs_of(gate, ctx, make_template(tmp_path / "m")) == {"y": 20}


async def test_corrupt_entry_is_a_miss_with_a_warning(
    gate: CachingExecutor,
    store: DataStore,
    make_ctx: Callable[..., TaskContext],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    template = make_template(tmp_path / "m")
    await run(gate, store, make_ctx(run="r1"), template, 3)
    entries = await gate.catalog.list_entries()
    Path(entries[0].reference).write_bytes(b"\xff\xff garbage")
    status, _ = await run(gate, store, make_ctx(run="r2"), template, 3)
    assert status.phase is TaskPhase.SUCCEEDED
    assert status.state["catalog"]["status"] == "CACHE_POPULATED"  # type: ignore[index]
    assert "catalog lookup failed" in caplog.text
    assert (tmp_path / "m").read_text().count("started") == 2


async def test_serialized_identical_executions_compute_once(
    gate: CachingExecutor, store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path
) -> None:
    marker = tmp_path / "starts"
    template = make_template(marker, sleep=1.0, cache=Cache(version="1", serialize=True))
    results = await asyncio.gather(*(run(gate, store, make_ctx(run=f"r{i}"), template, 7) for i in range(5)))
    statuses = sorted(s.state["catalog"]["status"] for s, _ in results)  # type: ignore[index]
    assert statuses == ["CACHE_HIT"] * 4 + ["CACHE_POPULATED"]
    assert marker.read_text() == "started\n"
    for _, ctx in results:
        assert await outputs_of(gate, ctx, template) == {"y": 70}
    assert await gate.catalog.read_reservation((await gate.catalog.list_entries())[0].key) is None


async def test_kill_releases_the_reservation(
    gate: CachingExecutor, store: DataStore, make_ctx: Callable[..., TaskContext], tmp_path: Path
) -> None:
    template = make_template(tmp_path / "m", sleep=30, cache=Cache(version="1", serialize=True))
    ctx = make_ctx()
    inputs = to_literal_map({"x": 1}, template.interface.inputs)
    await store.write_protobuf(ctx.inputs_file, inputs)
    status = await gate.start_task(ctx, template, inputs)
    assert status.phase is TaskPhase.RUNNING and status.state["catalog"]["reserved"]  # type: ignore[index]
    ctx = dataclasses.replace(ctx, custom_state=status.state)  # type: ignore[arg-type]
    from executors.catalog.key import cache_key

    key = cache_key(template, inputs)
    assert (await gate.catalog.read_reservation(key)).owner_id == ctx.generated_name  # type: ignore[union-attr]
    await gate.kill_task(ctx, "test")
    assert await gate.catalog.read_reservation(key) is None
