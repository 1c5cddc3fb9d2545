"""Record classes declared the same way on both sides of the flytekit comparison.

Imported by ``test_record_types.py`` (this project's venv) and loaded by path by
``fixtures/flytekit/records.py`` (inside ``.venv-flytekit``), so it needs nothing but the standard library
and pydantic, which both venvs have.
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass, field
from typing import Optional

from pydantic import BaseModel


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Point:
    x: int
    y: float
    label: str = ""


@dataclass
class Visit:
    where: Point
    stops: list[Point]
    by_name: dict[str, Point]
    color: Color
    day: datetime.date
    at: datetime.datetime
    took: datetime.timedelta
    note: Optional[str] = None  # noqa: UP045 - flytekit's own spelling
    tags: list[str] = field(default_factory=list)
    ok: bool = True


class Item(BaseModel):
    n: int
    name: str = "item"


class Order(BaseModel):
    id: int
    items: list[Item]
    day: datetime.date
    express: bool = False


def instances() -> dict[str, object]:
    """One value of each class, by class name."""
    return {
        "Point": Point(1, 2.5, "p"),
        "Visit": Visit(
            where=Point(0, 0.0),
            stops=[Point(1, 1.5, "a"), Point(2, 2.5, "b")],
            by_name={"home": Point(3, 3.5, "h")},
            color=Color.BLUE,
            day=datetime.date(2026, 2, 3),
            at=datetime.datetime(2026, 2, 3, 4, 5, 6, 7000),
            took=datetime.timedelta(minutes=1, seconds=30),
            tags=["x"],
        ),
        "Order": Order(id=7, items=[Item(n=1), Item(n=2, name="pen")], day=datetime.date(2026, 1, 2)),
    }
