"""Benchmark 9: a DataFrame handed from one task to the next, ours vs flytekit's local execution.

A ``pandas.DataFrame`` of 1,000,000 rows x 10 columns (7 float64, 2 int64, 1 string; ``--quick``:
100,000 rows) is built and returned by one task and read by the next, which returns a checksum.

* Ours: two ``@task.executor``-style function tasks (:func:`executors.data.function_task.function_template`)
  run by ``python -m executors.runtime.runner``, as every executor runs them: the first writes the
  frame as parquet under the raw output prefix, the second reads it. Each is its own process.
* flytekit: the same two functions as ``@flytekit.task`` in a ``@workflow``, run locally by flytekit
  (one process, ``benchmarks/dataframe_handoff_flytekit.py`` in ``.venv-flytekit``), which writes and
  reads the frame through its own structured dataset transformers.

Figures: wall time of the whole handoff (process start to the checksum, both sides), peak RSS (the
largest of the processes), and the bytes that reach XCom for the DataFrame output (its reference's
JSON), against the size of the parquet data it points at. Both sides must return the same checksum.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import psutil

from benchmarks.common import REPO, Report, cli, log
from executors.data.function_task import function_template
from executors.data.literals import from_literal_map, to_literal_map

XCOM_TARGET_BYTES = 2048
FLYTEKIT_SIDE = REPO / "benchmarks" / "dataframe_handoff_flytekit.py"


def produce(rows: int) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(7)
    data: dict[str, Any] = {f"f{i}": rng.random(rows) for i in range(7)}
    data["i0"] = np.arange(rows, dtype="int64")
    data["i1"] = rng.integers(0, 1_000, rows, dtype="int64")
    data["s"] = [f"row-{i % 1000}" for i in range(rows)]
    return pd.DataFrame(data)


def consume(df: pd.DataFrame) -> float:
    return float(round(df["f0"].sum() + df["i1"].sum() + len(df) + df["s"].str.len().sum(), 3))


def _run_measured(command: list[str], cwd: Path) -> tuple[float, int, subprocess.CompletedProcess[str]]:
    """Wall seconds and peak RSS (bytes, sampled every 10 ms) of ``command``."""
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    watched = psutil.Process(process.pid)
    while process.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.01)
    out, err = process.communicate()
    wall = time.monotonic() - started
    return wall, peak, subprocess.CompletedProcess(command, process.returncode, out, err)


def _ours(rows: int, root: Path) -> dict[str, Any]:
    raw = root / "raw"
    results: dict[str, Any] = {"wall": 0.0, "peak": 0}
    previous: Any = None
    for fn, inputs in ((produce, {"rows": rows}), (consume, None)):
        folder = root / fn.__name__
        (folder / "out").mkdir(parents=True)
        template = function_template(fn, name=fn.__name__)
        values = inputs if inputs is not None else {"df": previous}
        (folder / "task.pb").write_bytes(template.SerializeToString())
        literals = to_literal_map(values, template.interface.inputs)
        (folder / "inputs.pb").write_bytes(literals.SerializeToString())
        command = [
            sys.executable, "-m", "executors.runtime.runner",
            str(folder / "inputs.pb"), str(folder / "out"), str(folder / "task.pb"), str(raw),
        ]  # fmt: skip
        wall, peak, done = _run_measured(command, folder)
        if done.returncode != 0:
            raise RuntimeError(f"{fn.__name__}: {done.stderr[-2000:]}")
        from flyteidl.core import literals_pb2

        outputs = literals_pb2.LiteralMap.FromString((folder / "out" / "outputs.pb").read_bytes())
        previous = from_literal_map(outputs, template.interface.outputs)["o0"]
        results["wall"] += wall
        results["peak"] = max(results["peak"], peak)
        results[fn.__name__] = previous
    reference = results["produce"]
    results["xcom_bytes"] = len(json.dumps(reference))
    results["data_bytes"] = sum(p.stat().st_size for p in Path(reference["uri"]).rglob("*") if p.is_file())
    results["checksum"] = results["consume"]
    return results


def _flytekit(rows: int, root: Path) -> dict[str, Any]:
    from benchmarks.literals_bench import ensure_venv

    python, _ = ensure_venv()
    wall, peak, done = _run_measured([str(python), str(FLYTEKIT_SIDE), str(rows)], root)
    if done.returncode != 0:
        raise RuntimeError(f"flytekit: {done.stderr[-2000:]}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return {"wall": wall, "peak": peak, "checksum": answer["checksum"], "inside": answer["seconds"]}


def _spread(values: list[float], unit: str) -> str:
    return f"{len(values)} runs each, ours {min(values):.2f}-{max(values):.2f} {unit}"


def run(quick: bool) -> Report:
    rows = 100_000 if quick else 1_000_000
    repeats = 1 if quick else 3
    report = Report("dataframe_handoff")
    ours_runs: list[dict[str, Any]] = []
    their_runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-df-") as tmp:
        for attempt in range(repeats):  # alternating, so both sides see the same machine
            log(f"dataframe handoff {attempt + 1}/{repeats}: ours, {rows:,} rows x 10 columns")
            ours_runs.append(_ours(rows, Path(tmp) / f"ours-{attempt}"))
            log(f"dataframe handoff {attempt + 1}/{repeats}: flytekit's local execution")
            (Path(tmp) / f"flytekit-{attempt}").mkdir()
            their_runs.append(_flytekit(rows, Path(tmp) / f"flytekit-{attempt}"))
    for ours, theirs in zip(ours_runs, their_runs, strict=True):
        if ours["checksum"] != theirs["checksum"]:
            raise RuntimeError(f"checksums differ: ours {ours['checksum']} flytekit {theirs['checksum']}")
    label = f"{rows:,} rows x 10 columns"
    walls, their_walls = [r["wall"] for r in ours_runs], [r["wall"] for r in their_runs]
    peaks, their_peaks = [r["peak"] / 2**20 for r in ours_runs], [r["peak"] / 2**20 for r in their_runs]
    inside = statistics.median(r["inside"] for r in their_runs)
    report.add(
        f"{label}: wall time, produce + hand off + read (process start to checksum), median",
        statistics.median(walls),
        "s",
        baseline=statistics.median(their_walls),
        baseline_label="flytekit local execution of the same two tasks (one process)",
        notes=(
            f"ours is two processes (one per task, as an executor runs them), flytekit one; flytekit's "
            f"time inside its process {inside:.2f} s; {_spread(walls, 's')}, flytekit "
            f"{min(their_walls):.2f}-{max(their_walls):.2f} s; checksum {ours_runs[0]['checksum']} on both"
        ),
    )
    report.add(
        f"{label}: peak RSS (largest process), median",
        statistics.median(peaks),
        "MiB",
        baseline=statistics.median(their_peaks),
        baseline_label="flytekit local execution",
        notes=(
            f"sampled every 10 ms; {_spread(peaks, 'MiB')}, "
            f"flytekit {min(their_peaks):.0f}-{max(their_peaks):.0f} MiB"
        ),
    )
    ours = ours_runs[0]
    report.add(
        f"{label}: bytes in XCom for the DataFrame output",
        ours["xcom_bytes"],
        "B",
        baseline=ours["data_bytes"],
        baseline_label="the parquet data it refers to",
        target=f"< {XCOM_TARGET_BYTES:,} B whatever the data size",
        met=ours["xcom_bytes"] < XCOM_TARGET_BYTES,
        notes="the reference {uri, format, columns} as JSON",
    )
    return report


if __name__ == "__main__":
    cli(run)
