"""Real flytekit workflows, as a Flyte user writes them: the corpus of tests/flyte_workflows.

Imported only in ``.venv-flytekit``: ``pyflyte package`` serializes this module (found through
``PYTHONPATH=tests/flyte_workflows/corpus``) and ``flytekit_side.py`` runs each workflow locally for
the expected outputs. ``WORKFLOWS`` pairs each workflow with its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import flytekit
import pandas as pd
from flytekit import map_task, workflow

# -- tasks -----------------------------------------------------------------------------------------


@flytekit.task
def add(a: int, b: int) -> int:
    return a + b


@flytekit.task
def double(x: int) -> int:
    return 2 * x


@flytekit.task(cache=True, cache_version="1")
def describe(x: int, label: str) -> str:
    return f"{label}={x}"


@flytekit.task
def total(xs: list[int]) -> int:
    return sum(xs)


@flytekit.task(retries=2)
def square(x: int) -> int:
    return x * x


@dataclass
class Stats:
    count: int
    mean: float
    name: str


@flytekit.task
def make_frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"a": list(range(n)), "b": [i * 0.5 for i in range(n)]})


@flytekit.task
def frame_stats(df: pd.DataFrame, name: str) -> Stats:
    return Stats(count=len(df), mean=float(df["b"].mean()), name=name)


@flytekit.task
def report(s: Stats) -> str:
    return f"{s.name}: {s.count} rows, mean {s.mean:.3f}"


# -- workflows -------------------------------------------------------------------------------------


@workflow
def linear(a: int = 3, b: int = 4) -> str:
    """Three tasks in a row, a constant input, a default."""
    s = add(a=a, b=b)
    d = double(x=s)
    return describe(x=d, label="doubled sum")


@workflow
def fan_out_in(x: int = 5) -> tuple[int, str]:
    """One input to three tasks, their outputs into one (a collection of promises)."""
    p = double(x=x)
    q = add(a=x, b=10)
    r = square(x=x)
    t = total(xs=[p, q, r])
    return t, describe(x=t, label="total")


@workflow
def mapped(xs: list[int] = [1, 2, 3, 4]) -> int:  # noqa: B006 - flytekit's own way to default a list
    """A map task over a list, its collected outputs into one task."""
    squares = map_task(square)(x=xs)
    return total(xs=squares)


@workflow
def inner(a: int, b: int) -> int:
    return double(x=add(a=a, b=b))


@workflow
def nested(a: int = 1, b: int = 2) -> str:
    """A sub-workflow used twice, its outputs into a task."""
    first = inner(a=a, b=b)
    second = inner(a=first, b=100)
    return describe(x=second, label="nested")


@workflow
def data_passing(n: int = 6, name: str = "frame") -> tuple[Stats, str]:
    """A DataFrame and a dataclass from task to task."""
    stats = frame_stats(df=make_frame(n=n), name=name)
    return stats, report(s=stats)


WORKFLOWS = {
    # name: (workflow, inputs for the comparison run)
    "linear": (linear, {"a": 10, "b": 5}),
    "fan_out_in": (fan_out_in, {"x": 7}),
    "mapped": (mapped, {"xs": [3, 1, 2]}),
    "nested": (nested, {"a": 2, "b": 3}),
    "data_passing": (data_passing, {"n": 8, "name": "sample"}),
}
