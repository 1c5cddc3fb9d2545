"""The Ray executor's options that need no cluster."""

from __future__ import annotations

import pytest

from executors.backends.ray import RayExecutor


def test_entrypoint_resources_from_a_mapping_or_json() -> None:
    assert RayExecutor(
        address="http://ray:8265", entrypoint_resources={"gpu_node": 1}
    ).entrypoint_resources == {"gpu_node": 1.0}
    assert RayExecutor(address="http://ray:8265", entrypoint_resources='{"a": 0.5}').entrypoint_resources == {
        "a": 0.5
    }


@pytest.mark.parametrize("amount", [0, -1, "one", True])
def test_entrypoint_resources_must_be_positive_numbers_naming_the_resource(amount: object) -> None:
    with pytest.raises(ValueError, match=r"entrypoint_resources\['gpu_node'\]: expected a number > 0"):
        RayExecutor(address="http://ray:8265", entrypoint_resources={"gpu_node": amount})  # type: ignore[dict-item]
