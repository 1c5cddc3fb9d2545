"""Operator-test DAG for ``@task.executor`` (see tests/airflow_provider/test_decorators.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from typing import Any, TypedDict

from airflow.sdk import DAG, task

from tests.airflow_provider.dagtest import recording_default_args


class Split(TypedDict):
    head: int
    tail: list[int]


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass
class Point:
    x: int
    y: float


@dataclasses.dataclass
class Route:
    name: str
    day: dt.date
    stops: list[Point]
    level: Level = Level.LOW


with DAG(
    dag_id="provider_test_taskflow",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    default_args=recording_default_args(),
) as dag:

    @task.executor(poll_interval=0.2)
    def square(x: int) -> int:
        return x * x

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    total(square.expand(x=[1, 2, 3]))

    @task.executor(poll_interval=0.2)
    def split(values: list[int]) -> Split:
        return Split(head=values[0], tail=values[1:])

    split([5, 6, 7])

    @task.executor(poll_interval=0.2, retries=3)
    def bad_value(x: int) -> int:
        raise ValueError(f"x={x} is not acceptable")

    bad_value(1)

    @task.executor(poll_interval=0.2, retries=1)
    def flaky(x: int) -> int:
        import os

        from executors.runtime.task_io import RecoverableError

        if os.environ["FLYTE_ATTEMPT_NUMBER"] == "0":
            raise RecoverableError("busy, try again")
        return x + 100

    flaky(1)

    @task.executor(poll_interval=0.2, retries=1, retry_on=(ConnectionError,))
    def network(x: int) -> int:
        import os

        if os.environ["FLYTE_ATTEMPT_NUMBER"] == "0":
            raise ConnectionRefusedError("backend down")  # a subclass of the listed ConnectionError
        return x

    network(7)

    @task.executor(poll_interval=0.2)
    def describe_color(c: Color, shades: list[Color], maybe: Color | None = None) -> str:
        # Members, not their values: .name and identity with the class the function names work.
        assert c is Color.RED and all(isinstance(s, Color) for s in shades), (c, shades)
        return f"{c.name}={c.value} {[s.name for s in shades]} {maybe}"

    describe_color(Color.RED, [Color.GREEN, Color.RED])

    @task.executor(poll_interval=0.2)
    def next_color(c: Color) -> Color:
        return Color.GREEN if c is Color.RED else Color.RED

    next_color("red")  # an enum input may also be given by value (as an upstream XCom would be)

    @task.executor(poll_interval=0.2)
    def count(d: dict) -> dict:  # type: ignore[type-arg]
        return {"n": d["n"] + 1, "type": type(d["n"]).__name__, "nested": d["nested"]}

    count({"n": 1, "nested": {"k": [1, 2.5]}})

    @task.executor(poll_interval=0.2, retries=3)
    def bad_return(x: int) -> int:
        return str(x)  # type: ignore[return-value]

    bad_return(1)

    @task.executor(poll_interval=0.2, retries=3)
    def not_a_number() -> float:
        return float("nan")

    not_a_number()

    @task.executor(poll_interval=0.2)
    def plan_route(n: int, day: dt.date) -> Route:
        return Route(f"r{n}", day, [Point(i, i / 2) for i in range(n)], Level.HIGH)

    @task.executor(poll_interval=0.2)
    def walk_route(route: Route, start: Point) -> str:
        import datetime

        # Instances of (stand-ins for) the DAG file's classes, the nested ones too.
        kinds = (type(route).__name__, type(route.stops[0]).__name__, type(start).__name__)
        assert kinds == ("Route", "Point", "Point"), kinds
        assert route.level is Level.HIGH and type(route.day) is datetime.date, (route.level, route.day)
        length = sum(
            abs(b.x - a.x) + abs(b.y - a.y) for a, b in zip(route.stops, route.stops[1:], strict=False)
        )
        return f"{route.name} {route.day.isoformat()} from ({start.x}, {start.y}) {length}"

    @task
    def read_route(route: Any) -> str:
        return f"{type(route).__name__} {route!r}"

    planned = plan_route(3, dt.date(2026, 3, 4))
    walk_route(planned, Point(5, 0.5))  # a dataclass instance written in the DAG file, as an input
    read_route(planned)
