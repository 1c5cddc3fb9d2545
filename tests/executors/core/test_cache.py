"""Cache: the catalog settings as one value, written into a template's metadata."""

from __future__ import annotations

import pytest
from flyteidl.core import tasks_pb2

from executors import Cache
from executors.core.cache import refuse_legacy_cache_arguments
from executors.data.task_template import build_task_template


def test_cache_settings_land_in_the_template_metadata() -> None:
    template = build_task_template(
        ["true"], name="t", inputs={"x": int, "note": str},
        cache=Cache(version="2", serialize=True, ignored_inputs=["note"]),  # type: ignore[arg-type]
    )  # fmt: skip
    meta = template.metadata
    assert (meta.discoverable, meta.discovery_version, meta.cache_serializable) == (True, "2", True)
    assert list(meta.cache_ignore_input_vars) == ["note"]


def test_no_cache_leaves_the_template_uncached() -> None:
    meta = build_task_template(["true"], name="t").metadata
    assert (meta.discoverable, meta.discovery_version, meta.cache_serializable) == (False, "", False)


def test_apply_replaces_what_the_metadata_said() -> None:
    meta = tasks_pb2.TaskMetadata(cache_ignore_input_vars=["old"])
    Cache(version="1", ignored_inputs=("new",)).apply(meta)
    assert list(meta.cache_ignore_input_vars) == ["new"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(False, None), (None, None), (True, Cache()), (Cache(version="3"), Cache(version="3"))],
)
def test_of_takes_a_flag_or_a_cache(value: object, expected: Cache | None) -> None:
    assert Cache.of(value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"version": 1}, "version=...) must be a string"),
        ({"ignored_inputs": "note"}, "ignored_inputs=...) must be a sequence of input names"),
        ({"ignored_inputs": ["a", 2]}, "ignored_inputs=...) must be a sequence of input names"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(TypeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Cache(**kwargs)  # type: ignore[arg-type]


def test_of_refuses_anything_else() -> None:
    with pytest.raises(TypeError, match=r"cache= takes True, False or Cache\(version=...\), got '1'"):
        Cache.of("1")  # type: ignore[arg-type]


def test_the_keywords_cache_replaced_are_refused_naming_the_replacement() -> None:
    with pytest.raises(TypeError) as refused:
        refuse_legacy_cache_arguments("MyOperator", ["task_id", "cache_version", "cache_serialize"])
    text = str(refused.value)
    assert text.startswith("MyOperator: cache_version= is now cache=Cache(version=...)")
    assert "cache_serialize= is now cache=Cache(serialize=True)" in text
    refuse_legacy_cache_arguments("MyOperator", ["task_id", "cache"])  # nothing legacy: no error
