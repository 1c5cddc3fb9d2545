from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from flyteidl.core import literals_pb2

from executors.catalog import CacheKeyError, cache_key
from executors.core.cache import Cache
from executors.data.literals import to_literal_map
from executors.data.task_template import build_task_template


def template(**overrides: object):  # type: ignore[no-untyped-def]
    kwargs: dict = dict(  # type: ignore[type-arg]
        name="team.clean",
        inputs={"x": int, "weights": dict[str, float], "note": str},
        outputs={"y": float},
        cache=Cache(version="1"),
    )
    kwargs.update(overrides)
    return build_task_template(["true"], **kwargs)


def inputs_for(t, **values):  # type: ignore[no-untyped-def]
    base = {"x": 1, "weights": {"a": 0.5, "b": 1.5, "c": 2.0}, "note": "hi"}
    base.update(values)
    return to_literal_map(base, t.interface.inputs)


def test_map_order_does_not_matter() -> None:
    t = template()
    forward = inputs_for(t, weights={"a": 0.5, "b": 1.5, "c": 2.0})
    backward = inputs_for(t, weights={"c": 2.0, "b": 1.5, "a": 0.5})
    assert cache_key(t, forward) == cache_key(t, backward)


REPO = str(Path(__file__).resolve().parents[3])

SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from tests.executors.catalog.test_key import template, inputs_for
    from executors.catalog import cache_key
    t = template()
    print(cache_key(t, inputs_for(t, weights={"c": 2.0, "a": 0.5, "b": 1.5})))
    """
)


def test_key_is_the_same_in_another_process_with_another_hash_seed() -> None:
    t = template()
    here = str(cache_key(t, inputs_for(t)))
    for seed in ("1", "12345"):
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT, "."], capture_output=True, text=True, check=True,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"}, cwd=REPO,
        )  # fmt: skip
        assert out.stdout.strip() == here


def test_key_shape_follows_flyte() -> None:
    t = template()
    t.id.project, t.id.domain = "proj", "dev"
    key = cache_key(t, inputs_for(t))
    assert (key.project, key.domain, key.dataset) == ("proj", "dev", "flyte_task-team.clean")
    version, in8, out8 = key.version.split("-")
    assert version == "1" and len(in8) == 8 and len(out8) == 8
    assert key.tag.startswith("flyte_cached-") and len(key.tag) == len("flyte_cached-") + 64


def test_a_key_reads_without_empty_parts() -> None:
    # A task built from a command has no project or domain: the key is not printed as "//name".
    t = template()
    key = cache_key(t, inputs_for(t))
    assert str(key) == f"flyte_task-team.clean@{key.version}:{key.tag}"
    t.id.project, t.id.domain = "proj", "dev"
    key = cache_key(t, inputs_for(t))
    assert str(key) == f"proj/dev/flyte_task-team.clean@{key.version}:{key.tag}"


def test_different_inputs_give_different_tags() -> None:
    t = template()
    assert cache_key(t, inputs_for(t, x=1)).tag != cache_key(t, inputs_for(t, x=2)).tag
    assert (
        cache_key(t, inputs_for(t, weights={"a": 0.5})).tag
        != cache_key(t, inputs_for(t, weights={"a": 0.25})).tag
    )


def test_ignored_inputs_do_not_count() -> None:
    t = template(cache=Cache(version="1", ignored_inputs=("note",)))
    assert cache_key(t, inputs_for(t, note="a")) == cache_key(t, inputs_for(t, note="b"))
    assert cache_key(t, inputs_for(t, x=1)) != cache_key(t, inputs_for(t, x=2))


def test_literal_hash_replaces_the_value() -> None:
    t = template()
    a, b = inputs_for(t, note="first"), inputs_for(t, note="second")
    a.literals["note"].hash = "same-content-hash"
    b.literals["note"].hash = "same-content-hash"
    assert cache_key(t, a) == cache_key(t, b)
    b.literals["note"].hash = "other"
    assert cache_key(t, a) != cache_key(t, b)


def test_interface_change_is_a_new_dataset_version_and_version_bump_too() -> None:
    base = cache_key(template(), inputs_for(template()))
    retyped = template(outputs={"y": int})
    assert cache_key(retyped, inputs_for(retyped)).version != base.version
    bumped = template(cache=Cache(version="2"))
    key = cache_key(bumped, inputs_for(bumped))
    assert key.version != base.version and key.tag == base.tag


def test_descriptions_do_not_change_the_key() -> None:
    t = template()
    before = cache_key(t, inputs_for(t))
    t.interface.inputs.variables["x"].description = "the x value, documented"
    assert cache_key(t, inputs_for(t)) == before


def test_discoverable_without_version_is_a_clear_error() -> None:
    t = template(cache=Cache(version=""))
    with pytest.raises(CacheKeyError, match="team.clean is discoverable but has no discovery_version"):
        cache_key(t, inputs_for(t))


def test_not_discoverable_is_an_error() -> None:
    t = template(cache=None)
    with pytest.raises(CacheKeyError, match="not discoverable"):
        cache_key(t, literals_pb2.LiteralMap())


def test_floats_are_hashed_exactly() -> None:
    t = template()
    assert (
        cache_key(t, inputs_for(t, weights={"a": 0.1 + 0.2})).tag
        != cache_key(t, inputs_for(t, weights={"a": 0.3})).tag
    )
