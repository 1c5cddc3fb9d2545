"""What every benchmark shares: figures, percentiles, the machine, and the JSON hand-off to run.py.

A benchmark module exposes ``run(quick: bool) -> Report`` and ends with ``cli(run)``: run alone it
prints its figures; run by ``benchmarks.run`` it also writes them as JSON (``--json PATH``).

This module imports neither Airflow nor flytekit: ``literals_bench`` runs under the separate
flytekit interpreter (``.venv-flytekit`` (scripts/setup-flytekit.sh)), where Airflow is not installed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO / "benchmarks"


@dataclasses.dataclass
class Figure:
    """One measured figure, with the baseline measured in the same run and its target.

    ``ratio`` is ``value / baseline`` (so "5x faster" is a ratio of at most 0.2). ``met`` is None
    when the brief sets no target for this figure (it is reported, not judged).
    """

    benchmark: str
    name: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    target: str = "-"
    met: bool | None = None
    notes: str = ""
    ratio: float | None = None

    def __post_init__(self) -> None:
        if self.ratio is None and self.value is not None and self.baseline:
            self.ratio = self.value / self.baseline


@dataclasses.dataclass
class Report:
    """What one benchmark module hands back: its figures, plus free text for RESULTS.md."""

    benchmark: str
    figures: list[Figure] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    details: str = ""
    """Markdown (tables, profiles) printed under the benchmark's section of RESULTS.md."""
    seconds: float = 0.0
    environment: dict[str, str] = dataclasses.field(default_factory=dict)

    def add(self, name: str, value: float | None, unit: str, **kwargs: Any) -> Figure:
        figure = Figure(self.benchmark, name, value, unit, **kwargs)
        self.figures.append(figure)
        return figure

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        figures = [Figure(**f) for f in data.get("figures", [])]
        return cls(
            benchmark=data["benchmark"],
            figures=figures,
            notes=list(data.get("notes", [])),
            details=data.get("details", ""),
            seconds=float(data.get("seconds", 0.0)),
            environment=dict(data.get("environment", {})),
        )


# -- statistics -------------------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (``pct`` in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max/mean of durations given in seconds, in milliseconds."""
    ms = [s * 1000.0 for s in seconds]
    return {
        "n": float(len(ms)),
        "p50": percentile(ms, 50),
        "p95": percentile(ms, 95),
        "p99": percentile(ms, 99),
        "max": max(ms) if ms else math.nan,
        "mean": statistics.fmean(ms) if ms else math.nan,
    }


def time_calls(fn: Callable[[], Any], *, repeats: int, warmup: int = 0) -> list[float]:
    """Wall-clock seconds of each of ``repeats`` calls of ``fn`` (after ``warmup`` untimed calls)."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def time_budgeted(
    fn: Callable[[], Any], *, min_repeats: int, max_repeats: int, budget: float, warmup: int = 0
) -> list[float]:
    """Like :func:`time_calls`, but stops after ``budget`` seconds once ``min_repeats`` are done."""
    for _ in range(warmup):
        fn()
    out: list[float] = []
    deadline = time.monotonic() + budget
    while len(out) < max_repeats and (len(out) < min_repeats or time.monotonic() < deadline):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


# -- the machine ------------------------------------------------------------------------------------


def version_of(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, str]:
    """Cores, memory, Python and the versions that matter, as reported by this interpreter."""
    info = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "host": platform.node(),
        "platform": platform.platform(),
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "apache-airflow": version_of("apache-airflow"),
        "apache-airflow-task-sdk": version_of("apache-airflow-task-sdk"),
        "flyteidl": version_of("flyteidl"),
        "protobuf": version_of("protobuf"),
        "fsspec": version_of("fsspec"),
        "psutil": version_of("psutil"),
    }
    try:
        import psutil

        info["memory"] = f"{psutil.virtual_memory().total / 2**30:.1f} GiB"
        freq = psutil.cpu_freq()
        if freq is not None and freq.max:
            info["cpu_mhz"] = f"{freq.max:.0f}"
    except Exception:
        pass
    with _suppress():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    return info


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


# -- formatting -------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 3) -> str:
    """A number with about ``digits`` significant digits, thousands separated; '-' for None/NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 10 ** (digits - 1):
        return f"{value:,.0f}"
    decimals = max(0, digits - 1 - math.floor(math.log10(magnitude)))
    return f"{value:,.{decimals}f}"


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None or math.isnan(ratio):
        return "-"
    return f"{ratio:.3g}x"


def met_text(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "(no target)"}[met]


def figures_table(figures: Iterable[Figure], *, with_benchmark: bool = False) -> str:
    head = ["figure", "value", "baseline (same run)", "ratio", "target", "met"]
    if with_benchmark:
        head.insert(0, "benchmark")
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for f in figures:
        value = f"{fmt(f.value)} {f.unit}".strip() if f.value is not None else "-"
        baseline = "-"
        if f.baseline is not None:
            baseline = f"{fmt(f.baseline)} {f.unit}".strip()
            if f.baseline_label:
                baseline += f" ({f.baseline_label})"
        name = f.name + (f" - {f.notes}" if f.notes else "")
        cells = [name, value, baseline, fmt_ratio(f.ratio), f.target or "-", met_text(f.met)]
        if with_benchmark:
            cells.insert(0, f.benchmark)
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)


def print_report(report: Report) -> None:
    print(f"\n=== {report.benchmark} ({report.seconds:.0f} s) ===")
    print(figures_table(report.figures))
    for note in report.notes:
        print(f"- {note}")
    if report.details:
        print(report.details)
    sys.stdout.flush()


# -- the command line of each module ----------------------------------------------------------------


def cli(run: Callable[[bool], Report], argv: Sequence[str] | None = None) -> None:
    """``python -m benchmarks.<module> [--quick] [--json PATH]``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller sizes and shorter windows")
    parser.add_argument("--json", help="also write the report as JSON to this file")
    args = parser.parse_args(argv)
    isolate_airflow_home()
    started = time.monotonic()
    report = run(args.quick)
    report.seconds = time.monotonic() - started
    report.environment = {**machine(), **report.environment}
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=1, default=str))


def isolate_airflow_home() -> str:
    """A fresh, empty AIRFLOW_HOME for this benchmark process (never the user's ~/airflow), removed
    when the process exits; its subprocesses inherit it."""
    import atexit
    import shutil
    import tempfile

    if not os.environ.get("BENCH_AIRFLOW_HOME_SET"):
        home = tempfile.mkdtemp(prefix="bench-airflow-home-")
        atexit.register(shutil.rmtree, home, ignore_errors=True)
        os.environ["AIRFLOW_HOME"] = home
        os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
        os.environ["BENCH_AIRFLOW_HOME_SET"] = "1"
    return os.environ["AIRFLOW_HOME"]


def log(message: str) -> None:
    """Progress on stderr (run.py keeps it in the raw log), with a timestamp."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
