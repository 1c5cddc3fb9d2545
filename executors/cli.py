"""``run-typed-task``: run one typed task on an executor, without Airflow, and print its outputs.

Examples::

    run-typed-task --command python -c 'import sys; ...' {{.input}} {{.outputPrefix}} \\
        --input-type x=int --output-type y=int --input x=21
    run-typed-task --template task.json --input x=21 --executor local

Input values are JSON (``--input xs='[1, 2]'``); a value that is not valid JSON is taken as a
string. Types are written like Python annotations: ``int``, ``float``, ``str``, ``bool``,
``datetime``, ``timedelta``, ``dict`` (a JSON object), ``list[T]``, ``dict[str, T]``, ``T | None``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
import tempfile
import uuid
from collections.abc import Sequence
from typing import Any

from flyteidl.core import identifier_pb2

from executors.core.context import TaskContext, TaskExecutionID
from executors.core.errors import ExecutorsError
from executors.core.interface import ExecutorInitializationParameters
from executors.core.output import OutputLines
from executors.core.phase import TaskPhase
from executors.data.storage import DataStore, join
from executors.data.task_template import build_task_template, load_task_template
from executors.engine import submission
from executors.engine.driver import DriverSnapshot
from executors.engine.policy import PollPolicy
from executors.engine.registry import create_executor

_SIMPLE: dict[str, Any] = {
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "datetime": dt.datetime,
    "timedelta": dt.timedelta,
    "dict": dict,
    "None": type(None),
}


def parse_type(text: str) -> Any:
    """A Python annotation from its written form, without eval."""
    text = text.strip()
    if "|" in text:
        parts = [parse_type(p) for p in _split_top(text, "|")]
        union = parts[0]
        for part in parts[1:]:
            union = union | part
        return union
    if text.startswith("list[") and text.endswith("]"):
        return list[parse_type(text[5:-1])]  # type: ignore[misc]
    if text.startswith("dict[") and text.endswith("]"):
        key, value = _split_top(text[5:-1], ",")
        if key.strip() != "str":
            raise ValueError(f"type {text!r}: map keys must be str")
        return dict[str, parse_type(value)]  # type: ignore[misc]
    if text in _SIMPLE:
        return _SIMPLE[text]
    raise ValueError(f"unknown type {text!r}; use {', '.join(_SIMPLE)}, list[T], dict[str, T], T | None")


def _split_top(text: str, sep: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "["
        depth -= ch == "]"
        if ch == sep and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return parts


def _pairs(items: Sequence[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"{what} {item!r}: expected NAME=VALUE")
        out[name] = value
    return out


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


async def run(args: argparse.Namespace) -> dict[str, Any]:
    store = DataStore()
    if args.template:
        template = await load_task_template(args.template, store)
    else:
        template = build_task_template(
            args.command,
            name="cli.task",
            inputs={k: parse_type(v) for k, v in _pairs(args.input_type, "--input-type").items()},
            outputs={k: parse_type(v) for k, v in _pairs(args.output_type, "--output-type").items()},
        )
    values = {k: _json_or_text(v) for k, v in _pairs(args.input, "--input").items()}
    inputs = submission.typed_inputs(template, values)
    await submission.check_input_data(store, inputs)

    run_name = f"cli-{uuid.uuid4().hex[:8]}"
    ident = identifier_pb2.TaskExecutionIdentifier()
    ident.task_id.CopyFrom(template.id)
    ident.node_execution_id.node_id = template.id.name or "task"
    ident.node_execution_id.execution_id.name = run_name
    ctx = TaskContext(TaskExecutionID.create(ident), data_dir=join(args.data_dir, run_name))
    await submission.submit(store, template, inputs, ctx)

    executor = create_executor(args.executor)
    await executor.initialize(ExecutorInitializationParameters(data_store=store))

    def on_change(c: TaskContext, status: Any) -> None:
        print(f"[{c.generated_name}] {status}", file=sys.stderr)

    policy = PollPolicy(interval=args.poll_interval)

    def print_output(pieces: Sequence[OutputLines]) -> None:
        for piece in pieces:
            print(piece.tagged(f"[{ctx.generated_name}] [{piece.stream}] "), file=sys.stderr)

    driver = submission.open_driver(
        executor,
        template,
        DriverSnapshot(ctx),
        store,
        policy=policy,
        on_change=on_change,
        output=print_output,
    )
    status = await driver.run()
    if driver.output is None or not driver.output.supported:
        logs = await executor.read_logs(driver.ctx)
        if logs:
            print(logs, file=sys.stderr)
    if status.phase is not TaskPhase.SUCCEEDED:
        raise SystemExit(f"task failed ({status.phase.name}): {status.err}")
    return await submission.read_typed_outputs(executor, template, driver.ctx)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run-typed-task", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--template", help="TaskTemplate file or URL (.pb or .json)")
    source.add_argument("--command", nargs=argparse.REMAINDER, help="the container command (must come last)")
    parser.add_argument("--executor", default="local", help="executor id (default: local)")
    parser.add_argument("--input", action="append", default=[], metavar="NAME=JSON")
    parser.add_argument("--input-type", action="append", default=[], metavar="NAME=TYPE")
    parser.add_argument("--output-type", action="append", default=[], metavar="NAME=TYPE")
    parser.add_argument(
        "--data-dir",
        default=os.path.join(tempfile.gettempdir(), "run-typed-task"),
        help="fsspec URL for execution folders",
    )
    parser.add_argument("--poll-interval", type=float, default=0.2)
    args = parser.parse_args(argv)
    try:
        outputs = asyncio.run(run(args))
    except (ExecutorsError, ValueError, TypeError) as exc:
        print(f"run-typed-task: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(outputs, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
