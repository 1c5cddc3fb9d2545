"""Helpers for tests with hostile task files (FIFOs, ``/dev/zero`` symlinks): keep a failing run
(e.g. on code without the guarded reader) from hanging the test session or taking the machine's
memory, and measure the process's memory while a read runs."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import resource
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

MiB = 1024 * 1024


def release_fifos(root: Path) -> int:
    """Unblock every thread stuck opening a FIFO under ``root``; returns how many FIFOs were found.

    Only an unguarded reader ever gets stuck (``open()`` of a FIFO waits for a writer). Each FIFO
    is moved aside first (so a read queued behind finds nothing instead of blocking again), then
    opened for writing a few times: every reader waiting in ``open()`` completes and reads EOF.
    """
    fifos = [p for p in root.rglob("*") if p.is_fifo() and not p.name.endswith(".released")]
    aside = []
    for fifo in fifos:
        moved = fifo.with_name(fifo.name + ".released")
        os.rename(fifo, moved)
        aside.append(moved)
    for _ in range(5):
        for fifo in aside:
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: nobody is reading it right now
                    raise
                continue
            os.close(fd)
        time.sleep(0.02)
    return len(fifos)


@contextlib.contextmanager
def fifos_released(root: Path) -> Iterator[None]:
    """Run the block, then :func:`release_fifos` under ``root`` whatever happened."""
    try:
        yield
    finally:
        release_fifos(root)


@contextlib.contextmanager
def address_space_limit(extra: int = 2048 * MiB) -> Iterator[None]:
    """Cap this process's address space at its current size plus ``extra`` for the block, so an
    unbounded read (``/dev/zero``) ends in MemoryError instead of taking the machine's memory."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = psutil.Process().memory_info().vms + extra
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@dataclasses.dataclass
class RssSample:
    before: int = 0
    peak: int = 0
    after: int = 0

    @property
    def growth(self) -> int:
        return self.peak - self.before

    def __str__(self) -> str:
        return (
            f"RSS before {self.before / MiB:.1f} MiB, peak {self.peak / MiB:.1f} MiB, "
            f"after {self.after / MiB:.1f} MiB (peak growth {self.growth / MiB:.1f} MiB)"
        )


@contextlib.contextmanager
def rss_sampled(interval: float = 0.002) -> Iterator[RssSample]:
    """This process's resident memory before, at its highest during (sampled every ``interval``
    seconds by a thread), and after the block."""
    proc = psutil.Process()
    sample = RssSample(before=proc.memory_info().rss)
    sample.peak = sample.before
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            sample.peak = max(sample.peak, proc.memory_info().rss)
            stop.wait(interval)

    watcher = threading.Thread(target=watch, name="rss-sampler", daemon=True)
    watcher.start()
    try:
        yield sample
    finally:
        stop.set()
        watcher.join()
        sample.after = proc.memory_info().rss
        sample.peak = max(sample.peak, sample.after)
