"""The conformance corpus: real flytekit tasks, as a Flyte user writes them.

Imported only in ``.venv-flytekit`` (the stand-in for a Flyte task image): by
``tests/conformance/flytekit_side.py``, which serializes each task with flytekit's own translator and
runs it locally for the expected outcome, and by ``pyflyte-execute`` inside the executions (found
through ``PYTHONPATH=tests/conformance/corpus``, so the module is ``flyte_tasks``). The project's own
venv never imports this file.

``CASES`` at the end pairs each case of ``tests/conformance/cases.py`` with its task and its Python
inputs (the same values the Airflow side passes to ``ExecutorOperator``, in their plain form).
"""

from __future__ import annotations

import datetime
import enum
import os
import pathlib
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, NamedTuple, Optional, Union

import flytekit
import pandas as pd
from flytekit import StructuredDataset
from flytekit.exceptions.user import FlyteRecoverableException
from flytekit.types.directory import FlyteDirectory
from flytekit.types.file import FlyteFile
from flytekit.types.structured.structured_dataset import CSV
from pydantic import BaseModel

# -- types ---------------------------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


@dataclass
class Point:
    x: int
    y: float
    label: str = ""


@dataclass
class Shape:
    name: str
    origin: Point
    vertices: list[Point]
    tags: dict[str, int] = field(default_factory=dict)
    note: str | None = None


@dataclass
class Event:
    name: str
    when: datetime.datetime


class Order(BaseModel):
    id: int
    items: list[str]
    price: float
    express: bool = False


class Stats(NamedTuple):
    total: int
    mean: float
    label: str


class Report(NamedTuple):
    color: Color
    counts: dict[str, int]


def attempt() -> int:
    """Flyte's retry attempt (0, 1, ...): propeller sets FLYTE_ATTEMPT_NUMBER in the task's pod."""
    return int(os.environ.get("FLYTE_ATTEMPT_NUMBER", "0"))


# -- scalars -------------------------------------------------------------------------------------


@flytekit.task
def t_int(x: int) -> int:
    return x * 2 + 1


@flytekit.task
def t_float(x: float) -> float:
    return x * 1.5


@flytekit.task
def t_str(s: str) -> str:
    return s.upper() + "!"


@flytekit.task
def t_bool(b: bool) -> bool:
    return not b


@flytekit.task
def t_many_scalars(a: int, b: float, c: str, d: bool) -> str:
    return f"{a}|{b}|{c}|{d}"


@flytekit.task
def t_datetime(when: datetime.datetime) -> datetime.datetime:
    return when + datetime.timedelta(days=1, hours=2)


@flytekit.task
def t_timedelta(d: datetime.timedelta) -> datetime.timedelta:
    return d * 3


# -- collections ---------------------------------------------------------------------------------


@flytekit.task
def t_list_int(xs: list[int]) -> list[int]:
    return [x * x for x in xs]


@flytekit.task
def t_dict_str_float(d: dict[str, float]) -> dict[str, float]:
    return {k.upper(): v / 2 for k, v in d.items()}


@flytekit.task
def t_nested_list(rows: list[list[str]]) -> list[list[str]]:
    return [list(reversed(r)) for r in rows] + [[]]


@flytekit.task
def t_dict_of_lists(d: dict[str, list[int]]) -> dict[str, list[int]]:
    return {k: sorted(v) for k, v in d.items()}


@flytekit.task
def t_bare_dict(d: dict) -> dict:
    return {**d, "count": len(d), "nested": {"total": sum(v for v in d.values() if isinstance(v, int))}}


# -- optional, union, enum -----------------------------------------------------------------------


@flytekit.task
def t_optional(x: Optional[int]) -> Optional[int]:  # noqa: UP045 - typing.Optional, as Flyte users write it
    return None if x is None else x + 1


@flytekit.task
def t_union(v: Union[int, str]) -> Union[int, str]:  # noqa: UP007 - typing.Union, as Flyte users write it
    return v * 2


@flytekit.task
def t_enum(c: Color) -> Color:
    order = list(Color)
    return order[(order.index(c) + 1) % len(order)]


# -- dataclasses, pydantic -----------------------------------------------------------------------


@flytekit.task
def t_dataclass(p: Point) -> Point:
    return Point(x=p.x + 1, y=p.y * 2, label=p.label + "'")


@flytekit.task
def t_nested_dataclass(s: Shape) -> Shape:
    moved = [Point(v.x + s.origin.x, v.y + s.origin.y, v.label) for v in s.vertices]
    return Shape(
        name=s.name.title(), origin=Point(0, 0.0, "o"), vertices=moved, tags={**s.tags, "n": len(moved)}
    )


def reshape(s: Shape) -> Shape:
    """What the conformance DAG's ``reshape_shape`` (a ``@task.executor`` function declaring its own
    ``Shape``) returns for ``s``: the input of the ``dataclass_chain`` case."""
    return Shape(
        name=s.name + " reversed",
        origin=Point(s.origin.x - 1, s.origin.y, s.origin.label),
        vertices=list(reversed(s.vertices)),
        tags={**s.tags, "reshaped": 1},
        note=None,
    )


def enrich(df: pd.DataFrame) -> pd.DataFrame:
    """What the conformance DAG's ``enrich_frame`` returns for ``df``: ``frame_chain``'s input."""
    return df.assign(a=df["a"] + 1, doubled=df["a"] * 2)


@flytekit.task
def t_date(d: datetime.date) -> datetime.date:
    return d + datetime.timedelta(days=1)


@flytekit.task
def t_list_dataclass(ps: list[Point]) -> list[Point]:
    return sorted(ps, key=lambda p: p.x)


@flytekit.task
def t_pydantic(o: Order) -> Order:
    return Order(id=o.id + 1000, items=[*o.items, "gift"], price=round(o.price * 1.2, 2), express=True)


@flytekit.task
def t_bad_dataclass_input(p: Point) -> float:
    """Given a dataclass whose ``x`` is a string: flytekit fails converting the input."""
    return p.x + p.y


@flytekit.task(retries=1)
def t_bad_event_input(e: Event) -> str:
    """Given an Event whose ``when`` is a string but no date (a JSON schema accepts it: ``format`` is
    an annotation): flytekit fails converting the input, inside the task."""
    return f"{e.name} at {e.when.isoformat()}"


# -- structured datasets, files, directories ----------------------------------------------------


@flytekit.task
def t_df_out(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"a": list(range(n)), "b": [f"row-{i}" for i in range(n)], "c": [i * 0.25 for i in range(n)]}
    )


def csv_frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"a": [10 * i for i in range(n)], "b": [f"csv-{i}" for i in range(n)]})


@flytekit.task
def t_df_csv_out(n: int) -> Annotated[StructuredDataset, CSV]:
    """A data frame written as CSV: a reader that loses the producer's format reads it as parquet."""
    return StructuredDataset(dataframe=csv_frame(n))


@flytekit.task
def t_df_in(df: pd.DataFrame) -> str:
    return f"{len(df)} rows; columns {list(df.columns)}; sum(a)={int(df['a'].sum())}"


@flytekit.task
def t_file_out(text: str) -> FlyteFile:
    path = pathlib.Path(flytekit.current_context().working_directory) / "greeting.txt"
    path.write_text(f"{text}\n" * 3)
    return FlyteFile(str(path))


@flytekit.task
def t_file_in(f: FlyteFile) -> str:
    with open(f) as fh:
        return fh.read().strip().upper()


@flytekit.task
def t_dir_out(n: int) -> FlyteDirectory:
    folder = pathlib.Path(flytekit.current_context().working_directory) / "parts"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"part-{i}.txt").write_text(f"part {i} of {n}\n")
    return FlyteDirectory(str(folder))


@flytekit.task
def t_dir_in(d: FlyteDirectory) -> str:
    root = pathlib.Path(d.download())
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return "; ".join(f"{p.relative_to(root).as_posix()}={p.read_text().strip()}" for p in files)


def shouted(text: str, data_dir: pathlib.Path) -> FlyteFile:
    """What the conformance DAG's ``shout_file`` returns for ``file_out``'s file: ``file_chain``'s
    input (t_file_out(text) writes the text three times)."""
    path = data_dir / "shouted.txt"
    path.write_text(f"{text}\n" * 3 + "!!!\n")
    return FlyteFile(str(path))


def indexed(n: int, data_dir: pathlib.Path) -> FlyteDirectory:
    """What the conformance DAG's ``index_parts`` returns for ``dir_out``'s folder of n parts:
    ``dir_chain``'s input."""
    folder = data_dir / "indexed"
    (folder / "parts").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / "parts" / f"part-{i}.txt").write_text(f"part {i} of {n}\n")
    (folder / "index.txt").write_text(f"{n} parts\n")
    return FlyteDirectory(str(folder))


# -- several outputs, no outputs -----------------------------------------------------------------


@flytekit.task
def t_namedtuple(xs: list[int]) -> Stats:
    return Stats(total=sum(xs), mean=sum(xs) / len(xs), label=f"{len(xs)} values")


@flytekit.task
def t_no_outputs(x: int) -> None:
    print(f"t_no_outputs got {x}")


# -- failures ------------------------------------------------------------------------------------


@flytekit.task(retries=2)
def t_no_outputs_raises(x: int) -> None:
    raise RuntimeError(f"t_no_outputs_raises refuses x={x}")


@flytekit.task(retries=2)
def t_user_error(x: int) -> int:
    if x < 0:
        raise ValueError(f"x must be non-negative, got {x}")
    return x


@flytekit.task(retries=1)
def t_recoverable(x: int) -> int:
    if attempt() == 0:
        raise FlyteRecoverableException(f"transient trouble on attempt 0 (x={x})")
    return x + 100 * attempt()


@flytekit.task(retries=1)
def t_checkpoint(n: int) -> str:
    cp = flytekit.current_context().checkpoint
    previous = cp.read()
    if attempt() == 0:
        cp.write(f"progress={n}".encode())
        raise FlyteRecoverableException("attempt 0 wrote a checkpoint and stops here")
    if previous is None:
        raise ValueError(f"attempt {attempt()}: no previous checkpoint to resume from")
    return f"attempt {attempt()} resumed from {previous.decode()}"


# -- large outputs -------------------------------------------------------------------------------


@flytekit.task
def t_large_str(mb: int) -> str:
    return ("0123456789abcdef" * 65536) * mb  # 1 MiB per unit


@flytekit.task
def t_large_list(n: int) -> list[int]:
    return list(range(n))


# -- chains with @task.executor ------------------------------------------------------------------


@flytekit.task
def t_report(words: list[str]) -> Report:
    counts: dict[str, int] = {}
    for w in words:
        counts[w] = counts.get(w, 0) + 1
    return Report(color=Color.GREEN, counts=counts)


@flytekit.task
def t_summarize(xs: list[int], meta: dict) -> str:
    return f"{meta['name']}: n={len(xs)} total={sum(xs)} scale={meta['scale']}"


# -- the cases -----------------------------------------------------------------------------------

WHEN = datetime.datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=datetime.UTC)


def _data_file(data_dir: pathlib.Path) -> FlyteFile:
    path = data_dir / "hello.txt"
    path.write_text("hello from the flytekit side\n")
    return FlyteFile(str(path))


def _data_frame(_: pathlib.Path) -> pd.DataFrame:
    return pd.DataFrame({"a": [3, 1, 2], "b": ["x", "y", "z"]})


TRIANGLE = Shape(
    name="triangle",
    origin=Point(10, 0.5, "origin"),
    vertices=[Point(0, 0.0, "a"), Point(1, 0.0, "b"), Point(0, 1.0, "c")],
    tags={"sides": 3},
    note="right-angled",
)

CaseInputs = Callable[[pathlib.Path], dict[str, typing.Any]]

CASES: dict[str, tuple[typing.Any, CaseInputs]] = {
    # name: (task, inputs(data_dir) -> {input: Python value})
    "int": (t_int, lambda d: {"x": 20}),
    "float": (t_float, lambda d: {"x": 2.5}),
    "str": (t_str, lambda d: {"s": "héllo wörld"}),
    "bool": (t_bool, lambda d: {"b": False}),
    "many_scalars": (t_many_scalars, lambda d: {"a": -7, "b": 0.1, "c": "", "d": True}),
    "datetime": (t_datetime, lambda d: {"when": WHEN}),
    "timedelta": (t_timedelta, lambda d: {"d": datetime.timedelta(minutes=1, seconds=30, microseconds=5)}),
    "list_int": (t_list_int, lambda d: {"xs": [1, 2, 3, -4]}),
    "dict_str_float": (t_dict_str_float, lambda d: {"d": {"a": 1.0, "b": 3.5}}),
    "nested_list": (t_nested_list, lambda d: {"rows": [["a", "b"], [], ["c"]]}),
    "dict_of_lists": (t_dict_of_lists, lambda d: {"d": {"p": [3, 1, 2], "q": []}}),
    "bare_dict": (t_bare_dict, lambda d: {"d": {"a": 1, "b": 2, "c": 30}}),
    "optional_given": (t_optional, lambda d: {"x": 41}),
    "optional_none": (t_optional, lambda d: {"x": None}),
    "union_int": (t_union, lambda d: {"v": 21}),
    "union_str": (t_union, lambda d: {"v": "ab"}),
    "enum": (t_enum, lambda d: {"c": Color.BLUE}),
    "dataclass": (t_dataclass, lambda d: {"p": Point(x=1, y=2.5, label="p")}),
    "nested_dataclass": (t_nested_dataclass, lambda d: {"s": TRIANGLE}),
    "list_dataclass": (
        t_list_dataclass,
        lambda d: {"ps": [Point(3, 0.5, "c"), Point(1, 1.5, "a"), Point(2, 2.5)]},
    ),
    "pydantic": (t_pydantic, lambda d: {"o": Order(id=7, items=["book", "pen"], price=12.5)}),
    "df_out": (t_df_out, lambda d: {"n": 5}),
    "df_in": (t_df_in, lambda d: {"df": _data_frame(d)}),
    "file_out": (t_file_out, lambda d: {"text": "flyte file"}),
    "file_in": (t_file_in, lambda d: {"f": _data_file(d)}),
    "dir_out": (t_dir_out, lambda d: {"n": 3}),
    "namedtuple": (t_namedtuple, lambda d: {"xs": [2, 4, 9]}),
    "no_outputs": (t_no_outputs, lambda d: {"x": 1}),
    "no_outputs_raises": (t_no_outputs_raises, lambda d: {"x": 13}),
    "user_error": (t_user_error, lambda d: {"x": -5}),
    "recoverable": (t_recoverable, lambda d: {"x": 7}),
    # The same task: its retries come only from the template's metadata (Flyte's own retry policy).
    "recoverable_template_retries": (t_recoverable, lambda d: {"x": 8}),
    # The wrong type arrives through inputs.pb (a dict whose "x" is a string), as it would from an
    # upstream task or a launch plan: flytekit fails converting the input, naming the field.
    "bad_dataclass_input": (t_bad_dataclass_input, lambda d: {"p": {"x": "oops", "y": 2.5, "label": "p"}}),
    "bad_event_input": (t_bad_event_input, lambda d: {"e": {"name": "launch", "when": "not a date"}}),
    "checkpoint": (t_checkpoint, lambda d: {"n": 42}),
    "large_str": (t_large_str, lambda d: {"mb": 5}),
    "large_list": (t_large_list, lambda d: {"n": 200_000}),
    # Chains (see tests/conformance/dags/conformance_local.py): upstream/downstream @task.executor.
    "chain_report": (t_report, lambda d: {"words": ["a", "b", "a", "c", "a"]}),
    # df_out's output (a structured dataset, through XCom) into t_df_in: the producer's metadata must
    # survive the trip. The Python input is what t_df_out(n=5) returns.
    "df_chain": (t_df_in, lambda d: {"df": t_df_out.task_function(5)}),
    "df_csv_out": (t_df_csv_out, lambda d: {"n": 4}),
    # ... and the same with a CSV dataset: its format must survive too (else flytekit reads nothing).
    "df_csv_chain": (t_df_in, lambda d: {"df": csv_frame(4)}),
    "date": (t_date, lambda d: {"d": datetime.date(2026, 2, 28)}),
    # nested_dataclass's output through the @task.executor reshape_shape, into the same flytekit task.
    "dataclass_chain": (
        t_nested_dataclass,
        lambda d: {"s": reshape(t_nested_dataclass.task_function(TRIANGLE))},
    ),
    # df_csv_out's CSV through the @task.executor enrich_frame (pandas), into t_df_in.
    "frame_chain": (t_df_in, lambda d: {"df": enrich(csv_frame(4))}),
    # df_out's parquet through the @task.executor drop_first_row (pyarrow), into t_df_in.
    "arrow_chain": (t_df_in, lambda d: {"df": t_df_out.task_function(5).iloc[1:].reset_index(drop=True)}),
    # file_out's FlyteFile through the @task.executor shout_file (a File), into t_file_in.
    "file_chain": (t_file_in, lambda d: {"f": shouted("flyte file", d)}),
    # dir_out's FlyteDirectory through the @task.executor index_parts (a Directory), into t_dir_in.
    "dir_chain": (t_dir_in, lambda d: {"d": indexed(3, d)}),
    "chain_summarize": (
        t_summarize,
        lambda d: {"xs": [1, 2, 3, 4], "meta": {"name": "squares", "scale": 10}},
    ),
}
"""Inputs given with a type other than the declared one (``bad_dataclass_input``) are turned into
literals by TypeEngine for the *given* value's type, the way a mismatched upstream would send them."""
