"""Airflow's ``Stats`` as the executors' metrics scope (seed: MetricsScope)."""

from __future__ import annotations

from typing import Any


class AirflowStatsScope:
    """Prefixes every metric name and forwards to Airflow's configured StatsD/OTel logger."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def _name(self, stat: str) -> str:
        return f"{self.prefix}.{stat}"

    def incr(self, stat: str, count: int = 1, rate: float = 1) -> None:
        from airflow.sdk.observability.stats import Stats

        Stats.incr(self._name(stat), count, rate)

    def timing(self, stat: str, dt: Any) -> None:
        from airflow.sdk.observability.stats import Stats

        Stats.timing(self._name(stat), dt)

    def gauge(self, stat: str, value: float, rate: float = 1, delta: bool = False) -> None:
        from airflow.sdk.observability.stats import Stats

        Stats.gauge(self._name(stat), value, rate, delta)
