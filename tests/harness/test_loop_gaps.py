"""The loop-gap monitor the reliability suites rely on: it must see a blocked loop, name the frame
that blocked it, and not blame our code for the garbage collector's pauses."""

from __future__ import annotations

import asyncio
import gc
import time

from harness.loop_gaps import loop_monitor


def hold_the_loop(seconds: float) -> None:
    time.sleep(seconds)


async def test_a_blocking_call_is_measured_and_named() -> None:
    async with loop_monitor() as gaps:
        await asyncio.sleep(0.05)
        hold_the_loop(0.3)
        await asyncio.sleep(0.05)
    assert 0.25 < gaps.worst < 1.0, gaps.report()
    report = gaps.report()
    assert "hold_the_loop" in report and "time.sleep" in report, report


async def test_an_unblocked_loop_stays_under_the_limit() -> None:
    async with loop_monitor() as gaps:
        await asyncio.sleep(0.3)
    assert len(gaps.gaps) >= 10
    gaps.assert_below(0.2)


async def test_garbage_collection_is_not_counted_as_ours() -> None:
    # A heap of cycles big enough that a full collection takes a noticeable time.
    heap = [[] for _ in range(1_500_000)]
    for item in heap:
        item.append(item)
    try:
        async with loop_monitor() as gaps:
            await asyncio.sleep(0.05)
            gc.collect()
            await asyncio.sleep(0.05)
        tick = max(gaps.ticks, key=lambda t: t.late)
        assert tick.gc > 0.02, gaps.report()  # the collection did stall the loop...
        assert tick.ours < tick.late - 0.02  # ...and was subtracted
    finally:
        del heap
