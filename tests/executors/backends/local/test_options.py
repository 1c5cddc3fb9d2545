"""The local executor's options are checked when it is built, each error naming the option."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flyteidl.core import literals_pb2

from executors import DataStore, ExecutorInitializationParameters
from executors.backends.local import LocalExecutor
from executors.data.storage import DataTooLargeError


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("max_concurrent", -1, "must be a whole number >= 0, got -1"),
        ("max_concurrent", "-1", "must be a whole number >= 0, got '-1'"),
        ("max_concurrent", "four", "must be a whole number >= 0, got 'four'"),
        ("max_concurrent", 2.5, "must be a whole number >= 0, got 2.5"),
        ("max_concurrent", True, "must be a whole number >= 0, got True"),
        ("kill_grace_period", -0.5, "must be a number of seconds >= 0, got -0.5"),
        ("kill_grace_period", "soon", "must be a number of seconds >= 0, got 'soon'"),
        ("kill_grace_period", float("nan"), "must be a number of seconds >= 0, got nan"),
        ("launch_timeout", 0, "must be a number of seconds > 0, got 0"),
        ("launch_timeout", -3, "must be a number of seconds > 0, got -3"),
        ("launch_timeout", "inf", "must be a number of seconds > 0, got 'inf'"),
        ("max_log_bytes", 0, "must be a whole number > 0, got 0"),
        ("max_log_bytes", "1e9", "must be a whole number > 0, got '1e9'"),
        ("log_tail_bytes", -1, "must be a whole number >= 0, got -1"),
        ("max_outputs_bytes", 0, "must be a whole number > 0, got 0"),
        (
            "inherit_env",
            ["PATH", "A=B"],
            "names must be non-empty and contain neither '=' nor a NUL byte, got 'A=B'",
        ),
        ("state_root", 5, "must be a folder path, got 5"),
    ],
)
def test_a_bad_option_is_a_value_error_naming_it(option: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(f"local executor option {option}: {message}") + "$"):
        LocalExecutor(**{option: value})


def test_good_options_are_accepted_as_numbers_or_strings() -> None:
    ex = LocalExecutor(
        max_concurrent="4",
        kill_grace_period="0",
        launch_timeout="2.5",
        max_log_bytes="1048576",
        log_tail_bytes=0,
        inherit_env="PATH, HOME",
    )
    assert (ex.max_concurrent, ex.kill_grace_period, ex.launch_timeout) == (4, 0.0, 2.5)
    assert (ex.max_log_bytes, ex.log_tail_bytes, ex.inherit_env) == (1 << 20, 0, ("PATH", "HOME"))
    assert LocalExecutor(max_concurrent=None).max_concurrent == 0
    assert LocalExecutor(max_concurrent="").max_concurrent == 0
    assert LocalExecutor().max_log_bytes == 64 << 20


async def test_max_outputs_bytes_caps_what_is_read_back(tmp_path: Path, make_ctx: Any) -> None:
    # The cap is configurable per executor (executor_options / [provider_executors] executor_config).
    executor = LocalExecutor(state_root=str(tmp_path / "state"), max_outputs_bytes="1000")
    store = DataStore()
    await executor.initialize(ExecutorInitializationParameters(data_store=store))
    ctx = make_ctx()
    big = literals_pb2.LiteralMap()
    big.literals["y"].scalar.primitive.integer = 1
    big.literals["padding"].scalar.primitive.string_value = "x" * 5000
    await store.write_protobuf(ctx.outputs_file, big)
    with pytest.raises(DataTooLargeError, match=r"outputs\.pb: .* exceeds the 1000 bytes cap$"):
        await executor.resolve_outputs(ctx, "y")
    assert LocalExecutor().max_outputs_bytes == 64 << 20
