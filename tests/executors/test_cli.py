"""``run-typed-task``, run as a user runs it (the installed console script, the real local
executor): what the task prints reaches the terminal while it runs, tagged by execution and
stream, and the typed outputs come out as JSON at the end."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

# Prints a line on each stream, waits (bounded) for the file GO, then writes its output (the
# local executor passes the task no environment of the test's, so GO is put in the code).
TASK = """
import os, sys, time
from executors import task_io
x = task_io.read_inputs(sys.argv[1], sys.argv[3])["x"]
print("started", x, flush=True)
print("a warning", file=sys.stderr, flush=True)
deadline = time.monotonic() + 60
while not os.path.exists(GO) and time.monotonic() < deadline:
    time.sleep(0.05)
print("finishing", flush=True)
task_io.write_outputs(sys.argv[2], {"y": x * 2}, sys.argv[3])
"""


def test_output_shows_live_tagged_and_the_outputs_print_as_json(tmp_path: Path) -> None:
    go = tmp_path / "go"
    cli = Path(sys.executable).with_name("run-typed-task")
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    proc = subprocess.Popen(
        [str(cli), "--data-dir", str(tmp_path / "data"), "--input-type", "x=int", "--output-type", "y=int",
         "--input", "x=21", "--command", "python", "-c", f"GO = {str(go)!r}\n{TASK}", "{{.input}}", "{{.outputPrefix}}",
         "{{.taskTemplatePath}}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        seen: list[str] = []
        deadline = time.monotonic() + 60
        while not any(line.endswith("[stdout] started 21\n") for line in seen):
            assert time.monotonic() < deadline, f"no live output in 60 s: {seen}"
            seen.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
        assert proc.poll() is None, "the task is still waiting: the line came while it ran"
        go.touch()
        out = proc.stdout.read()  # type: ignore[union-attr]  # stderr is the reader thread's
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    reader.join(timeout=10)
    while not lines.empty():
        seen.append(lines.get())
    tagged = [line for line in seen if "] [std" in line]
    assert tagged[0].startswith("[") and "] [stdout] started 21" in tagged[0], seen
    assert any(line.rstrip().endswith("[stderr] a warning") for line in tagged), seen
    assert any(line.rstrip().endswith("[stdout] finishing") for line in tagged), seen
    assert len([line for line in tagged if "started 21" in line]) == 1, "a line was printed twice"
    assert proc.returncode == 0 and json.loads(out) == {"y": 42}
