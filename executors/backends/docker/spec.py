"""The template becomes the container: the body of ``POST /containers/create``.

What goes where (a pure function of the template, the context and the executor's options, so it
is tested without an engine):

* ``Image``: ``container.image`` (else the executor's ``default_image``);
* ``Cmd``: ``container.command + container.args`` with Flyte's placeholders rendered; the
  image's own entrypoint is replaced (``Entrypoint: []``) as Flyte's Kubernetes plugin does, so
  the command is what runs;
* ``Env``: Flyte's ``FLYTE_INTERNAL_*`` variables, the container's ``env``, the operator's
  ``environment`` (:func:`executors.backends.container.task_environment`), never a secret;
* ``HostConfig``: CPU limit -> ``NanoCpus``, CPU request -> ``CpuShares`` (1,024 a CPU), memory
  limit -> ``Memory``, memory request -> ``MemoryReservation``, GPUs -> one ``DeviceRequests``
  entry (``Count``); storage requests are not something an engine can honour and are ignored;
  ``Mounts`` (bind mounts, structured: an Airflow run id puts ``:`` in paths, which the
  ``host:container`` form of ``Binds`` cannot hold) for every local folder the task reads or
  writes, each at its own path;
* ``WorkingDir`` and ``User`` from the executor's options;
* ``Labels``: the context's labels, then ours (:data:`LABEL_PREFIX`...): the execution, its owner,
  and the Flyte identity (project, domain = DAG, run, task, attempt), so a person (or a test's
  teardown) finds every container a DAG started with ``docker ps --filter label=...``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from flyteidl.core import literals_pb2, tasks_pb2

from executors.core.context import TaskContext
from executors.core.resources import merged_resources, parse_quantity, resource_value
from executors.data.storage import is_local, local_path

LABEL_PREFIX = "io.airflow-provider-executors."
MANAGED_LABEL = LABEL_PREFIX + "managed"
EXECUTION_LABEL = LABEL_PREFIX + "execution"


def owner_labels(task_ctx: TaskContext) -> dict[str, str]:
    """The labels that say whose container this is (also what teardown filters on)."""
    ident = task_ctx.task_execution_id.id
    execution = ident.node_execution_id.execution_id
    labels = {
        MANAGED_LABEL: "true",
        EXECUTION_LABEL: task_ctx.generated_name,
        LABEL_PREFIX + "owner": task_ctx.owner_id,
        LABEL_PREFIX + "project": execution.project,
        LABEL_PREFIX + "domain": execution.domain,
        LABEL_PREFIX + "run": execution.name,
        LABEL_PREFIX + "task": ident.task_id.name,
        LABEL_PREFIX + "attempt": str(ident.retry_attempt),
    }
    return {k: v.replace("\x00", "") for k, v in labels.items()}


def host_resources(resources: tasks_pb2.Resources) -> dict[str, Any]:
    """Flyte requests/limits as ``HostConfig`` fields (see the module docstring); a value that is
    not a quantity is a ValueError naming the resource."""
    out: dict[str, Any] = {}

    def quantity(name: int, *, limits: bool, label: str) -> float | None:
        text = resource_value(resources, name, limits=limits)
        if text is None or text == "":
            return None
        kind = "limits" if limits else "requests"
        return parse_quantity(text, what=f"resources {kind} {label}")

    cpu_limit = quantity(tasks_pb2.Resources.CPU, limits=True, label="cpu")
    cpu_request = quantity(tasks_pb2.Resources.CPU, limits=False, label="cpu")
    if cpu_limit:
        out["NanoCpus"] = math.ceil(cpu_limit * 1e9)
    if cpu_request:
        out["CpuShares"] = max(2, math.ceil(cpu_request * 1024))
    memory_limit = quantity(tasks_pb2.Resources.MEMORY, limits=True, label="memory")
    memory_request = quantity(tasks_pb2.Resources.MEMORY, limits=False, label="memory")
    if memory_limit:
        out["Memory"] = math.ceil(memory_limit)
    if memory_request:
        out["MemoryReservation"] = math.ceil(memory_request)
    gpus = quantity(tasks_pb2.Resources.GPU, limits=True, label="gpu") or quantity(
        tasks_pb2.Resources.GPU, limits=False, label="gpu"
    )
    if gpus:
        out["DeviceRequests"] = [{"Driver": "", "Count": math.ceil(gpus), "Capabilities": [["gpu"]]}]
    return out


def local_folders(task_ctx: TaskContext) -> list[str]:
    """The local folders the task reads and writes (outermost only), each mounted at its own path:
    the execution's folder and any file or prefix outside it (a previous try's checkpoints)."""
    candidates: list[str] = []
    for ref in (
        task_ctx.data_dir,
        task_ctx.output_prefix,
        task_ctx.raw_output_prefix,
        task_ctx.checkpoint_prefix,
    ):
        if ref and is_local(ref):
            candidates.append(local_path(ref))
    for ref in (
        task_ctx.inputs_file,
        task_ctx.task_template_file,
        task_ctx.outputs_file,
        task_ctx.error_file,
    ):
        if ref and is_local(ref):
            candidates.append(os.path.dirname(local_path(ref)))
    previous = task_ctx.prev_checkpoint_prefix
    if previous and is_local(previous) and os.path.isdir(local_path(previous)):
        candidates.append(local_path(previous))
    return outermost([os.path.abspath(c) for c in candidates])


def input_paths(inputs: literals_pb2.LiteralMap) -> list[str]:
    """The local files and folders the inputs point at (a blob's or a structured dataset's URI, in
    collections and maps too) that exist here: mounted read-only at their own paths, so a task
    opens an input file that lives outside the execution's folder as it would on this machine."""
    found: set[str] = set()

    def visit(literal: literals_pb2.Literal) -> None:
        kind = literal.WhichOneof("value")
        if kind == "collection":
            for item in literal.collection.literals:
                visit(item)
        elif kind == "map":
            for item in literal.map.literals.values():
                visit(item)
        elif kind == "scalar":
            scalar = literal.scalar
            which = scalar.WhichOneof("value")
            uri = (
                scalar.blob.uri
                if which == "blob"
                else scalar.structured_dataset.uri
                if which == "structured_dataset"
                else ""
            )
            if uri and is_local(uri) and os.path.exists(local_path(uri)):
                found.add(os.path.abspath(local_path(uri)))

    for literal in inputs.literals.values():
        visit(literal)
    return sorted(found)


def outermost(paths: Sequence[str]) -> list[str]:
    """``paths`` without those inside another one of them."""
    kept: list[str] = []
    for path in sorted(set(paths), key=len):
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return kept


def create_body(
    task_ctx: TaskContext,
    task: tasks_pb2.TaskTemplate,
    *,
    image: str,
    command: Sequence[str],
    env: Mapping[str, str],
    mounts: Sequence[tuple[str, str, bool]],
    network: str | None,
    user: str | None,
    working_dir: str | None,
    init: bool = True,
) -> dict[str, Any]:
    """The ``POST /containers/create`` body (see the module docstring)."""
    labels = {str(k): str(v) for k, v in task_ctx.labels.items()}
    labels.update(owner_labels(task_ctx))
    host_config: dict[str, Any] = {
        **host_resources(merged_resources(task.container.resources, task_ctx.overrides.resources)),
        "Mounts": [
            {"Type": "bind", "Source": source, "Target": target, "ReadOnly": read_only}
            for source, target, read_only in mounts
        ],
    }
    if network:
        host_config["NetworkMode"] = network
    if init:
        # A small init (Docker's tini, Podman's catatonit) as PID 1 passes the stop signal on: the
        # command as PID 1 would ignore SIGTERM, and a kill would always wait for the SIGKILL.
        host_config["Init"] = True
    body: dict[str, Any] = {
        "Image": image,
        "Entrypoint": [],
        "Cmd": list(command),
        "Env": [f"{k}={v}" for k, v in env.items()],
        "Labels": labels,
        "HostConfig": host_config,
        "AttachStdout": False,
        "AttachStderr": False,
        "Tty": False,
    }
    if user:
        body["User"] = user
    if working_dir:
        body["WorkingDir"] = working_dir
    return body
