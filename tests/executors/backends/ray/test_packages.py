"""How the Ray executor adds the runner's package and requirements to a job's runtime env (no
cluster; the upload itself is tested on a real head in test_runner_shipping.py)."""

from __future__ import annotations

import pytest

from executors.backends.ray import RayExecutor
from executors.backends.ray.packages import package_name, with_pip_requirements, with_py_module


def test_the_package_is_named_by_its_content() -> None:
    assert package_name("ab" * 32) == f"_ray_pkg_{'ab' * 16}.zip"


def test_the_runner_module_comes_first_and_the_users_modules_stay() -> None:
    env = with_py_module({"py_modules": ["s3://b/mine.zip"], "env_vars": {"A": "1"}}, "gcs://_ray_pkg_x.zip")
    assert env == {"py_modules": ["gcs://_ray_pkg_x.zip", "s3://b/mine.zip"], "env_vars": {"A": "1"}}
    assert with_py_module(env, "gcs://_ray_pkg_x.zip")["py_modules"] == env["py_modules"]


def test_requirements_are_added_to_either_form_of_pip() -> None:
    assert with_pip_requirements({}, ["flyteidl<2"]) == {"pip": ["flyteidl<2"]}
    assert with_pip_requirements({"pip": ["pandas", "flyteidl<2"]}, ["flyteidl<2", "msgpack"])["pip"] == [
        "pandas", "flyteidl<2", "msgpack",
    ]  # fmt: skip
    merged = with_pip_requirements({"pip": {"packages": ["pandas"], "pip_check": False}}, ["msgpack"])
    assert merged["pip"] == {"packages": ["pandas", "msgpack"], "pip_check": False}


def test_a_pip_entry_that_cannot_take_requirements_fails_at_configuration() -> None:
    with pytest.raises(ValueError, match=r"runtime_env.pip: runner_dependencies='pip' adds .* not to str"):
        RayExecutor(
            address="http://ray:8265", runtime_env={"pip": "requirements.txt"}, runner_dependencies="pip"
        )
    RayExecutor(address="http://ray:8265", runtime_env={"pip": "requirements.txt"})  # fine without it


def test_runner_options() -> None:
    executor = RayExecutor(address="http://ray:8265", ship_runner="false", runner_dependencies="pip")
    assert (executor.ship_runner, executor.runner_dependencies) == (False, "pip")
    assert RayExecutor(address="http://ray:8265").ship_runner is True
    with pytest.raises(ValueError, match=r"runner_dependencies 'conda': expected 'installed' or 'pip'"):
        RayExecutor(address="http://ray:8265", runner_dependencies="conda")
