"""Conformance DAG: every flytekit case on the local executor, plus the chains with ``@task.executor``.

Each case is one ``ExecutorOperator`` given the ``task.pb`` flytekit serialized (its
``pyflyte-execute`` command unchanged) and the case's plain inputs, all read from the folder
``flytekit_side.py serialize`` wrote (``$CONFORMANCE_OUTDIR``; without it the DAG is empty). The
tasks run ``pyflyte-execute`` from ``.venv-flytekit`` (the stand-in for the task image): it comes
first on the ``PATH`` given through ``environment=``, and the corpus module is on ``PYTHONPATH``.
See tests/conformance/test_conformance.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from typing import Any, TypedDict

import pandas as pd
import pyarrow as pa
from airflow.sdk import DAG, task

from executors import Directory, File
from tests.airflow_provider.dagtest import recording_default_args
from tests.conformance.airflow_side import case_operator, load_index, selected
from tests.conformance.cases import (
    CASES,
    CHAIN_ARROW,
    CHAIN_DESCRIBE,
    CHAIN_ENRICH,
    CHAIN_INDEX,
    CHAIN_MAKE_INPUTS,
    CHAIN_RESHAPE,
    CHAIN_SHOUT,
    LOCAL_DAG_ID,
    RECEIVE_NONE,
    RECEIVE_VALUES,
)


class Color(enum.Enum):
    """The corpus's ``flyte_tasks.Color``, as a DAG author would declare it on the Airflow side."""

    RED = "red"
    GREEN = "green"
    BLUE = "blue"


@dataclasses.dataclass
class Point:
    """The corpus's ``flyte_tasks.Point``, declared again on the Airflow side."""

    x: int
    y: float
    label: str = ""


@dataclasses.dataclass
class Shape:
    """The corpus's ``flyte_tasks.Shape``, declared again on the Airflow side."""

    name: str
    origin: Point
    vertices: list[Point]
    tags: dict[str, int] = dataclasses.field(default_factory=dict)
    note: str | None = None


class SummaryInputs(TypedDict):
    xs: list[int]
    meta: dict  # type: ignore[type-arg]


with DAG(
    dag_id=LOCAL_DAG_ID,
    schedule=None,
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    default_args=recording_default_args(),
) as dag:
    index = load_index()
    if index:
        ops = {
            name: case_operator(name, index[name], executor_id="local")
            for name, case in CASES.items()
            if not case.upstream and selected(name)
        }

        if selected(CHAIN_DESCRIBE):
            # A flytekit task's outputs (an Enum, a dict[str, int]) into a @task.executor function.
            @task.executor(task_id=CHAIN_DESCRIBE, poll_interval=0.2)
            def describe_report(color: Color, counts: dict[str, int]) -> str:
                import enum as enum_module

                if not isinstance(color, enum_module.Enum):
                    raise TypeError(
                        f"color arrived as {type(color).__name__} {color!r}, not as a Color member"
                    )
                return f"{color.name}={color.value}; " + ", ".join(
                    f"{k}:{v}" for k, v in sorted(counts.items())
                )

            describe_report(ops["chain_report"].output["color"], ops["chain_report"].output["counts"])

        if selected("chain_summarize"):
            # A @task.executor function's outputs (a list[int], a bare dict) into a flytekit task.
            @task.executor(task_id=CHAIN_MAKE_INPUTS, poll_interval=0.2)
            def make_summary_inputs(n: int, name: str) -> SummaryInputs:
                return {"xs": list(range(1, n + 1)), "meta": {"name": name, "scale": 10}}

            made = make_summary_inputs(4, "squares")
            ops["chain_summarize"] = case_operator(
                "chain_summarize",
                index["chain_summarize"],
                executor_id="local",
                inputs={"xs": made["xs"], "meta": made["meta"]},
            )

        if selected("dataclass_chain"):
            # flytekit's nested dataclass into a @task.executor function declaring its own Shape,
            # whose Shape return feeds the same flytekit task again.
            @task.executor(task_id=CHAIN_RESHAPE, poll_interval=0.2)
            def reshape_shape(s: Shape) -> Shape:
                import dataclasses as dataclasses_module

                kinds = [type(s).__name__, type(s.origin).__name__, *(type(v).__name__ for v in s.vertices)]
                if not dataclasses_module.is_dataclass(s) or set(kinds) != {"Shape", "Point"}:
                    raise TypeError(f"the shape arrived as {kinds}: {s!r}")
                return Shape(
                    name=s.name + " reversed",
                    origin=Point(s.origin.x - 1, s.origin.y, s.origin.label),
                    vertices=list(reversed(s.vertices)),
                    tags={**s.tags, "reshaped": 1},
                    note=None,
                )

            if "nested_dataclass" not in ops:
                ops["nested_dataclass"] = case_operator(
                    "nested_dataclass", index["nested_dataclass"], executor_id="local"
                )
            reshaped = reshape_shape(ops["nested_dataclass"].output["o0"])
            ops["dataclass_chain"] = case_operator(
                "dataclass_chain", index["dataclass_chain"], executor_id="local", inputs={"s": reshaped}
            )

        if selected("frame_chain"):
            # flytekit's CSV dataset into a @task.executor function reading a pandas DataFrame; the
            # DataFrame it returns (written as flytekit writes parquet) into flytekit's t_df_in.
            @task.executor(task_id=CHAIN_ENRICH, poll_interval=0.2)
            def enrich_frame(df: pd.DataFrame) -> pd.DataFrame:
                import pandas

                if not isinstance(df, pandas.DataFrame):
                    raise TypeError(f"df arrived as {type(df).__name__}")
                return df.assign(a=df["a"] + 1, doubled=df["a"] * 2)

            if "df_csv_out" not in ops:
                ops["df_csv_out"] = case_operator("df_csv_out", index["df_csv_out"], executor_id="local")
            enriched = enrich_frame(ops["df_csv_out"].output["o0"])
            ops["frame_chain"] = case_operator(
                "frame_chain", index["frame_chain"], executor_id="local", inputs={"df": enriched}
            )

        if selected("arrow_chain"):
            # flytekit's parquet dataset as a pyarrow Table, and a Table back.
            @task.executor(task_id=CHAIN_ARROW, poll_interval=0.2)
            def drop_first_row(t: pa.Table) -> pa.Table:
                import pyarrow

                if not isinstance(t, pyarrow.Table):
                    raise TypeError(f"t arrived as {type(t).__name__}")
                return t.slice(1)

            if "df_out" not in ops:
                ops["df_out"] = case_operator("df_out", index["df_out"], executor_id="local")
            dropped = drop_first_row(ops["df_out"].output["o0"])
            ops["arrow_chain"] = case_operator(
                "arrow_chain", index["arrow_chain"], executor_id="local", inputs={"df": dropped}
            )

        if selected("file_chain"):
            # flytekit's FlyteFile as a File (read lazily), and a File the function wrote, uploaded by
            # the runner, into flytekit's t_file_in.
            @task.executor(task_id=CHAIN_SHOUT, poll_interval=0.2)
            def shout_file(f: File) -> File:
                if not isinstance(f, File):
                    raise TypeError(f"f arrived as {type(f).__name__} {f!r}")
                with f.open("r") as source:  # streamed through fsspec, no download
                    text = source.read()
                with open("shouted.txt", "w") as target:  # the task's working directory
                    target.write(text + "!!!\n")
                return File("shouted.txt")

            if "file_out" not in ops:
                ops["file_out"] = case_operator("file_out", index["file_out"], executor_id="local")
            shouted = shout_file(ops["file_out"].output["o0"])
            ops["file_chain"] = case_operator(
                "file_chain", index["file_chain"], executor_id="local", inputs={"f": shouted}
            )

        if selected("dir_chain"):
            # flytekit's FlyteDirectory as a Directory, and a folder the function wrote back.
            @task.executor(task_id=CHAIN_INDEX, poll_interval=0.2)
            def index_parts(d: Directory) -> Directory:
                import os
                import shutil

                parts = d.files()  # listed without downloading
                os.makedirs("indexed", exist_ok=True)
                shutil.copytree(os.fspath(d), "indexed/parts")  # downloaded once, here
                with open("indexed/index.txt", "w") as index:
                    index.write(f"{len(parts)} parts\n")
                return Directory("indexed")

            if "dir_out" not in ops:
                ops["dir_out"] = case_operator("dir_out", index["dir_out"], executor_id="local")
            indexed = index_parts(ops["dir_out"].output["o0"])
            ops["dir_chain"] = case_operator(
                "dir_chain", index["dir_chain"], executor_id="local", inputs={"d": indexed}
            )

        for chain, producer in (("df_chain", "df_out"), ("df_csv_chain", "df_csv_out")):
            if selected(chain):
                # A structured dataset output (its XCom) into a flytekit task reading a DataFrame.
                if producer not in ops:
                    ops[producer] = case_operator(producer, index[producer], executor_id="local")
                ops[chain] = case_operator(
                    chain, index[chain], executor_id="local", inputs={"df": ops[producer].output["o0"]}
                )

        if selected(RECEIVE_NONE):
            # An Optional output that is None, into a plain @task: it must receive None.
            @task(task_id=RECEIVE_NONE)
            def receive_none(value: Any) -> dict[str, Any]:
                return {"is_none": value is None, "repr": repr(value)}

            receive_none(ops["optional_none"].output["o0"])

        if selected(RECEIVE_VALUES):
            # Typed outputs into a plain @task: what Airflow really hands a downstream task.
            @task(task_id=RECEIVE_VALUES)
            def receive_values(mean: Any, when: Any, duration: Any) -> dict[str, Any]:
                import datetime as datetime_module

                return {
                    "mean": f"{type(mean).__name__} {mean!r}",
                    "when": f"{isinstance(when, datetime_module.datetime)} {when.isoformat()}"
                    if isinstance(when, datetime_module.date)
                    else f"False {when!r}",
                    "duration": f"{isinstance(duration, datetime_module.timedelta)} {duration!r}",
                }

            receive_values(
                ops["namedtuple"].output["mean"], ops["datetime"].output["o0"], ops["timedelta"].output["o0"]
            )
