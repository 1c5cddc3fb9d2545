"""What every executor of container tasks shares: the command's placeholders, its environment,
and how the files a finished task left behind (``outputs.pb``, ``error.pb``) become a status."""

from __future__ import annotations

import os

from flyteidl.core import literals_pb2, tasks_pb2

from executors.backends.outputs import read_error_document, status_from_error_document, task_file_root
from executors.backends.templating import TemplateParameters, render_command
from executors.core.context import TaskContext
from executors.core.errors import CorruptDataError, DataStoreError, TemplateRenderError
from executors.core.phase import TaskPhase
from executors.core.status import (
    ErrorOrigin,
    TaskError,
    TaskStatus,
    permanent_failure,
    retryable_failure,
    unknown_status,
)
from executors.data.storage import DataStore, is_local, local_path

CLOUD_CREDENTIALS = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION",
    "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "GOOGLE_APPLICATION_CREDENTIALS",
    "AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_CONNECTION_STRING",
)  # fmt: skip
"""The usual cloud credential variables (what fsspec's s3fs, gcsfs and adlfs read), which a task
whose data is on an object store needs in order to read its inputs and write its outputs."""


def store_credentials(task_ctx: TaskContext) -> tuple[str, ...]:
    """:data:`CLOUD_CREDENTIALS` when the execution's data (data dir, inputs, outputs) is on an
    object store, else nothing: a local task never gets the starter's cloud credentials."""
    references = (task_ctx.data_dir, task_ctx.inputs_file, task_ctx.output_prefix)
    return () if all(is_local(ref) for ref in references if ref) else CLOUD_CREDENTIALS


def template_parameters(task_ctx: TaskContext, inputs: literals_pb2.LiteralMap) -> TemplateParameters:
    """Flyte's placeholder values for this execution; local references become plain paths."""

    def path(ref: str) -> str:
        return local_path(ref) if ref and is_local(ref) else ref

    return TemplateParameters(
        input_file=path(task_ctx.inputs_file),
        input_prefix=path(task_ctx.input_prefix),
        output_prefix=path(task_ctx.output_prefix),
        raw_output_prefix=path(task_ctx.raw_output_prefix),
        checkpoint_output_prefix=path(task_ctx.checkpoint_prefix),
        prev_checkpoint_prefix=path(task_ctx.prev_checkpoint_prefix),
        per_retry_unique_key=task_ctx.generated_name,
        task_template_path=path(task_ctx.task_template_file),
        inputs=inputs,
    )


def container_command(
    executor_id: str, task: tasks_pb2.TaskTemplate, task_ctx: TaskContext, inputs: literals_pb2.LiteralMap
) -> list[str] | TaskStatus:
    """The rendered ``command + args``, or the permanent failure that explains why there is none
    (no container, an unknown placeholder or input)."""
    if not task.HasField("container") or (not task.container.command and not task.container.args):
        return permanent_failure(
            TaskError(
                "MissingContainer",
                f"task {task.id.name or '<unnamed>'}: the {executor_id} executor runs container tasks, "
                "and this template has no container command",
                ErrorOrigin.USER,
            )
        )
    try:
        return render_command(
            [*task.container.command, *task.container.args], template_parameters(task_ctx, inputs)
        )
    except TemplateRenderError as exc:
        return permanent_failure(TaskError("InvalidCommand", str(exc), ErrorOrigin.USER))


def make_local_output_folders(task_ctx: TaskContext) -> None:
    """Create the folders of the task's ``outputs.pb``, raw outputs and checkpoints where they are
    local paths (an object store needs none): a convenience for commands that open
    ``<outputPrefix>/outputs.pb`` directly. An unwritable folder raises OSError."""
    for ref in (
        task_ctx.outputs_file,
        task_ctx.raw_output_prefix + "/x",  # a prefix is itself the folder of what is written under it
        task_ctx.checkpoint_prefix + "/x",
    ):
        if is_local(ref):
            os.makedirs(os.path.dirname(local_path(ref)), exist_ok=True)


def task_environment(task_ctx: TaskContext, task: tasks_pb2.TaskTemplate) -> dict[str, str]:
    """Flyte's ``FLYTE_INTERNAL_*`` variables, then the container's ``env``, then the overrides,
    then the secrets (``task_ctx.secret_environment``)."""
    ident = task_ctx.task_execution_id.id
    env = {
        # What flytekit's entrypoint reads to know where it runs.
        "FLYTE_INTERNAL_EXECUTION_PROJECT": ident.node_execution_id.execution_id.project,
        "FLYTE_INTERNAL_EXECUTION_DOMAIN": ident.node_execution_id.execution_id.domain,
        "FLYTE_INTERNAL_EXECUTION_ID": ident.node_execution_id.execution_id.name,
        "FLYTE_INTERNAL_TASK_NAME": ident.task_id.name,
        "FLYTE_INTERNAL_TASK_VERSION": ident.task_id.version,
        "FLYTE_ATTEMPT_NUMBER": str(ident.retry_attempt),
    }
    env.update({kv.key: kv.value for kv in task.container.env})
    env.update(task_ctx.overrides.environment)
    env.update(task_ctx.secret_environment)
    # A NUL cannot be passed in an environment (an Airflow run id may hold anything).
    return {k: v.replace("\x00", "") for k, v in env.items()}


async def status_after_success(
    store: DataStore, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate, *, what: str
) -> TaskStatus:
    """The status of a task whose process ended well (exit 0, a succeeded job).

    ``error.pb`` decides first when the task wrote one, whatever the exit code and whether outputs
    are declared: flytekit's ``pyflyte-execute`` reports a user exception by writing it and exiting
    0. Else SUCCEEDED once the declared outputs exist; ``what`` says what succeeded, for the message
    when they do not (a permanent ``OutputsNotFound``). A store we cannot reach is UNKNOWN."""
    from_file = await status_from_error_file(store, task_ctx)
    if from_file is not None:
        return from_file
    if not task.interface.outputs.variables:
        return TaskStatus(TaskPhase.SUCCEEDED)
    try:
        present = await store.exists(task_ctx.outputs_file)
    except DataStoreError as exc:
        return unknown_status(TaskError("DataStoreUnavailable", str(exc), ErrorOrigin.SYSTEM))
    if present:
        return TaskStatus(TaskPhase.SUCCEEDED)
    declared = ", ".join(sorted(task.interface.outputs.variables))
    return permanent_failure(
        TaskError(
            "OutputsNotFound",
            f"{what} but wrote no {task_ctx.outputs_file} (declared outputs: {declared})",
            ErrorOrigin.USER,
        )
    )


async def status_from_error_file(store: DataStore, task_ctx: TaskContext) -> TaskStatus | None:
    """What the task's ``error.pb`` says, or ``None`` when it wrote none. A corrupt file is a
    retryable failure naming it; a store we cannot reach is UNKNOWN."""
    try:
        document = await read_error_document(
            store, task_ctx.error_file, within=task_file_root(task_ctx, task_ctx.error_file)
        )
    except CorruptDataError as exc:
        return retryable_failure(TaskError("CorruptErrorFile", str(exc), ErrorOrigin.SYSTEM))
    except DataStoreError as exc:
        return unknown_status(TaskError("DataStoreUnavailable", str(exc), ErrorOrigin.SYSTEM))
    return status_from_error_document(document) if document is not None else None
