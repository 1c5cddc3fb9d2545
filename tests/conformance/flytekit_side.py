"""The flytekit side of the conformance suite. Runs under ``.venv-flytekit`` only (real flytekit).

``serialize OUTDIR``
    For every case of ``corpus/flyte_tasks.py``: ``OUTDIR/<case>/task.pb`` (the TaskTemplate made by
    flytekit's own translator, container command untouched), ``inputs.pb`` (the case's Python inputs
    turned into literals by flytekit's TypeEngine), ``expected.json`` (the outcome of flytekit's own
    local execution of the task with those inputs, attempt by attempt as Flyte would retry it: the
    outputs in plain form, or the exception's class, message and whether Flyte would retry it) and
    ``expected_outputs.pb`` (the literals of that execution's outputs). ``OUTDIR/cases.json`` indexes
    them, with the inputs in the plain form the Airflow side passes to ``ExecutorOperator``.

``check OUTDIR CASE OUTPUTS_PB [CASE OUTPUTS_PB ...] [--json REPORT]``
    Reads each ``OUTPUTS_PB`` (what the task wrote in *our* execution) with flytekit's TypeEngine into
    the declared Python types and compares it with the local execution's outputs: dataclass and
    pydantic equality, ``DataFrame.equals``, file and directory contents, exact types otherwise.
    Prints a diff and exits 1 on any mismatch.

``inputs OUTDIR CASE INPUTS_PB [CASE INPUTS_PB ...] [--json REPORT]``
    Diagnostics: whether flytekit reads *our* ``inputs.pb`` into the same Python values as its own.

Nothing here is copied from flytekit: it only calls flytekit's public entry points.
"""

# ruff: noqa: E402
from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import enum
import json
import os
import pathlib
import re
import sys
import tempfile
import traceback
from collections.abc import Iterator
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE / "corpus"), str(HERE)]

import cases as static_cases  # tests/conformance/cases.py (standard library only)
import plain  # tests/conformance/plain.py (standard library only)

PROJECT, DOMAIN, VERSION = "flytesnacks", "development", "conformance-1"
_LOCAL_PREFIX = re.compile(r"Error encountered while (executing|converting inputs of) '[^']*':\n  ", re.S)


# -- flytekit plumbing ---------------------------------------------------------------------------


def _corpus() -> Any:
    import flyte_tasks

    return flyte_tasks


@contextlib.contextmanager
def _file_access(work: pathlib.Path) -> Iterator[Any]:
    """A flytekit context whose raw output prefix (where blobs land) is ``work/raw``."""
    from flytekit import FlyteContextManager
    from flytekit.core.data_persistence import FileAccessProvider

    (work / "sandbox").mkdir(parents=True, exist_ok=True)
    access = FileAccessProvider(local_sandbox_dir=str(work / "sandbox"), raw_output_prefix=str(work / "raw"))
    with FlyteContextManager.with_context(
        FlyteContextManager.current_context().with_file_access(access)
    ) as ctx:
        yield ctx


def _read_literal_map(path: str | pathlib.Path) -> Any:
    from flyteidl.core import literals_pb2
    from flytekit.models.literals import LiteralMap

    message = literals_pb2.LiteralMap()
    message.ParseFromString(pathlib.Path(path).read_bytes())
    return LiteralMap.from_flyte_idl(message)


def _write(path: pathlib.Path, model: Any) -> None:
    path.write_bytes(model.to_flyte_idl().SerializeToString())


def _literal_kind(literal: Any) -> str:
    message = literal.to_flyte_idl()
    if message.WhichOneof("value") == "scalar":
        return str(message.scalar.WhichOneof("value"))
    return str(message.WhichOneof("value"))


def _uri(literal: Any) -> str:
    message = literal.to_flyte_idl()
    if message.scalar.HasField("blob"):
        return str(message.scalar.blob.uri)
    return str(message.scalar.structured_dataset.uri)


# -- serialize -----------------------------------------------------------------------------------


def _input_literals(ctx: Any, task: Any, values: dict[str, Any]) -> Any:
    """The case's inputs as literals, by TypeEngine. A dict given for a dataclass input is converted
    as a dict (what a mismatched upstream would send), so the task sees the wrong value."""
    from flytekit.core.type_engine import TypeEngine
    from flytekit.models.literals import LiteralMap

    literals = {}
    for name, value in values.items():
        python_type = task.python_interface.inputs[name]
        if dataclasses.is_dataclass(python_type) and isinstance(value, dict):
            python_type = dict
        literal_type = TypeEngine.to_literal_type(python_type)
        literals[name] = TypeEngine.to_literal(ctx, value, python_type, literal_type)
    return LiteralMap(literals=literals)


def _plain_input(value: Any, literal: Any) -> Any:
    """What the Airflow side passes: plain values; blobs and data frames as their URI."""
    if _literal_kind(literal) in ("blob", "structured_dataset"):
        return _uri(literal)
    return plain.encode(value)


def _error(exc: BaseException) -> dict[str, Any]:
    """The exception of a local execution, as pyflyte-execute would report it remotely."""
    from flytekit.exceptions.user import FlyteRecoverableException

    first = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
    match = _LOCAL_PREFIX.match(first)
    # Local execution prefixes the exception's message with where it happened; remotely flytekit
    # reports the exception itself (``<class>: <str(exception)>``), so take the prefix off.
    original = first[match.end() :] if match else str(exc)
    stage = {"executing": "user", "converting inputs of": "inputs"}[match.group(1)] if match else "outputs"
    summary = f"{type(exc).__name__}: {original}"
    lines = [line.strip() for line in summary.splitlines() if line.strip()]
    fragments = [lines[0]] + ([lines[-1]] if len(lines) > 1 else [])
    recoverable = stage == "user" and isinstance(exc, FlyteRecoverableException)
    return {
        "type": type(exc).__name__,
        "module": type(exc).__module__,
        "message": original,
        "summary": summary,
        "fragments": fragments,
        "stage": stage,
        # pyflyte-execute: a user exception is RECOVERABLE only if it is a FlyteRecoverableException;
        # an input or output conversion failure is a non-recoverable system error.
        "recoverable": recoverable,
        "origin": "user" if stage == "user" else "system",
        "traceback": "".join(traceback.format_exception(exc))[-4000:],
    }


def _run_attempt(
    task: Any, inputs: Any, work: pathlib.Path, attempt: int, previous_checkpoint: str | None
) -> Any:
    """One attempt of flytekit's local execution, with Flyte's attempt number and checkpoints."""
    from flytekit.core.checkpointer import SyncCheckpoint
    from flytekit.core.context_manager import ExecutionParameters, OutputMetadataTracker
    from flytekit.core.type_engine import TypeEngine
    from flytekit.models.literals import LiteralMap

    saved = os.environ.get("FLYTE_ATTEMPT_NUMBER")
    os.environ["FLYTE_ATTEMPT_NUMBER"] = str(attempt)
    try:
        with _file_access(work) as base:
            params = ExecutionParameters.new_builder(base.user_space_params)
            params.checkpoint = SyncCheckpoint(
                checkpoint_dest=str(work / "checkpoint"), checkpoint_src=previous_checkpoint
            )
            params.working_dir = str(work / "working")
            params.raw_output_prefix = str(work / "raw")
            state = base.new_execution_state().with_params(
                mode=task.local_execution_mode(), user_space_params=params.build()
            )
            from flytekit import FlyteContextManager

            builder = base.with_execution_state(state).with_output_metadata_tracker(OutputMetadataTracker())
            with FlyteContextManager.with_context(builder) as ctx:
                try:
                    result = task.dispatch_execute(ctx, inputs)
                except Exception as exc:
                    return {"attempt": attempt, "error": _error(exc)}, None
                literals = result if isinstance(result, LiteralMap) else LiteralMap(literals={})
                natives = TypeEngine.literal_map_to_kwargs(ctx, literals, task.python_interface.outputs)
                outputs = {}
                for name, value in natives.items():
                    literal = literals.literals[name]
                    if _literal_kind(literal) in ("blob", "structured_dataset"):
                        outputs[name] = {"$uri": _literal_kind(literal)}
                    else:
                        outputs[name] = plain.shrink(plain.encode(value))
                return {"attempt": attempt, "outputs": outputs}, literals
    finally:
        if saved is None:
            os.environ.pop("FLYTE_ATTEMPT_NUMBER", None)
        else:
            os.environ["FLYTE_ATTEMPT_NUMBER"] = saved


def _run_like_flyte(task: Any, inputs: Any, case_dir: pathlib.Path, retries: int) -> tuple[list[Any], Any]:
    """Attempts 0, 1, ... as Flyte makes them: a retry only after a recoverable error, at most
    ``retries`` of them; attempt n resumes from attempt n-1's checkpoint."""
    attempts, literals, previous = [], None, None
    for attempt in range(retries + 1):
        work = case_dir / "local" / f"attempt-{attempt}"
        outcome, literals = _run_attempt(task, inputs, work, attempt, previous)
        attempts.append(outcome)
        if "error" not in outcome or not outcome["error"]["recoverable"]:
            break
        previous = str(work / "checkpoint")
    return attempts, literals


def serialize(outdir: pathlib.Path) -> None:
    from flytekit.configuration import ImageConfig, SerializationSettings
    from flytekit.tools.translator import get_serializable

    corpus = _corpus()
    ours, theirs = set(static_cases.CASES), set(corpus.CASES)
    if ours != theirs:
        sys.exit(
            f"cases.py and corpus/flyte_tasks.py disagree: only in cases.py {sorted(ours - theirs)}, "
            f"only in the corpus {sorted(theirs - ours)}"
        )
    settings = SerializationSettings(
        image_config=ImageConfig.auto(img_name=static_cases.CONFORMANCE_IMAGE),
        project=PROJECT,
        domain=DOMAIN,
        version=VERSION,
    )
    outdir.mkdir(parents=True, exist_ok=True)
    index: dict[str, Any] = {}
    for name, (task, make_inputs) in corpus.CASES.items():
        case_dir = outdir / name
        (case_dir / "data").mkdir(parents=True, exist_ok=True)
        template = get_serializable(collections.OrderedDict(), settings, task).template
        _write(case_dir / "task.pb", template)
        values = make_inputs(case_dir / "data")
        with _file_access(case_dir / "inputs") as ctx:
            inputs = _input_literals(ctx, task, values)
        _write(case_dir / "inputs.pb", inputs)
        retries = int(template.metadata.retries.retries or 0)
        attempts, literals = _run_like_flyte(task, inputs, case_dir, retries)
        final = attempts[-1]
        if literals is not None:
            _write(case_dir / "expected_outputs.pb", literals)
        expected = {
            "case": name,
            "task": template.id.name,
            "retries": retries,
            "tries": len(attempts),
            "final": "success" if "outputs" in final else "failed",
            "attempts": attempts,
            "outputs": final.get("outputs"),
            "output_names": sorted(task.python_interface.outputs),
            "command": list(template.container.args) or list(template.container.command),
        }
        (case_dir / "expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False))
        index[name] = {
            "task": template.id.name,
            "template": str(case_dir / "task.pb"),
            "inputs": {k: _plain_input(v, inputs.literals[k]) for k, v in values.items()},
            "retries": retries,
            "expected": str(case_dir / "expected.json"),
        }
        status = final.get("error", {}).get("type", "ok")
        print(f"serialized {name}: {template.id.name}, {len(attempts)} attempt(s), {status}", flush=True)
    (outdir / "cases.json").write_text(json.dumps(index, indent=1, ensure_ascii=False))


# -- check ---------------------------------------------------------------------------------------


def _files(root: str) -> dict[str, bytes]:
    base = pathlib.Path(root)
    return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


def compare(expected: Any, actual: Any, path: str) -> list[str]:
    """Differences between two native values of the same declared type."""
    import pandas as pd
    from flytekit.types.directory import FlyteDirectory
    from flytekit.types.file import FlyteFile
    from flytekit.types.structured.structured_dataset import StructuredDataset

    if isinstance(expected, pd.DataFrame):
        if not isinstance(actual, pd.DataFrame):
            return [f"{path}: expected a DataFrame, got {type(actual).__name__}"]
        if expected.equals(actual) and list(expected.dtypes) == list(actual.dtypes):
            return []
        return [
            f"{path}: data frames differ:\nexpected\n{expected}\n{expected.dtypes}\ngot\n{actual}\n{actual.dtypes}"
        ]
    if isinstance(expected, StructuredDataset):
        if not isinstance(actual, StructuredDataset):
            return [f"{path}: expected a StructuredDataset, got {type(actual).__name__}"]
        problems = []
        if expected.file_format != actual.file_format:
            problems.append(f"{path}: format {actual.file_format!r}, expected {expected.file_format!r}")
        return problems + compare(expected.open(pd.DataFrame).all(), actual.open(pd.DataFrame).all(), path)
    if isinstance(expected, FlyteDirectory):
        if not isinstance(actual, FlyteDirectory):
            return [f"{path}: expected a FlyteDirectory, got {type(actual).__name__}"]
        want, got = _files(expected.download()), _files(actual.download())
        return (
            []
            if want == got
            else [f"{path}: directory contents differ: expected {want!r:.300}, got {got!r:.300}"]
        )
    if isinstance(expected, FlyteFile):
        if not isinstance(actual, FlyteFile):
            return [f"{path}: expected a FlyteFile, got {type(actual).__name__}"]
        want = pathlib.Path(expected.download()).read_bytes()
        got = pathlib.Path(actual.download()).read_bytes()
        return (
            [] if want == got else [f"{path}: file contents differ: expected {want!r:.200}, got {got!r:.200}"]
        )
    if type(expected) is not type(actual):
        return [
            f"{path}: expected {type(expected).__qualname__} {expected!r:.200}, got {type(actual).__qualname__} {actual!r:.200}"
        ]
    if isinstance(expected, dict):
        if set(expected) != set(actual):
            return [f"{path}: keys differ: expected {sorted(expected)}, got {sorted(actual)}"]
        return [d for k in expected for d in compare(expected[k], actual[k], f"{path}[{k!r}]")]
    if isinstance(expected, list):
        if len(expected) != len(actual):
            return [f"{path}: expected {len(expected)} items, got {len(actual)}"]
        out: list[str] = []
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            out.extend(compare(e, a, f"{path}[{i}]"))
            if len(out) > 10:
                break
        return out
    if isinstance(expected, enum.Enum):
        return [] if expected is actual else [f"{path}: expected {expected!r}, got {actual!r}"]
    if expected != actual:  # dataclasses and pydantic models compare field by field
        return [f"{path}: expected {expected!r:.300}, got {actual!r:.300}"]
    return []


def _decode(ctx: Any, literals: Any, types: dict[str, Any], what: str) -> tuple[dict[str, Any], list[str]]:
    from flytekit.core.type_engine import TypeEngine

    values, problems = {}, []
    for name, python_type in types.items():
        if name not in literals.literals:
            problems.append(f"{what}: variable {name!r} is missing (present: {sorted(literals.literals)})")
            continue
        try:
            values[name] = TypeEngine.to_python_value(ctx, literals.literals[name], python_type)
        except Exception as exc:
            problems.append(
                f"{what}: flytekit cannot read {name!r} as {python_type}: {type(exc).__name__}: {exc}"
            )
    extra = sorted(set(literals.literals) - set(types))
    if extra:
        problems.append(f"{what}: unexpected variable(s) {extra}")
    return values, problems


def _compare_files(outdir: pathlib.Path, pairs: list[tuple[str, str]], kind: str) -> dict[str, Any]:
    corpus = _corpus()
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="conformance-check-") as tmp:
        for name, ours_path in pairs:
            task = corpus.CASES[name][0]
            types = dict(task.python_interface.outputs if kind == "outputs" else task.python_interface.inputs)
            reference = outdir / name / ("expected_outputs.pb" if kind == "outputs" else "inputs.pb")
            with _file_access(pathlib.Path(tmp) / name) as ctx:
                try:
                    theirs, ours = _read_literal_map(reference), _read_literal_map(ours_path)
                    if ours.to_flyte_idl() == theirs.to_flyte_idl():
                        # The same literals decode to the same values (decoding a 200k list: seconds).
                        report[name] = {"ok": True, "problems": [], "identical_literals": True}
                        continue
                    expected, problems = _decode(ctx, theirs, types, f"flytekit's own {kind}")
                    if problems:  # e.g. the bad-input case: flytekit cannot read its own inputs either
                        report[name] = {"ok": None, "problems": problems}
                        continue
                    actual, problems = _decode(ctx, ours, types, f"our {kind}")
                    for var in expected:
                        if var in actual:
                            problems.extend(compare(expected[var], actual[var], var))
                except Exception as exc:
                    problems = [f"{type(exc).__name__}: {exc}"]
            report[name] = {"ok": not problems, "problems": problems}
    return report


def _pairs(items: list[str]) -> list[tuple[str, str]]:
    if not items or len(items) % 2:
        sys.exit("give CASE PATH pairs")
    return [(items[i], items[i + 1]) for i in range(0, len(items), 2)]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serialize").add_argument("outdir", type=pathlib.Path)
    for command in ("check", "inputs"):
        p = sub.add_parser(command)
        p.add_argument("outdir", type=pathlib.Path)
        p.add_argument("pairs", nargs="+", metavar="CASE PB")
        p.add_argument("--json", type=pathlib.Path, help="also write the report here")
    args = parser.parse_args(argv)
    if args.command == "serialize":
        serialize(args.outdir)
        return 0
    report = _compare_files(
        args.outdir, _pairs(args.pairs), "outputs" if args.command == "check" else "inputs"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    failed = 0
    for name, result in report.items():
        verdict = {True: "ok", False: "MISMATCH", None: "n/a"}[result["ok"]]
        print(f"{args.command} {name}: {verdict}")
        for problem in result["problems"]:
            print("    " + problem.replace("\n", "\n    "))
        failed += result["ok"] is False
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
