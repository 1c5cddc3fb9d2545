"""Fixtures of the Flyte conformance suite (see tests/conformance/test_conformance.py).

Once per session: build ``.venv-flytekit`` (``scripts/setup-flytekit.sh``, idempotent; a failure fails
the suite, it never skips), let flytekit serialize the corpus and run it locally for the expected
outcomes, run the conformance DAG(s) with ``dag.test()``, then let flytekit read what our executions
wrote. Each test only looks at the results. A table of the cases is printed at the end.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.airflow_provider import dagtest
from tests.conformance.airflow_side import CONFORMANCE_DAGS, FLYTEKIT_VENV, REPO
from tests.conformance.cases import (
    CASES,
    CHAIN_ARROW,
    CHAIN_DESCRIBE,
    CHAIN_ENRICH,
    CHAIN_INDEX,
    CHAIN_MAKE_INPUTS,
    CHAIN_RESHAPE,
    CHAIN_SHOUT,
    DOCKER_ADDRESS_ENV,
    DOCKER_CASES,
    OUTDIR_ENV,
    RAY_ADDRESS_ENV,
    RAY_CASES,
    RECEIVE_NONE,
    RECEIVE_VALUES,
    SELECTED_ENV,
)

# The private Ray head of tests/executors/backends/ray (its helpers imported, not copied).
from tests.executors.backends.ray.conftest import RayHead, start_ray_head, stop_ray_head

FLYTEKIT_SIDE = Path(__file__).resolve().parent / "flytekit_side.py"
BUNDLE_NAME = "conformance-dags"
LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"
TIMINGS: dict[str, float] = {}

CHAIN_TASKS = {
    "test_chain_flytekit_into_executor_task": {"chain_report", CHAIN_DESCRIBE},
    "test_chain_executor_task_into_flytekit": {"chain_summarize", CHAIN_MAKE_INPUTS},
    "test_chain_dataclass_through_executor_task": {"nested_dataclass", CHAIN_RESHAPE, "dataclass_chain"},
    "test_chain_files_through_executor_tasks": {
        "file_out",
        CHAIN_SHOUT,
        "file_chain",
        "dir_out",
        CHAIN_INDEX,
        "dir_chain",
    },
    "test_chain_dataframes_through_executor_tasks": {
        "df_csv_out",
        CHAIN_ENRICH,
        "frame_chain",
        "df_out",
        CHAIN_ARROW,
        "arrow_chain",
    },
    "test_optional_none_output_reaches_a_plain_task": {"optional_none", RECEIVE_NONE},
    "test_typed_outputs_reach_a_plain_task": {"namedtuple", "datetime", "timedelta", RECEIVE_VALUES},
}
SELECTED: dict[str, set[str]] = {}
"""Per executor, the task ids the selected tests look at: the DAGs build only those (``-k`` is fast)."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "conformance: Flyte conformance suite: flytekit's own tasks through Airflow (tests/conformance)",
    )


@pytest.hookimpl(trylast=True)  # after -k/-m deselected what does not run
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/conformance/" not in item.nodeid.replace(os.sep, "/"):
            continue
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "executor" in params:
            SELECTED.setdefault(params["executor"], set()).add(params["name"])
        elif getattr(item, "originalname", "") in CHAIN_TASKS:
            SELECTED.setdefault("local", set()).update(CHAIN_TASKS[item.originalname])  # type: ignore[attr-defined]


# -- the flytekit side ---------------------------------------------------------------------------


def _run(command: list[str], what: str, timeout: float) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    if result.returncode not in ((0, 1) if what == "check" else (0,)):
        pytest.fail(
            f"{what} failed (exit {result.returncode}): {' '.join(command)}\n"
            f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-6000:]}",
            pytrace=False,
        )
    return result


@pytest.fixture(scope="session")
def flytekit_python() -> Path:
    """``.venv-flytekit``'s interpreter, built if needed (a fresh clone works)."""
    t0 = time.monotonic()
    _run(["bash", str(REPO / "scripts" / "setup-flytekit.sh")], "scripts/setup-flytekit.sh", timeout=1800)
    TIMINGS["setup-flytekit.sh"] = time.monotonic() - t0
    python = FLYTEKIT_VENV / "bin" / "python"
    for exe in (python, FLYTEKIT_VENV / "bin" / "pyflyte-execute"):
        if not exe.exists():
            pytest.fail(f"scripts/setup-flytekit.sh succeeded but {exe} does not exist", pytrace=False)
    return python


@dataclasses.dataclass
class Corpus:
    outdir: Path
    index: dict[str, Any]
    _expected: dict[str, Any] = dataclasses.field(default_factory=dict)

    def expected(self, name: str) -> dict[str, Any]:
        if name not in self._expected:
            self._expected[name] = json.loads(Path(self.index[name]["expected"]).read_text())
        return self._expected[name]  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def corpus(flytekit_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """The corpus serialized by flytekit, with flytekit's own local outcomes (once per session)."""
    outdir = tmp_path_factory.mktemp("conformance-corpus")
    t0 = time.monotonic()
    _run(
        [str(flytekit_python), str(FLYTEKIT_SIDE), "serialize", str(outdir)],
        "flytekit_side.py serialize",
        600,
    )
    TIMINGS["serialize (flytekit)"] = time.monotonic() - t0
    return Corpus(outdir, json.loads((outdir / "cases.json").read_text()))


# -- the Airflow side ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def airflow_db() -> str:
    return dagtest.migrate_airflow_db()


@dataclasses.dataclass
class CaseRun:
    """What one case's task did in the DAG run, and what flytekit says of its files."""

    name: str
    result: dagtest.TaskResult | None
    xcoms: dict[str, Any]
    callbacks: list[dagtest.CallbackRecord]
    folder: Path | None
    check: dict[str, Any] | None = None
    inputs_check: dict[str, Any] | None = None

    def _file(self, name: str) -> Path | None:
        """The execution's ``outputs.pb`` / ``inputs.pb`` where the product puts them by default."""
        if self.folder is None:
            return None
        from flyteidl.core import identifier_pb2

        from executors import TaskContext, TaskExecutionID

        ident = TaskExecutionID.create(identifier_pb2.TaskExecutionIdentifier())
        path = Path(getattr(TaskContext(task_execution_id=ident, data_dir=str(self.folder)), name))
        return path if path.exists() else None

    @property
    def outputs_pb(self) -> Path | None:
        return self._file("outputs_file")

    @property
    def inputs_pb(self) -> Path | None:
        return self._file("inputs_file")

    def log_tail(self, chars: int = 3000) -> str:
        if self.folder is None:
            return ""
        parts = []
        for log in ("stdout.log", "stderr.log"):
            path = self.folder / "logs" / log
            if path.exists():
                parts.append(f"--- {log} ---\n{path.read_text(errors='replace')[-chars:]}")
        return "\n".join(parts)


@dataclasses.dataclass
class ConformanceRun:
    executor: str
    run: dagtest.DagTestRun
    cases: dict[str, CaseRun]


def _bundle_config() -> str:
    """The bundles configured now (another suite's included) plus the conformance DAG folder."""
    current = os.environ.get(dagtest.BUNDLE_CONFIG_ENV)
    bundles = (
        json.loads(current) if current else [{"name": "dags-folder", "classpath": LOCAL_BUNDLE, "kwargs": {}}]
    )
    if not any(b.get("name") == BUNDLE_NAME for b in bundles):
        bundles.append(
            {"name": BUNDLE_NAME, "classpath": LOCAL_BUNDLE, "kwargs": {"path": str(CONFORMANCE_DAGS)}}
        )
    return json.dumps(bundles)


def _flytekit_reports(python: Path, corpus: Corpus, cases: dict[str, CaseRun], tmp: Path) -> None:
    """``flytekit_side.py check`` on every succeeded case's outputs.pb, ``inputs`` on every inputs.pb."""
    for command, attr, pick in (
        ("check", "check", lambda c: c.outputs_pb if c.result and c.result.state == "success" else None),
        (
            "inputs",
            "inputs_check",
            lambda c: c.inputs_pb,
        ),
    ):
        pairs = [(name, pick(c)) for name, c in cases.items() if name in CASES and pick(c) is not None]
        if not pairs:
            continue
        report_file = tmp / f"{command}-{os.getpid()}-{time.monotonic_ns()}.json"
        args = [str(python), str(FLYTEKIT_SIDE), command, str(corpus.outdir), "--json", str(report_file)]
        result = _run(args + [str(x) for pair in pairs for x in pair], "check", 600)
        if not report_file.exists():
            pytest.fail(
                f"flytekit_side.py {command} wrote no report:\n{result.stdout}\n{result.stderr}",
                pytrace=False,
            )
        for name, entry in json.loads(report_file.read_text()).items():
            setattr(cases[name], attr, entry)


def run_conformance_dag(
    dag_file: Path,
    executor: str,
    names: list[str],
    corpus: Corpus,
    python: Path,
    tmp: Path,
    env: dict[str, str],
) -> ConformanceRun:
    from airflow.sdk import serde

    from airflow_provider import config
    from airflow_provider.identity import execution_folder

    t0 = time.monotonic()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(dagtest.BUNDLE_CONFIG_ENV, _bundle_config())
        mp.setenv(OUTDIR_ENV, str(corpus.outdir))
        mp.setenv(SELECTED_ENV, ",".join(sorted(names)))
        for key, value in env.items():
            mp.setenv(key, value)
        module = dagtest.load_dag_module(dag_file)
        run = dagtest.run_dag_test(module.dag)
    TIMINGS[f"dag.test() {run.dag_id}"] = time.monotonic() - t0
    cases = {}
    for name in names:
        result = run.tasks.get((name, -1))
        folder = None
        if result is not None and result.try_number > 0:
            folder = Path(
                execution_folder(
                    config.data_dir(),
                    dag_id=run.dag_id,
                    run_id=run.run_id,
                    task_id=name,
                    map_index=-1,
                    try_number=result.try_number,
                )
            )
        # As a task receives them: dagtest reads the stored form, serde's envelope for datetimes.
        xcoms = {k: serde.deserialize(v) for (t, m, k), v in run.xcoms.items() if (t, m) == (name, -1)}
        cases[name] = CaseRun(name, result, xcoms, run.callbacks_of(name), folder)
    t0 = time.monotonic()
    _flytekit_reports(python, corpus, cases, tmp)
    TIMINGS[f"flytekit check ({executor})"] = time.monotonic() - t0
    return ConformanceRun(executor, run, cases)


@pytest.fixture(scope="session")
def local_run(
    airflow_db: str, corpus: Corpus, flytekit_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> ConformanceRun:
    names = SELECTED.get("local") or set(CASES) | {t for ts in CHAIN_TASKS.values() for t in ts}
    return run_conformance_dag(
        CONFORMANCE_DAGS / "conformance_local.py", "local", sorted(names), corpus, flytekit_python,
        tmp_path_factory.mktemp("conformance-local"), {},
    )  # fmt: skip


@pytest.fixture(scope="module")
def conformance_ray_head() -> Iterator[RayHead]:
    """A private Ray head for this module only: stopped when the conformance tests are done, so it
    never runs beside tests/executors/backends/ray's own session head."""
    t0 = time.monotonic()
    head = start_ray_head()
    TIMINGS["Ray head start"] = time.monotonic() - t0
    try:
        yield head
    finally:
        stop_ray_head(head)


@pytest.fixture(scope="module")
def ray_run(
    airflow_db: str,
    corpus: Corpus,
    flytekit_python: Path,
    conformance_ray_head: RayHead,
    tmp_path_factory: pytest.TempPathFactory,
) -> ConformanceRun:
    names = SELECTED.get("ray") or set(RAY_CASES)
    return run_conformance_dag(
        CONFORMANCE_DAGS / "conformance_ray.py", "ray", sorted(names), corpus, flytekit_python,
        tmp_path_factory.mktemp("conformance-ray"), {RAY_ADDRESS_ENV: conformance_ray_head.address},
    )  # fmt: skip


@pytest.fixture(scope="module")
def conformance_engine() -> Iterator[str]:
    """A Podman service (the Docker API) for this module, and the test image it runs the corpus in
    (flytekit serialized every task with that image's name, see ``cases.CONFORMANCE_IMAGE``)."""
    from harness import podman

    t0 = time.monotonic()
    podman.ensure_test_image()
    service = podman.start_service()
    TIMINGS["container engine and image"] = time.monotonic() - t0
    try:
        yield service.address
    finally:
        left = podman.leftover_containers({"io.airflow-provider-executors.domain": "conformance_docker"})
        podman.remove_containers(left)
        service.stop()
        assert not left, f"the container conformance run left containers behind: {left}"


@pytest.fixture(scope="module")
def docker_run(
    airflow_db: str,
    corpus: Corpus,
    flytekit_python: Path,
    conformance_engine: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> ConformanceRun:
    names = SELECTED.get("docker") or set(DOCKER_CASES)
    return run_conformance_dag(
        CONFORMANCE_DAGS / "conformance_docker.py", "docker", sorted(names), corpus, flytekit_python,
        tmp_path_factory.mktemp("conformance-docker"), {DOCKER_ADDRESS_ENV: conformance_engine},
    )  # fmt: skip


# -- the table at the end ------------------------------------------------------------------------

_OUTCOMES: dict[tuple[str, str], str] = {}
_ORDER: list[str] = []


EXECUTORS = ("local", "ray", "docker")


def _row_of(item_name: str) -> tuple[str, str]:
    """``test_case[local-int]`` -> (``int``, ``local``); another test -> (its name, ``local``)."""
    if "[" in item_name:
        param = item_name.split("[", 1)[1].rstrip("]")
        executor, _, case = param.partition("-")
        if executor in EXECUTORS and case:
            return case, executor
    return item_name.removeprefix("test_"), "local"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "tests/conformance/" not in report.nodeid.replace(os.sep, "/"):
        return
    key = _row_of(report.nodeid.rsplit("::", 1)[-1])
    if key[0] not in _ORDER:
        _ORDER.append(key[0])
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _OUTCOMES[key] = "pass" if report.passed else ("skip" if report.skipped else "FAIL")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _OUTCOMES:
        return
    width = max(len(n) for n in _ORDER) + 2
    tr = terminalreporter
    tr.section("Flyte conformance")
    tr.write_line(f"{'case':<{width}}" + "".join(f"{e:<8}" for e in EXECUTORS))
    for name in _ORDER:
        tr.write_line(f"{name:<{width}}" + "".join(f"{_OUTCOMES.get((name, e), '-'):<8}" for e in EXECUTORS))
    for executor in EXECUTORS:
        results = [v for (_, e), v in _OUTCOMES.items() if e == executor]
        if results:
            tr.write_line(f"{executor}: {results.count('pass')}/{len(results)} passed")
    if TIMINGS:
        tr.write_line("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in TIMINGS.items()))
