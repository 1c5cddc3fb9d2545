"""The local executor's hardening, through the real trigger: a timeout stops the processes a task
let escape its process group, and a mark-failed kill does too, each beside healthy triggers; an
admission wave through ``max_concurrent`` is woken through the trigger's waker (EnqueueOwner)."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from executors import PollPolicy, TaskPhase
from harness.loop_gaps import loop_monitor
from tests.conftest import make_template, python_template
from tests.executors.backends.local.helpers import kill_marked, new_marker, processes_with
from tests.reliability_units.support import (
    DOUBLE,
    int_inputs,
    prepare_trigger,
    run_trigger,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="child subreaper: Linux")


@pytest.fixture
def marker() -> Iterator[str]:
    value = new_marker()
    yield value
    kill_marked(value)


def escaping(marker: str) -> list[str]:
    sleeper = "import time; time.sleep(600)"
    return ["sh", "-c", f'setsid "$0" -c "$1" {marker} & sleep 300', sys.executable, sleeper]


async def test_a_timeout_stops_processes_that_escaped_the_group(marker: str, tmp_path: Path) -> None:
    config = {"state_root": str(tmp_path / "local-state"), "kill_grace_period": 1}
    bad = await prepare_trigger(
        tmp_path,
        make_template(escaping(marker)),
        name="escaper",
        config=config,
        deadline=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.5),
    )
    healthy = [
        await prepare_trigger(tmp_path, DOUBLE, name=f"healthy-{i}", config=config, inputs=int_inputs(x=i))
        for i in range(2)
    ]
    async with loop_monitor() as gaps:
        status, *others = await asyncio.gather(
            run_trigger(bad.trigger(), timeout=30), *(run_trigger(h.trigger()) for h in healthy)
        )
    assert status.phase is TaskPhase.RETRYABLE_FAILURE, status
    assert status.err is not None and status.err.code == "Timeout"
    assert "did not finish before" in status.err.message
    assert [o.phase for o in others] == [TaskPhase.SUCCEEDED] * 2
    assert processes_with(marker) == []  # 0 escaped processes left
    gaps.assert_below(0.2)


async def test_a_wave_through_max_concurrent_is_woken_through_the_triggers_waker(tmp_path: Path) -> None:
    """8 half-second tasks, 2 at a time, polled every 2 s with a 60 s backoff cap: without the
    executor waking the waiters, the wave takes tens of seconds; with it, about 4 x 0.5 s."""
    config = {"state_root": str(tmp_path / "local-state"), "max_concurrent": 2}
    policy = PollPolicy(interval=2.0, max_backoff=60.0, jitter=0.0, unknown_limit=5, call_timeout=30.0)
    template = python_template("import time; time.sleep(0.5)")
    prepared = [
        await prepare_trigger(tmp_path, template, name=f"wave-{i}", config=config, policy=policy)
        for i in range(8)
    ]
    t0 = time.monotonic()
    statuses = await asyncio.gather(*(run_trigger(p.trigger(), timeout=60) for p in prepared))
    took = time.monotonic() - t0
    assert [s.phase for s in statuses] == [TaskPhase.SUCCEEDED] * 8
    # Ideal: 4 waves of 0.5 s, plus the last check of each running task (interval 2 s).
    assert took < 10, f"the wave took {took:.1f}s"
