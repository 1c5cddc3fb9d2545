"""The package boundaries, checked on the source: ``executors/`` is engine-agnostic and never imports
Airflow (``airflow_provider/`` is the adapter), and ``executors/runtime/`` (what runs inside the
task, often in another interpreter) imports nothing of the engine, the backends or the catalog.

Two views of the first rule: every import statement in the source (at any depth: function-local,
under ``TYPE_CHECKING``, in a ``try``), and what importing every module really loads, in a fresh
interpreter (an import of a third-party module that itself pulls Airflow in shows only there).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXECUTORS = REPO / "executors"
RUNTIME = EXECUTORS / "runtime"
NOT_IN_RUNTIME = ("executors.engine", "executors.backends", "executors.catalog")


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path = REPO) -> Iterator[tuple[int, str]]:
    """``(line, module)`` of every import in ``path``, relative ones resolved; for ``from m import n``
    both ``m`` and ``m.n`` (``n`` may be a submodule: ``from executors import engine``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:
                if alias.name != "*":
                    yield node.lineno, f"{module}.{alias.name}"


def _is_under(module: str, top: str) -> bool:
    return module == top or module.startswith(top + ".")


def violations(root: Path, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(REPO)}:{line}: imports {module}"
        for path in sorted(root.rglob("*.py"))
        for line, module in imported_modules(path)
        if any(_is_under(module, top) for top in forbidden)
    ]


def test_executors_source_imports_no_airflow() -> None:
    assert list(EXECUTORS.rglob("*.py")), "no modules found under executors/"
    assert violations(EXECUTORS, ("airflow",)) == []


def test_importing_every_executors_module_loads_no_airflow() -> None:
    script = """
import json, pkgutil, importlib, sys
import executors
failed = []
names = ["executors"]
for info in pkgutil.walk_packages(executors.__path__, "executors.", onerror=failed.append):
    names.append(info.name)
    importlib.import_module(info.name)
loaded = sorted(m for m in sys.modules if m == "airflow" or m.startswith("airflow."))
print(json.dumps({"modules": names, "failed": failed, "airflow": loaded}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["failed"] == []
    assert "executors.runtime.runner" in result["modules"]  # the walk went into the subpackages
    assert result["airflow"] == [], f"importing executors/ loaded Airflow: {result['airflow'][:10]}"


def test_runtime_imports_nothing_of_engine_backends_or_catalog() -> None:
    assert list(RUNTIME.rglob("*.py")), "no modules found under executors/runtime/"
    assert violations(RUNTIME, NOT_IN_RUNTIME) == []


def test_running_the_task_side_runtime_loads_no_engine() -> None:
    """What a task's process imports (``python -m executors.runtime.runner``): not the engine, the
    backends or the catalog, even through the package's curated surface."""
    script = (
        "import json, sys, executors.runtime.runner\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('executors.'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert "executors.runtime.task_io" in loaded
    assert [m for m in loaded if any(_is_under(m, top) for top in NOT_IN_RUNTIME)] == []


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("import airflow\n", "airflow"),
        ("import os, airflow.sdk as sdk\n", "airflow.sdk"),
        ("from airflow.sdk import DAG\n", "airflow.sdk"),
        ("def f():\n    if True:\n        from airflow import settings\n", "airflow"),
        (
            "class C:\n    def m(self):\n        try:\n            import airflow\n        except ImportError:\n            pass\n",
            "airflow",
        ),
        ("from ..engine import driver\n", "executors.engine"),
        ("from .. import catalog\n", "executors.catalog"),
        ("from executors import backends\n", "executors.backends"),
    ],
)
def test_the_scan_sees_imports_at_any_depth(tmp_path: Path, source: str, found: str) -> None:
    """The scan itself, on a module planted under a copy of the layout."""
    planted = tmp_path / "executors" / "runtime" / "planted.py"
    planted.parent.mkdir(parents=True)
    planted.write_text(source)
    forbidden = ("airflow", *NOT_IN_RUNTIME)
    modules = [module for _, module in imported_modules(planted, tmp_path)]
    assert found in modules
    assert any(_is_under(module, top) for module in modules for top in forbidden)


def test_the_scan_tells_airflow_from_airflow_provider() -> None:
    assert not _is_under("airflow_provider.operators", "airflow")
    assert _is_under("airflow.sdk", "airflow")
