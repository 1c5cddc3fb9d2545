"""Run every benchmark and write benchmarks/RESULTS.md.

    .venv/bin/python -m benchmarks.run [--quick] [--only trigger_capacity,catalog_bench]
    bash benchmarks/run.sh [--quick]

Each benchmark runs in its own subprocess (``python -m benchmarks.<module> --json ...``) with a time
limit; ``literals_bench`` runs under ``.venv-flytekit`` (scripts/setup-flytekit.sh). The raw
JSON and the full output of each go to ``benchmarks/.raw/`` (gitignored). A benchmark that fails
or times out is reported as such in RESULTS.md; the others still run.

Benchmarks print figures, they never assert timings. Since other work may share the machine, the
CPU that processes *outside* the benchmark used while it ran is recorded for each benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

import psutil

from benchmarks.common import BENCH_DIR, REPO, Figure, Report, figures_table, machine, met_text

RAW = BENCH_DIR / ".raw"
RESULTS = BENCH_DIR / "RESULTS.md"

# (module, time limit in seconds for a full run, interpreter: "main" or "flytekit")
BENCHMARKS: list[tuple[str, int, str]] = [
    ("operator_overhead", 600, "main"),
    ("literals_bench", 900, "flytekit"),
    ("catalog_bench", 900, "main"),
    ("trigger_capacity", 1800, "main"),
    ("deferrable_vs_blocking", 1200, "main"),
    ("local_admission", 600, "main"),
    ("output_memory", 300, "main"),
    ("docker_vs_dockeroperator", 900, "main"),
    ("dataframe_handoff", 600, "main"),
]


def _busy_cpu() -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _git() -> str:
    def out(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    head = out("rev-parse", "--short", "HEAD")
    dirty = [line for line in out("status", "--porcelain").splitlines() if "benchmarks/" not in line]
    return f"{head}" + (f" + {len(dirty)} uncommitted change(s) outside benchmarks/" if dirty else "")


def run_one(module: str, limit: int, interpreter: str, quick: bool) -> tuple[Report | None, dict[str, Any]]:
    RAW.mkdir(exist_ok=True)
    out_json = RAW / f"{module}.json"
    out_log = RAW / f"{module}.log"
    out_json.unlink(missing_ok=True)
    info: dict[str, Any] = {"module": module}
    python = sys.executable
    if interpreter == "flytekit":
        from benchmarks.literals_bench import ensure_venv

        venv_python, how = ensure_venv()
        python = str(venv_python)
        info["venv"] = how
    cmd = [python, "-m", f"benchmarks.{module}", "--json", str(out_json)]
    if quick:
        cmd.append("--quick")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.pop("BENCH_AIRFLOW_HOME_SET", None)
    env["PYTHONUNBUFFERED"] = "1"
    busy0, ours0, load0, t0 = _busy_cpu(), _children_cpu(), os.getloadavg()[0], time.monotonic()
    print(f"\n##### {module} ({' '.join(cmd[1:])})", flush=True)
    status = "ok"
    with open(out_log, "w") as log_file:
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        assert proc.stdout is not None
        deadline = time.monotonic() + limit
        for line in proc.stdout:
            log_file.write(line)
            if line.startswith("[") or line.startswith("|") or line.startswith("==="):
                print(line, end="", flush=True)
            if time.monotonic() > deadline:
                status = f"timed out after {limit} s"
                proc.kill()
                break
        proc.wait()
    wall = time.monotonic() - t0
    busy = _busy_cpu() - busy0
    ours = _children_cpu() - ours0
    info.update(
        wall=wall,
        returncode=proc.returncode,
        foreign_cores=max(0.0, busy - ours) / wall if wall else 0.0,
        ours_cores=ours / wall if wall else 0.0,
        load_start=load0,
        load_end=os.getloadavg()[0],
        log=str(out_log.relative_to(REPO)),
    )
    if status == "ok" and proc.returncode != 0:
        status = f"failed (exit {proc.returncode})"
    info["status"] = status
    if status != "ok" or not out_json.exists():
        info["error_tail"] = "".join(out_log.read_text(errors="replace").splitlines(keepends=True)[-40:])
        return None, info
    return Report.from_dict(json.loads(out_json.read_text())), info


def write_results(
    reports: list[tuple[Report | None, dict[str, Any]]], quick: bool, total: float, started: str, code: str
) -> str:
    env = machine()
    flytekit = next(
        (r.environment.get("flytekit") for r, _ in reports if r is not None and "flytekit" in r.environment),
        None,
    )
    figures: list[Figure] = [f for r, _ in reports if r is not None for f in r.figures]
    judged = [f for f in figures if f.met is not None]
    missed = [f for f in judged if not f.met]
    mode = "QUICK (smaller sizes, shorter windows: not the reference figures)" if quick else "full size"
    command = ".venv/bin/python -m benchmarks.run" + (" --quick" if quick else "")
    lines = [
        "# Benchmark results",
        "",
        f"Run {started}, {mode}: `{command}`, {total / 60:.1f} min in all. "
        "Benchmarks print figures and never assert timings; each baseline was measured in the same run.",
        "",
        "| machine | |",
        "|---|---|",
        f"| cores | {env.get('cores')} ({env.get('cpu', '?')}) |",
        f"| memory | {env.get('memory', '?')} |",
        f"| OS | {env.get('platform')} |",
        f"| Python | {env.get('python')} |",
        f"| Airflow | apache-airflow {env.get('apache-airflow')} "
        f"(task-sdk {env.get('apache-airflow-task-sdk')}) |",
        f"| flyteidl / protobuf | {env.get('flyteidl')} / {env.get('protobuf')} |",
        f"| flytekit (separate venv) | {flytekit or '-'} |",
        f"| code | {code} |",
        "",
        f"**Targets: {len(judged) - len(missed)} of {len(judged)} met.**"
        + (" Missed: " + "; ".join(f"{f.benchmark}: {f.name}" for f in missed) + "." if missed else ""),
        "",
        "## All figures",
        "",
        figures_table(figures, with_benchmark=True),
        "",
        "ratio = value / baseline. `(no target)`: the brief sets none for that figure; it is reported.",
        "",
        "## Per benchmark",
        "",
        "| benchmark | status | wall | CPU of the benchmark (cores, avg) | "
        "CPU of other processes on the machine (cores, avg) | load avg start / end |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for report, info in reports:
        name = report.benchmark if report else info["module"]
        lines.append(
            f"| {name} | {info['status']} | {info.get('wall', 0):.0f} s | {info.get('ours_cores', 0):.2f} | "
            f"{info.get('foreign_cores', 0):.2f} | "
            f"{info.get('load_start', 0):.1f} / {info.get('load_end', 0):.1f} |"
        )
    lines.append("")
    for report, info in reports:
        if report is None:
            lines += [
                f"### {info['module']}: {info['status']}",
                "",
                "```",
                info.get("error_tail", "").rstrip(),
                "```",
                "",
            ]
            continue
        lines += [f"### {report.benchmark}", ""]
        if report.details:
            lines += [report.details.rstrip(), ""]
        for note in report.notes:
            lines.append(f"- {note}")
        if report.notes:
            lines.append("")
        if info.get("venv"):
            lines += [f"(flytekit venv: {info['venv']}.)", ""]
    text = "\n".join(lines).rstrip() + "\n"
    RESULTS.write_text(text)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller sizes and shorter windows")
    parser.add_argument("--only", help="comma-separated modules to run (default: all)")
    args = parser.parse_args(argv)
    wanted = set(args.only.split(",")) if args.only else None
    started = time.strftime("%Y-%m-%d %H:%M %Z")
    code_at_start = _git()
    t0 = time.monotonic()
    reports = []
    for module, limit, interpreter in BENCHMARKS:
        if wanted is not None and module not in wanted:
            continue
        reports.append(run_one(module, limit, interpreter, args.quick))
    total = time.monotonic() - t0
    code_at_end = _git()
    code = code_at_start
    if code_at_end != code_at_start:
        code = f"{code_at_start} at the start, {code_at_end} at the end: **the code changed during the run**"
    write_results(reports, args.quick, total, started, code)
    figures = [f for r, _ in reports if r is not None for f in r.figures]
    print(f"\n##### all done in {total / 60:.1f} min; {RESULTS.relative_to(REPO)} written\n")
    print(figures_table(figures, with_benchmark=True))
    for report, info in reports:
        if report is None:
            print(f"\n{info['module']}: {info['status']} (see {info.get('log')})")
    judged = [f for f in figures if f.met is not None]
    print(f"\ntargets met: {sum(1 for f in judged if f.met)} of {len(judged)}")
    for f in judged:
        if not f.met:
            print(f"  {met_text(f.met)}: {f.benchmark}: {f.name}")


if __name__ == "__main__":
    main()
