"""The plain, JSON-comparable form of values, shared by both sides of the conformance suite.

Standard library only: imported by ``flytekit_side.py`` in ``.venv-flytekit`` (flytekit's own outputs,
the case inputs) and by the tests and DAG files in the project venv (XCom values). Both sides encode
with :func:`encode` and compare with :func:`diff`, which is strict about types: ``1`` is not ``1.0``,
``True`` is not ``1``, a naive datetime is not an aware one.

Tags (never valid plain values themselves): ``{"$datetime": iso}`` (aware datetimes in UTC),
``{"$naive_datetime": iso}``, ``{"$timedelta": [days, seconds, microseconds]}``, ``{"$uri": kind}``
(an output that arrives in XCom as a URI: blobs, structured datasets), ``{"$digest": sha256,
"$size": n}`` (a large value, compared by the digest of its canonical JSON).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import hashlib
import json
from typing import Any

LARGE = 64 * 1024
"""Plain values whose canonical JSON is longer than this are compared by digest."""


def encode(value: Any) -> Any:
    """A Python value (flytekit's native outputs, or XCom's plain values) in plain form."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float) and not isinstance(value, enum.Enum):
        return value
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            return {
                "$naive_datetime": datetime.datetime(*value.timetuple()[:6], value.microsecond).isoformat()
            }
        utc = value.astimezone(datetime.UTC)
        plain = datetime.datetime(*utc.timetuple()[:6], utc.microsecond, tzinfo=datetime.UTC)
        return {"$datetime": plain.isoformat()}
    if isinstance(value, datetime.date):
        # A date is a DATETIME literal (its midnight UTC, as flytekit writes it): Airflow's side reads
        # that literal as the aware datetime, so both compare in that form.
        return encode(datetime.datetime.combine(value, datetime.time.min, tzinfo=datetime.UTC))
    if isinstance(value, datetime.timedelta):
        return {"$timedelta": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, enum.Enum):
        return encode(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if hasattr(value, "model_dump") and callable(value.model_dump):  # a pydantic model
        return encode(value.model_dump())
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"plain dicts have string keys, got {type(k).__name__} {k!r}")
            out[k] = encode(v)
        return out
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    raise TypeError(f"no plain form for {type(value).__module__}.{type(value).__qualname__}: {value!r:.200}")


def decode(plain: Any) -> Any:
    """The Python value of a plain input (datetimes and timedeltas become real ones again)."""
    if isinstance(plain, list):
        return [decode(v) for v in plain]
    if isinstance(plain, dict):
        if set(plain) == {"$datetime"}:
            return datetime.datetime.fromisoformat(plain["$datetime"])
        if set(plain) == {"$naive_datetime"}:
            return datetime.datetime.fromisoformat(plain["$naive_datetime"])
        if set(plain) == {"$timedelta"}:
            days, seconds, micros = plain["$timedelta"]
            return datetime.timedelta(days=days, seconds=seconds, microseconds=micros)
        return {k: decode(v) for k, v in plain.items()}
    return plain


def canonical(plain: Any) -> str:
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def digest(plain: Any) -> dict[str, Any]:
    text = canonical(plain)
    return {"$digest": hashlib.sha256(text.encode()).hexdigest(), "$size": len(text)}


def shrink(plain: Any) -> Any:
    """``plain`` itself, or its digest when it is large."""
    return digest(plain) if len(canonical(plain)) > LARGE else plain


def _show(value: Any, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def diff(expected: Any, actual: Any, path: str = "$") -> list[str]:
    """Every difference between two plain values (``expected`` may be a digest), strictly typed."""
    if isinstance(expected, dict) and "$digest" in expected:
        got = digest(actual)
        if got != expected:
            return [f"{path}: expected a value of canonical size {expected['$size']} (sha256 "
                    f"{expected['$digest'][:12]}), got size {got['$size']} (sha256 {got['$digest'][:12]}): "
                    f"{_show(actual)}"]  # fmt: skip
        return []
    if type(expected) is not type(actual):
        return [
            f"{path}: expected {type(expected).__name__} {_show(expected)}, got {type(actual).__name__} {_show(actual)}"
        ]
    if isinstance(expected, dict):
        out = []
        for key in sorted(set(expected) | set(actual)):
            if key not in actual:
                out.append(f"{path}[{key!r}]: missing (expected {_show(expected[key])})")
            elif key not in expected:
                out.append(f"{path}[{key!r}]: unexpected {_show(actual[key])}")
            else:
                out.extend(diff(expected[key], actual[key], f"{path}[{key!r}]"))
        return out
    if isinstance(expected, list):
        if len(expected) != len(actual):
            return [f"{path}: expected {len(expected)} items, got {len(actual)}: {_show(actual)}"]
        out = []
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            out.extend(diff(e, a, f"{path}[{i}]"))
            if len(out) > 20:
                return [*out, "..."]
        return out
    if expected != actual:
        return [f"{path}: expected {_show(expected)}, got {_show(actual)}"]
    return []
