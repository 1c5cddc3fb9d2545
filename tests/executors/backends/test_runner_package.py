"""The runner's package archive and requirements (what an executor ships to a machine without
this package)."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

from executors.backends.runner_package import (
    RUNNER_DISTRIBUTIONS,
    package_archive,
    runner_requirements,
    runs_the_runner,
)
from executors.data.function_task import RUNNER_COMMAND


def test_the_archive_holds_the_package_sources_and_no_bytecode() -> None:
    names = zipfile.ZipFile(io.BytesIO(package_archive().data)).namelist()
    assert "executors/runtime/runner.py" in names and "executors/__init__.py" in names
    assert all(n.startswith("executors/") for n in names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert len(names) == package_archive().files


def test_the_archive_is_the_same_bytes_each_time_it_is_built() -> None:
    first = package_archive()
    package_archive.cache_clear()
    second = package_archive()
    assert second is not first
    assert (second.data, second.digest) == (first.data, first.digest)


def test_the_unpacked_archive_is_what_python_imports(tmp_path: Path) -> None:
    zipfile.ZipFile(io.BytesIO(package_archive().data)).extractall(tmp_path)
    probe = "import executors.runtime.runner as r; print(r.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", probe], env={"PYTHONPATH": str(tmp_path)}, cwd=tmp_path,
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout.strip() == str(tmp_path / "executors" / "runtime" / "runner.py")


def test_the_runner_distributions_cover_what_the_runner_imports() -> None:
    """Every third-party module that the ``executors`` modules loaded by the runner import (at the
    top or inside a function) comes from a distribution in RUNNER_DISTRIBUTIONS."""
    probe = "import json, sys, executors.runtime.runner; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = [m for m in json.loads(out.stdout) if m == "executors" or m.startswith("executors.")]
    imported: set[str] = set()
    for module in loaded:
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin is not None
        for node in ast.walk(ast.parse(Path(spec.origin).read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"executors", "__future__"}
    distributions = importlib.metadata.packages_distributions()
    assert {"flyteidl", "msgpack", "jsonschema", "fsspec", "google"} <= third_party
    for name in third_party:
        assert set(distributions.get(name, [])) & set(RUNNER_DISTRIBUTIONS), (name, distributions.get(name))


def test_requirements_carry_this_packages_version_ranges_and_the_stores_filesystem() -> None:
    plain = runner_requirements()
    assert plain[0] == "flyteidl<2,>=1.16" and "msgpack>=1.0" in plain
    assert not any(r.startswith("s3fs") for r in plain)
    assert runner_requirements(["file", "s3"]) == [*plain, "s3fs>=2024.12"]


def test_the_runner_command_is_recognized() -> None:
    assert runs_the_runner(RUNNER_COMMAND)
    assert runs_the_runner(["/opt/venv/bin/python3", "-u", "-m", "executors.runtime.runner", "a"])
    assert not runs_the_runner(["python", "-c", "executors.runtime.runner"])
    assert not runs_the_runner(["executors.runtime.runner"])
