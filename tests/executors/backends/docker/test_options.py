"""The container executor's options: a bad value names the option (no engine needed)."""

from __future__ import annotations

from typing import Any

import pytest

from executors.backends.docker import DockerExecutor
from executors.backends.docker.engine import resolve_address


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pull": "sometimes"}, "option pull: expected one of IfNotPresent, Always, Never"),
        ({"on_finish": "burn"}, "option on_finish: expected one of keep, delete, delete_succeeded"),
        ({"mounts": "[not json"}, "option mounts: not a JSON list"),
        ({"mounts": ["relative/path"]}, r"option mounts\[0\]: paths must be absolute"),
        ({"mounts": [{"target": "/x"}]}, r"option mounts\[0\]: expected a path or"),
        ({"request_timeout": 0}, "option request_timeout: must be > 0"),
        ({"address": "ftp://engine"}, "expected unix:///path/to/socket, tcp://host:port"),
    ],
)
def test_a_bad_option_names_itself(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DockerExecutor(**options)


def test_options_from_a_config_file_are_strings() -> None:
    executor = DockerExecutor(
        pull="always",
        on_finish="KEEP",
        mounts='["/data", {"source": "/a", "target": "/b", "read_only": true}]',
    )
    assert (executor.pull, executor.on_finish) == ("Always", "keep")
    assert executor.mounts == (("/data", "/data", False), ("/a", "/b", True))


def test_the_address_comes_from_docker_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.5:2375")
    assert resolve_address(None) == "tcp://10.0.0.5:2375"
    monkeypatch.delenv("DOCKER_HOST")
    assert resolve_address(None) == "unix:///var/run/docker.sock"
    assert resolve_address("/run/podman/podman.sock") == "unix:///run/podman/podman.sock"
