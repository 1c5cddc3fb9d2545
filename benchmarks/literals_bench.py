"""Benchmark 3: Python values to a flyteidl LiteralMap and back, ``executors.data.literals`` vs flytekit.

Runs in its own interpreter, ``.venv-flytekit`` (scripts/setup-flytekit.sh; flytekit must not enter the
project's venv); ``benchmarks.run`` creates that venv when it is missing (:func:`ensure_venv`) and runs this
module there. It imports ``executors`` (never Airflow) and flytekit.

Values (the same Python objects for both sides):

* ``list[int]`` of 100,000 elements;
* ``dict[str, float]`` of 100,000 keys;
* nested: a list of 1,000 ``dict[str, list[float]]``, each with 5 keys of 10 floats (50,000 floats).

Ours: ``to_literal_map`` / ``from_literal_map`` against an interface from ``interface_from_python``;
the result is the protobuf ``LiteralMap`` that goes into ``inputs.pb``. flytekit:
``TypeEngine.dict_to_literal_map`` / ``TypeEngine.literal_map_to_kwargs``, which produce and read
flytekit's Python models; reaching the same protobuf costs ``to_flyte_idl()`` (and
``LiteralMap.from_flyte_idl`` back) on top, reported separately. The target (at least 5x faster)
is judged against flytekit *without* that step, the stricter comparison.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, Report, cli, fmt, log, time_budgeted, version_of

VENV = REPO / ".venv-flytekit"
"""The flytekit interpreter the conformance suite uses too (``scripts/setup-flytekit.sh``)."""
SPEEDUP_TARGET = 5.0


def venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure_venv() -> tuple[Path, str]:
    """Create ``.venv-flytekit`` if needed (the pinned flytekit, the project editable without its
    Airflow side), shared with tests/conformance. Returns (python, what was done)."""
    started = time.monotonic()
    fresh = not venv_python().exists()
    log(f"literals: checking {VENV} (flytekit + the project, no Airflow)")
    subprocess.run(["bash", str(REPO / "scripts" / "setup-flytekit.sh")], check=True)
    return venv_python(), f"created in {time.monotonic() - started:.0f} s" if fresh else "reused"


# -- the measurement (runs inside the flytekit venv) ---------------------------------------------------


def _values(quick: bool) -> list[tuple[str, Any, Any]]:
    n = 10_000 if quick else 100_000
    nested_n = 100 if quick else 1_000
    return [
        (f"list[int], {n:,} elements", list(range(n)), list[int]),
        (f"dict[str, float], {n:,} keys", {f"k{i}": i * 0.5 for i in range(n)}, dict[str, float]),
        (
            f"list of {nested_n:,} dict[str, list[float]] (5 keys x 10 floats)",
            [{f"f{k}": [i + k + j / 10 for j in range(10)] for k in range(5)} for i in range(nested_n)],
            list[dict[str, list[float]]],
        ),
    ]


def _median(fn: Callable[[], Any], *, slow: bool) -> float:
    times = time_budgeted(
        fn,
        min_repeats=2 if slow else 5,
        max_repeats=10 if slow else 30,
        budget=8.0 if slow else 3.0,
        warmup=0 if slow else 1,
    )
    return statistics.median(times)


def run(quick: bool) -> Report:
    import flytekit
    from flytekit.core.context_manager import FlyteContextManager
    from flytekit.core.type_engine import TypeEngine
    from flytekit.models.literals import LiteralMap as ModelLiteralMap

    from executors.data.literals import from_literal_map, interface_from_python, to_literal_map

    report = Report("3. literal conversion")
    report.environment = {"flytekit": flytekit.__version__, "interpreter": sys.executable}
    ctx = FlyteContextManager.current_context()
    rows = [
        "| value | ours: to | ours: back | flytekit: to | flytekit: back | flytekit: +to_flyte_idl | "
        "flytekit: +from_flyte_idl | speed-up (round trip) | speed-up incl. IDL |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, value, tp in _values(quick):
        log(f"literals: {label}")
        variables = interface_from_python({"v": tp}, {}).inputs
        ours_lm = to_literal_map({"v": value}, variables)
        if from_literal_map(ours_lm, variables, kind="input")["v"] != value:
            raise RuntimeError(f"{label}: our round trip changed the value")
        fk_lm = TypeEngine.dict_to_literal_map(ctx, {"v": value}, {"v": tp})
        if TypeEngine.literal_map_to_kwargs(ctx, fk_lm, python_types={"v": tp})["v"] != value:
            raise RuntimeError(f"{label}: flytekit's round trip changed the value")
        fk_pb = fk_lm.to_flyte_idl()

        ours_to = _median(lambda: to_literal_map({"v": value}, variables), slow=False)  # noqa: B023
        ours_back = _median(lambda: from_literal_map(ours_lm, variables, kind="input"), slow=False)  # noqa: B023
        fk_to = _median(lambda: TypeEngine.dict_to_literal_map(ctx, {"v": value}, {"v": tp}), slow=True)  # noqa: B023
        fk_back = _median(
            lambda: TypeEngine.literal_map_to_kwargs(ctx, fk_lm, python_types={"v": tp}),  # noqa: B023
            slow=True,
        )
        fk_idl = _median(lambda: fk_lm.to_flyte_idl(), slow=True)  # noqa: B023
        fk_from_idl = _median(lambda: ModelLiteralMap.from_flyte_idl(fk_pb), slow=True)  # noqa: B023

        ours_rt, fk_rt = ours_to + ours_back, fk_to + fk_back
        fk_rt_idl = fk_rt + fk_idl + fk_from_idl
        for direction, ours, theirs in (
            ("Python -> LiteralMap", ours_to, fk_to),
            ("LiteralMap -> Python", ours_back, fk_back),
        ):
            report.add(
                f"{label}: {direction}",
                ours * 1000,
                "ms",
                baseline=theirs * 1000,
                baseline_label="flytekit TypeEngine",
                target=f">= {SPEEDUP_TARGET:g}x faster (ratio <= {1 / SPEEDUP_TARGET:g})",
                met=theirs / ours >= SPEEDUP_TARGET,
                notes=f"{theirs / ours:.1f}x faster",
            )
        rows.append(
            f"| {label} | {fmt(ours_to * 1000)} ms | {fmt(ours_back * 1000)} ms | {fmt(fk_to * 1000)} ms | "
            f"{fmt(fk_back * 1000)} ms | {fmt(fk_idl * 1000)} ms | {fmt(fk_from_idl * 1000)} ms | "
            f"{fk_rt / ours_rt:.1f}x | {fk_rt_idl / ours_rt:.1f}x |"
        )
    report.details = (
        f"Interpreter `{sys.executable}` (its own venv): flytekit {flytekit.__version__}, flyteidl "
        f"{version_of('flyteidl')}, protobuf {version_of('protobuf')}, Python {sys.version.split()[0]}. "
        "Medians of repeated conversions of the same objects (at least 5 for ours, 2 for flytekit).\n\n"
        + "\n".join(rows)
        + "\n"
    )
    report.notes.append(
        "flytekit's own figures stop at its Python models; `+to_flyte_idl` / `+from_flyte_idl` is what it "
        "takes on top to reach (or read) the protobuf LiteralMap that ours produces directly."
    )
    return report


if __name__ == "__main__":
    os.environ.setdefault("FLYTE_SDK_LOGGING_LEVEL", "40")
    cli(run)
