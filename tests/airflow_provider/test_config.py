"""The ``[provider_executors]`` section, read through Airflow's own configuration (env variables)."""

from __future__ import annotations

import os

import pytest

from airflow_provider import config

ENV = "AIRFLOW__PROVIDER_EXECUTORS__"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"local": {"max_concurrent": 2}', r"\[provider_executors\] executor_config is not valid JSON"),
        ("local=2", r"\[provider_executors\] executor_config is not valid JSON"),
        ('["local"]', r"\[provider_executors\] executor_config must be a JSON object, got list"),
        ('{"local": 5}', r"\[provider_executors\] executor_config\['local'\] must be a JSON object"),
    ],
    ids=["truncated", "not-json", "array", "entry-not-object"],
)
def test_malformed_executor_config_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, raw: str, message: str
) -> None:
    monkeypatch.setenv(ENV + "EXECUTOR_CONFIG", raw)
    with pytest.raises(ValueError, match=message):
        config.executor_config("local")


def test_malformed_executor_config_fails_the_operator_with_the_same_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow_provider.operators import ExecutorOperator

    monkeypatch.setenv(ENV + "EXECUTOR_CONFIG", "{oops")
    op = ExecutorOperator(task_id="t", command=["true"])
    with pytest.raises(ValueError, match=r"\[provider_executors\] executor_config is not valid JSON"):
        op._spec().executor_config()


def test_executor_config_picks_the_executor_and_operator_options_win(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider.operators import ExecutorOperator

    monkeypatch.setenv(
        ENV + "EXECUTOR_CONFIG",
        '{"local": {"max_concurrent": 2, "kill_grace_period": 4}, "ray": {"address": "http://x"}}',
    )
    assert config.executor_config("local") == {"max_concurrent": 2, "kill_grace_period": 4}
    assert config.executor_config("ray") == {"address": "http://x"}
    assert config.executor_config("other") == {}
    op = ExecutorOperator(task_id="t", command=["true"], executor_options={"max_concurrent": 9})
    assert op._spec().executor_config() == {"max_concurrent": 9, "kill_grace_period": 4}


def test_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV + "POLL_INTERVAL", "2.5")
    monkeypatch.setenv(ENV + "UNKNOWN_LIMIT", "4")
    monkeypatch.setenv(ENV + "CALL_TIMEOUT", "7")
    monkeypatch.setenv(ENV + "DEFAULT_DEFERRABLE", "False")
    monkeypatch.setenv(ENV + "DATA_DIR", "s3://bucket/prefix")
    assert config.poll_interval() == 2.5
    assert config.unknown_limit() == 4
    assert config.call_timeout() == 7.0
    assert config.default_deferrable() is False
    assert config.data_dir() == "s3://bucket/prefix"


def test_declared_defaults_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    for option in config.OPTIONS:
        monkeypatch.delenv(ENV + option.upper(), raising=False)
    assert config.poll_interval() == 5.0
    assert config.unknown_limit() == 10
    assert config.call_timeout() == 120.0
    assert config.default_deferrable() is True
    assert config.executor_config("local") == {}
    assert config.data_dir() == os.path.join(os.environ["AIRFLOW_HOME"], "executions")
