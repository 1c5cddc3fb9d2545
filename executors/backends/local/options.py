"""The local executor's options: their defaults and the checks of the values it is built with.

Strings are accepted so that values can come from a config file; a bad value is a ValueError naming
the option (``local executor option <name>: <requirement>, got <value>``).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Sequence

from executors.backends.local.validation import env_name_problem

DEFAULT_INHERITED_ENV = (
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
    "PYTHONPATH", "VIRTUAL_ENV",
)  # fmt: skip
"""Variables of the starting process passed on to tasks. Deliberately short: an Airflow process's
environment holds its own secrets (database URLs, Fernet key) that a task must not see."""

DEFAULT_MAX_LOG_BYTES = 64 << 20


def _bad_option(name: str, requirement: str, value: object) -> ValueError:
    return ValueError(f"local executor option {name}: {requirement}, got {value!r}")


def whole_option(name: str, value: object, *, positive: bool) -> int:
    requirement = f"must be a whole number {'> 0' if positive else '>= 0'}"
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif (isinstance(value, float) and value.is_integer()) or (
        isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value)
    ):
        number = int(value)
    if number is None or number < (1 if positive else 0):
        raise _bad_option(name, requirement, value)
    return number


def seconds_option(name: str, value: object, *, positive: bool) -> float:
    requirement = f"must be a number of seconds {'> 0' if positive else '>= 0'}"
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            number = float(value)
    if number is None or not math.isfinite(number) or number < 0 or (positive and number == 0):
        raise _bad_option(name, requirement, value)
    return number


def names_option(name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [n for n in re.split(r"[\s,]+", value) if n]
    if not isinstance(value, Sequence):
        raise _bad_option(name, "must be a list of variable names", value)
    for item in value:
        if not isinstance(item, str) or env_name_problem(item) is not None:
            raise _bad_option(name, "names must be non-empty and contain neither '=' nor a NUL byte", item)
    return tuple(value)


def folder_option(name: str, value: object) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str | os.PathLike):
        return os.fspath(value)
    raise _bad_option(name, "must be a folder path", value)
