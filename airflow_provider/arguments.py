"""The operator's arguments, checked and normalised once, at DAG parse time.

Only what can be had without I/O beyond a local file is read here; anything else (a remote
template, Airflow configuration) is read, and reported, when the task runs.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Mapping, MutableMapping
from typing import Any

from flyteidl.core import tasks_pb2

from airflow_provider.template_field import TaskTemplateField
from executors import ExecutorsError
from executors.data.storage import is_local, local_path
from executors.data.task_template import parse_template_bytes, template_from_dict, template_to_dict


def positive_seconds(name: str, value: dt.timedelta | float | None, task_id: str) -> float | None:
    """``None`` (the default) or a positive number of seconds: ``poll_interval=0`` would busy-poll a
    core and ``timeout=0`` would silently mean no timeout, so both are errors naming the option."""
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, dt.timedelta) else value
    number = isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
    if not number or not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(
            f"{task_id}: {name} must be a positive number of seconds (or None for the default), got {value!r}"
        )
    return float(seconds)


def template_known_at_parse_time(source: Any) -> tasks_pb2.TaskTemplate | None:
    """The template when it can be had without I/O beyond a local file: an object, its JSON form, or
    a local ``.pb``/``.json`` path. ``None`` otherwise (a remote URL, a missing or bad file: those are
    read, and reported, when the task runs)."""
    try:
        if isinstance(source, tasks_pb2.TaskTemplate):
            return source
        if isinstance(source, TaskTemplateField):
            return template_from_dict(source.value)
        if isinstance(source, Mapping):
            return template_from_dict(source)
        if isinstance(source, (str, os.PathLike)) and is_local(os.fspath(source)):
            with open(local_path(os.fspath(source)), "rb") as fh:
                return parse_template_bytes(fh.read(1 << 24), where=os.fspath(source))
    except (OSError, ExecutorsError):
        return None
    return None


def apply_template_metadata(
    kwargs: MutableMapping[str, Any], source: Any, timeout: dt.timedelta | float | None
) -> dt.timedelta | float | None:
    """What the template's own metadata says (retries, timeout), as on Flyte, unless the DAG says
    otherwise: sets ``kwargs["retries"]`` and returns the timeout to use."""
    template = template_known_at_parse_time(source)
    if template is None:
        return timeout
    defaults = kwargs.get("default_args") or {}
    if template.metadata.retries.retries and "retries" not in kwargs and "retries" not in defaults:
        kwargs["retries"] = template.metadata.retries.retries
    if timeout is None and template.metadata.HasField("timeout") and template.metadata.timeout.ToSeconds():
        limit: dt.timedelta = template.metadata.timeout.ToTimedelta()
        return limit
    return timeout


def stored_template(source: Any) -> Any:
    """The template as the operator keeps it: JSON in an object Jinja leaves alone (see
    template_field.py), or the path/URL as given."""
    if isinstance(source, tasks_pb2.TaskTemplate):
        source = template_to_dict(source)
    if isinstance(source, Mapping):
        return TaskTemplateField(dict(source))
    return source


def check_environment(environment: Mapping[Any, Any]) -> None:
    """Environment values must map strings to strings."""
    bad = [k for k, v in environment.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise TypeError(f"environment variable(s) {', '.join(map(repr, bad))} must map strings to strings")
