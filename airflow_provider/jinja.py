"""Keep Flyte's ``{{.input}}`` placeholders away from Airflow's Jinja rendering."""

from __future__ import annotations

from typing import Any

_OPEN, _CLOSE = "{% raw %}", "{% endraw %}"
_MARKERS = ("{{", "{%", "{#")


def jinja_protect(value: Any) -> Any:
    """A copy in which every string holding Jinja syntax renders back to itself."""
    if isinstance(value, str):
        if any(m in value for m in _MARKERS) and _CLOSE not in value:
            return f"{_OPEN}{value}{_CLOSE}"
        return value
    if isinstance(value, dict):
        return {k: jinja_protect(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jinja_protect(v) for v in value]
    return value


def jinja_unprotect(value: Any) -> Any:
    """Undo :func:`jinja_protect` (a no-op on values Jinja already rendered)."""
    if isinstance(value, str):
        if value.startswith(_OPEN) and value.endswith(_CLOSE):
            return value[len(_OPEN) : -len(_CLOSE)]
        return value
    if isinstance(value, dict):
        return {k: jinja_unprotect(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jinja_unprotect(v) for v in value]
    return value
