"""The flytekit side of ``benchmarks/dataframe_handoff.py`` (runs in ``.venv-flytekit``).

``python dataframe_handoff_flytekit.py <rows>``: the same two functions as flytekit tasks in a
workflow, executed locally by flytekit; prints ``{"checksum", "seconds"}`` as the last line.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pandas as pd
from flytekit import task, workflow


@task
def produce(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    data = {f"f{i}": rng.random(rows) for i in range(7)}
    data["i0"] = np.arange(rows, dtype="int64")
    data["i1"] = rng.integers(0, 1_000, rows, dtype="int64")
    data["s"] = [f"row-{i % 1000}" for i in range(rows)]
    return pd.DataFrame(data)


@task
def consume(df: pd.DataFrame) -> float:
    return float(round(df["f0"].sum() + df["i1"].sum() + len(df) + df["s"].str.len().sum(), 3))


@workflow
def handoff(rows: int) -> float:
    return consume(df=produce(rows=rows))


if __name__ == "__main__":
    started = time.monotonic()
    checksum = handoff(rows=int(sys.argv[1]))
    print(json.dumps({"checksum": checksum, "seconds": time.monotonic() - started}))
