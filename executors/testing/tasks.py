"""The tasks the contract runs: small ``python -c`` scripts in flyteidl ``TaskTemplate`` s.

Each script gets its paths through Flyte's placeholders (``{{.input}}``, ``{{.outputPrefix}}``,
``{{.taskTemplatePath}}``, ``{{.rawOutputDataPrefix}}``) and speaks the Flyte files through
:mod:`executors.task_io` (or :class:`executors.data.storage.DataStore` for what ``task_io`` does
not write), so they work wherever the executor runs them, a local folder or an object store, as
long as the ``executors`` package is importable there and ``python`` (see
:attr:`ContractTasks.python`) is on the task's ``PATH``.
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Mapping
from typing import Any

from flyteidl.core import literals_pb2, tasks_pb2

from executors.data.task_template import build_task_template

TYPED_OUTPUTS: Mapping[str, Any] = {"y": int, "label": str}
"""What the typed tasks declare: ``y = 2 * x`` and ``label = "x=<x>"``."""

DOUBLE = textwrap.dedent(
    """
    import sys
    from executors import task_io
    inputs = task_io.read_inputs(sys.argv[1], sys.argv[3])
    print("doubling", inputs["x"], flush=True)
    task_io.write_outputs(sys.argv[2], {"y": 2 * inputs["x"], "label": f"x={inputs['x']}"}, sys.argv[3])
    """
)

GATED_DOUBLE = textwrap.dedent(
    """
    import asyncio, sys, time
    from executors import task_io
    from executors.data.storage import DataStore
    store, deadline = DataStore(), time.monotonic() + float(sys.argv[5])
    while not asyncio.run(store.exists(sys.argv[4])):
        if time.monotonic() > deadline:
            sys.exit(f"never released: {sys.argv[4]} did not appear")
        time.sleep(0.1)
    inputs = task_io.read_inputs(sys.argv[1], sys.argv[3])
    task_io.write_outputs(sys.argv[2], {"y": 2 * inputs["x"], "label": f"x={inputs['x']}"}, sys.argv[3])
    """
)

GATED_PRINT = textwrap.dedent(
    """
    import asyncio, sys, time
    from executors.data.storage import DataStore
    print(sys.argv[1], flush=True)
    store, deadline = DataStore(), time.monotonic() + float(sys.argv[5])
    while not asyncio.run(store.exists(sys.argv[4])):
        if time.monotonic() > deadline:
            sys.exit(f"never released: {sys.argv[4]} did not appear")
        time.sleep(0.1)
    print(sys.argv[2], flush=True)
    sys.stdout.write(sys.argv[3])
    """
)

SIDE_EFFECT = textwrap.dedent(
    """
    import asyncio, os, sys, time, uuid
    from executors.data.storage import DataStore, join
    marker = join(sys.argv[1], "contract-starts", f"start-{uuid.uuid4().hex}")
    asyncio.run(DataStore().write_bytes(marker, str(os.getpid()).encode()))
    print("started", flush=True)
    time.sleep(float(sys.argv[2]))
    """
)

WRITE_ERROR = textwrap.dedent(
    """
    import sys
    from executors import task_io
    task_io.write_error(sys.argv[1], sys.argv[2], code=sys.argv[3], recoverable=sys.argv[4] == "recoverable")
    sys.exit(int(sys.argv[5]))
    """
)

CORRUPT_ERROR = textwrap.dedent(
    """
    import asyncio, sys
    from executors.data.storage import DataStore, join
    asyncio.run(DataStore().write_bytes(join(sys.argv[1], "error.pb"), b"\\xff\\xff"))
    sys.exit(1)
    """
)

EXIT = "import sys\nprint('failing on purpose', file=sys.stderr, flush=True)\nsys.exit(int(sys.argv[1]))"

SILENT = "pass"

PRINT_BOTH = "import sys\nprint(sys.argv[1], flush=True)\nprint(sys.argv[2], file=sys.stderr, flush=True)"

SLEEP = "import sys, time\nprint('ready', flush=True)\ntime.sleep(float(sys.argv[1]))"


def int_inputs(**values: int) -> literals_pb2.LiteralMap:
    """A ``LiteralMap`` of integers."""
    literal_map = literals_pb2.LiteralMap()
    for name, value in values.items():
        literal_map.literals[name].scalar.primitive.integer = value
    return literal_map


@dataclasses.dataclass(frozen=True)
class ContractTasks:
    """Builds the contract's task templates; ``python`` is the interpreter the command runs."""

    python: str = "python"

    def script(
        self,
        name: str,
        script: str,
        *args: str,
        inputs: Mapping[str, Any] | None = None,
        outputs: Mapping[str, Any] | None = None,
    ) -> tasks_pb2.TaskTemplate:
        return build_task_template(
            [self.python, "-c", script, *args],
            name=f"executors.contract.{name}",
            version="1",
            inputs=inputs,
            outputs=outputs,
        )

    def double(self) -> tasks_pb2.TaskTemplate:
        """Reads ``x``, writes ``y`` and ``label`` to ``outputs.pb``, prints ``doubling <x>``."""
        return self.script(
            "double", DOUBLE, "{{.input}}", "{{.outputPrefix}}", "{{.taskTemplatePath}}",
            inputs={"x": int}, outputs=TYPED_OUTPUTS,
        )  # fmt: skip

    def gated_double(self, release: str, max_wait: float) -> tasks_pb2.TaskTemplate:
        """:meth:`double`, once the file ``release`` exists (it waits at most ``max_wait`` s)."""
        return self.script(
            "gated-double", GATED_DOUBLE,
            "{{.input}}", "{{.outputPrefix}}", "{{.taskTemplatePath}}", release, f"{max_wait:g}",
            inputs={"x": int}, outputs=TYPED_OUTPUTS,
        )  # fmt: skip

    def gated_print(
        self, first: str, second: str, last: str, release: str, max_wait: float
    ) -> tasks_pb2.TaskTemplate:
        """Prints the line ``first``, waits for the file ``release`` (at most ``max_wait`` s), prints
        the line ``second``, then ``last`` without a newline."""
        return self.script("gated-print", GATED_PRINT, first, second, last, release, f"{max_wait:g}")

    def side_effect(self, seconds: float) -> tasks_pb2.TaskTemplate:
        """Each launch leaves one file under ``<raw output prefix>/contract-starts/``, then sleeps."""
        return self.script("side-effect", SIDE_EFFECT, "{{.rawOutputDataPrefix}}", f"{seconds:g}")

    def write_error(
        self, *, code: str, message: str, recoverable: bool, exit_code: int, declare_outputs: bool = False
    ) -> tasks_pb2.TaskTemplate:
        """Writes ``error.pb`` (origin USER) with ``task_io.write_error``, then exits ``exit_code``."""
        return self.script(
            "write-error", WRITE_ERROR, "{{.outputPrefix}}", message, code,
            "recoverable" if recoverable else "non-recoverable", str(exit_code),
            outputs=TYPED_OUTPUTS if declare_outputs else None,
        )  # fmt: skip

    def corrupt_error(self) -> tasks_pb2.TaskTemplate:
        """Writes an ``error.pb`` that does not parse, then exits 1."""
        return self.script("corrupt-error", CORRUPT_ERROR, "{{.outputPrefix}}")

    def exit(self, code: int) -> tasks_pb2.TaskTemplate:
        """Prints to stderr and exits ``code``, writing neither ``outputs.pb`` nor ``error.pb``."""
        return self.script("exit", EXIT, str(code))

    def silent(self, *, declare_outputs: bool) -> tasks_pb2.TaskTemplate:
        """Exits 0 and writes nothing."""
        return self.script("silent", SILENT, outputs=TYPED_OUTPUTS if declare_outputs else None)

    def print_both(self, stdout: str, stderr: str) -> tasks_pb2.TaskTemplate:
        """Prints ``stdout`` to stdout and ``stderr`` to stderr, exits 0."""
        return self.script("print-both", PRINT_BOTH, stdout, stderr)

    def sleep(self, seconds: float) -> tasks_pb2.TaskTemplate:
        """Prints ``ready`` and sleeps (a task that runs until it is killed)."""
        return self.script("sleep", SLEEP, f"{seconds:g}")
