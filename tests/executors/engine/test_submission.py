"""read_template: executions submitted with the same template bytes share one parsed message."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from executors import OwnerReference, TaskContext, TaskExecutionID
from executors.core.errors import CorruptDataError
from executors.data.storage import DataStore
from executors.data.task_template import build_task_template
from executors.engine.submission import read_template


def _ctx(folder: Path, name: str) -> TaskContext:
    from flyteidl.core import identifier_pb2

    ident = identifier_pb2.TaskExecutionIdentifier()
    ident.node_execution_id.node_id = name
    return TaskContext(
        task_execution_id=TaskExecutionID.create(ident),
        data_dir=str(folder),
        owner_id=name,
        owner_reference=OwnerReference(kind="Test", name=name),
    )


def _write(folder: Path, data: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "task.pb").write_bytes(data)


def test_same_bytes_share_one_message_and_other_bytes_do_not(tmp_path: Path) -> None:
    one = build_task_template(["true"], name="t.one").SerializeToString(deterministic=True)
    two = build_task_template(["false"], name="t.two").SerializeToString(deterministic=True)
    for name, data in (("a", one), ("b", one), ("c", two)):
        _write(tmp_path / name, data)
    store = DataStore()

    async def read(name: str) -> object:
        return await read_template(store, _ctx(tmp_path / name, name))

    a, b, c = (asyncio.run(read(name)) for name in ("a", "b", "c"))
    assert a is b
    assert c is not a
    assert c.SerializeToString(deterministic=True) == two  # type: ignore[attr-defined]


def test_a_file_that_is_no_template_is_corrupt(tmp_path: Path) -> None:
    _write(tmp_path / "x", b"\xff\xff\xff not a protobuf")
    with pytest.raises(CorruptDataError):
        asyncio.run(read_template(DataStore(), _ctx(tmp_path / "x", "x")))
