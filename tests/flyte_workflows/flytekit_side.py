"""The flytekit side of tests/flyte_workflows. Runs under ``.venv-flytekit`` only (real flytekit).

``python flytekit_side.py OUTDIR`` writes ``OUTDIR/workflows.tgz`` with flytekit's own ``pyflyte
package`` (the corpus module ``flyte_workflows``, found on ``PYTHONPATH``), and ``OUTDIR/expected.json``:
for each workflow of ``WORKFLOWS``, its inputs and the outputs of flytekit's own local execution
of it (with those inputs, and with its defaults), in the plain form of tests/conformance/plain.py.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE / "corpus"), str(HERE.parent / "conformance")]

import plain  # noqa: E402 - tests/conformance/plain.py (standard library only)

IMAGE = "localhost/executors-flytekit:conformance"


def _outputs(workflow: object, result: object) -> dict[str, object]:
    names = list(workflow.python_interface.outputs)  # type: ignore[attr-defined]
    values = list(result) if len(names) > 1 else [result]  # type: ignore[call-overload]
    return {name: plain.encode(value) for name, value in zip(names, values, strict=True)}


def main(outdir: pathlib.Path) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(HERE / "corpus")}
    pyflyte = pathlib.Path(sys.executable).with_name("pyflyte")
    subprocess.run(
        [str(pyflyte), "--pkgs", "flyte_workflows", "package", "--image", IMAGE, "-f",
         "--output", str(outdir / "workflows.tgz")],
        check=True, cwd=outdir, env=env, capture_output=True, text=True,
    )  # fmt: skip
    import flyte_workflows

    expected = {}
    for name, (workflow, inputs) in flyte_workflows.WORKFLOWS.items():
        expected[name] = {
            "workflow": f"flyte_workflows.{workflow.__name__}",
            "inputs": {k: plain.encode(v) for k, v in inputs.items()},
            "outputs": _outputs(workflow, workflow(**inputs)),
            "default_outputs": _outputs(workflow, workflow()),
        }
        print(f"ran {name} locally: {expected[name]['outputs']}", flush=True)
    (outdir / "expected.json").write_text(json.dumps(expected, indent=1))


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]))
