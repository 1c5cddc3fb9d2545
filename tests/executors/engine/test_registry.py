"""The registry is fed by real entry points: each test installs a small distribution's metadata
(a ``*.dist-info`` folder) on ``sys.path``, exactly what ``pip install`` would leave behind."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from executors import known_executor_ids
from executors.backends.local import LocalExecutor
from executors.core.errors import DuplicateExecutorError, UnknownExecutorError
from executors.engine.registry import ExecutorRegistry

MODULE = """
from executors.backends.local import LocalExecutor

class FakeCloudExecutor(LocalExecutor):
    id = "fakecloud"

class OtherCloudExecutor(LocalExecutor):
    id = "fakecloud"

class MisnamedExecutor(LocalExecutor):
    id = "something-else"
"""


@pytest.fixture
def install_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, dict[str, str]], None]:
    (tmp_path / "thirdparty_executors.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))

    def install(dist: str, entry_points: dict[str, str]) -> None:
        info = tmp_path / f"{dist}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
        (info / "entry_points.txt").write_text(
            textwrap.dedent(f"[airflow_provider_executors.executors]\n{lines}\n")
        )

    yield install
    sys.modules.pop("thirdparty_executors", None)


def test_local_is_registered_by_this_package() -> None:
    assert "local" in known_executor_ids()


def test_third_party_entry_point_adds_an_executor(install_dist) -> None:  # type: ignore[no-untyped-def]
    install_dist("fake-cloud", {"fakecloud": "thirdparty_executors:FakeCloudExecutor"})
    registry = ExecutorRegistry()
    assert {"fakecloud", "local"} <= set(registry.known_ids())
    executor = registry.create("fakecloud", max_concurrent="3")
    assert executor.get_id() == "fakecloud"
    assert executor.max_concurrent == 3  # type: ignore[attr-defined]


def test_duplicate_id_from_two_distributions_is_an_error(install_dist) -> None:  # type: ignore[no-untyped-def]
    install_dist("fake-cloud", {"fakecloud": "thirdparty_executors:FakeCloudExecutor"})
    install_dist("other-cloud", {"fakecloud": "thirdparty_executors:OtherCloudExecutor"})
    with pytest.raises(DuplicateExecutorError, match="'fakecloud' is claimed twice") as err:
        ExecutorRegistry().known_ids()
    assert "fake-cloud" in str(err.value) and "other-cloud" in str(err.value)


def test_entry_point_name_must_match_class_id(install_dist) -> None:  # type: ignore[no-untyped-def]
    install_dist("misnamed", {"misnamed": "thirdparty_executors:MisnamedExecutor"})
    with pytest.raises(DuplicateExecutorError, match="whose id is 'something-else', not 'misnamed'"):
        ExecutorRegistry().get("local")


def test_unknown_id_lists_the_known_ones() -> None:
    with pytest.raises(
        UnknownExecutorError, match=r"unknown executor id 'k8s'; known executors: 'docker', 'local', 'ray'"
    ):
        ExecutorRegistry().get("k8s")


def test_programmatic_register_rejects_a_second_class_for_one_id() -> None:
    registry = ExecutorRegistry(entry_point_group=None)
    registry.register(LocalExecutor)
    registry.register(LocalExecutor)  # the same class again is fine

    class Imposter(LocalExecutor):
        id = "local"

    with pytest.raises(DuplicateExecutorError, match="'local' is claimed twice"):
        registry.register(Imposter)


def test_a_broken_entry_point_does_not_hide_the_others(install_dist) -> None:  # type: ignore[no-untyped-def]
    install_dist("broken-cloud", {"brokencloud": "no_such_module_xyz:Executor"})
    registry = ExecutorRegistry()
    assert registry.get("local") is LocalExecutor
    with pytest.raises(UnknownExecutorError, match=r"'brokencloud' is installed but .* ModuleNotFoundError"):
        registry.get("brokencloud")
