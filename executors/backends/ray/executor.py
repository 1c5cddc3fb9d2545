"""RayExecutor: runs a container task's command as a Ray job, through the dashboard's Jobs REST API.

The command (``container.command + container.args``, Flyte placeholders filled) becomes the job's
shell entrypoint; the container image is ignored, as the Ray cluster's own Python environment runs
it. The executor talks to the dashboard (``POST /api/jobs/``, ``GET /api/jobs/{id}``,
``POST /api/jobs/{id}/stop``, ``GET /api/jobs/{id}/logs``) with one ``httpx.AsyncClient`` per
executor instance, so it never blocks the event loop and needs no Ray installation on the Airflow
side.

Identity and idempotence: the job's ``submission_id`` is the execution's generated name. Everything
the executor needs later lives in Ray (the job) or in the data store (``outputs.pb``/``error.pb``),
so any process can check or stop a job another one submitted; a second submit of the same name is
refused by Ray ("already exists") and treated as a re-attach.

Where the data must live (the rule)
    Ray workers read ``inputs.pb`` and ``task.pb`` and write ``outputs.pb``/``error.pb`` *on the
    Ray nodes*, so the execution's data dir must be reachable from every node under the same name:

    * an object-store URL (``s3://``, ``gs://``, ``abfs://``, ...), or
    * a shared filesystem path (NFS, ...) mounted at the same path on every Ray node and here.

    A local path (plain path or ``file://``) is accepted without question only when the dashboard
    address is a loopback address (``127.x``, ``localhost``, ``::1``: the cluster runs on this
    machine). With any other address the start fails with a PERMANENT_FAILURE
    (``DataDirNotShared``) saying so, unless ``allow_local_data_dir=True`` declares the path a
    shared mount. ``memory://`` lives in this process only and always fails.

Status mapping (``GET /api/jobs/{id}``)
    PENDING -> QUEUED; RUNNING -> RUNNING; SUCCEEDED -> SUCCEEDED once the declared outputs exist
    (else PERMANENT_FAILURE ``OutputsNotFound``); FAILED -> what ``error.pb`` says when the task
    wrote one (RECOVERABLE: retryable, otherwise permanent; a corrupt one is retryable naming the
    file), else RETRYABLE_FAILURE with Ray's message, error type and driver exit code; STOPPED ->
    PERMANENT_FAILURE ``Stopped``; a job Ray does not know -> UNDEFINED naming the submission id.
    A dashboard that cannot be reached (connection error, timeout, HTTP 5xx) is UNKNOWN: the engine
    keeps asking, it is never a failure by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ipaddress
import json
import math
import os
import re
import shlex
import urllib.parse
from collections.abc import Mapping
from typing import Any

import httpx
from flyteidl.core import literals_pb2, tasks_pb2

from executors.backends.container import (
    container_command,
    make_local_output_folders,
    status_after_success,
    status_from_error_file,
    task_environment,
)
from executors.backends.outputs import OutputsResolver
from executors.backends.ray.packages import (
    PackageUploadError,
    runner_module_uri,
    with_pip_requirements,
    with_py_module,
)
from executors.backends.runner_package import runner_requirements, runs_the_runner
from executors.core.context import TaskContext
from executors.core.interface import Executor, ExecutorInitializationParameters, ExecutorProperties
from executors.core.output import OutputChunk, OutputLines, split_lines
from executors.core.phase import TaskPhase
from executors.core.resources import merged_resources, parse_quantity, resource_value
from executors.core.status import (
    ErrorOrigin,
    TaskError,
    TaskStatus,
    permanent_failure,
    retryable_failure,
    unknown_status,
)
from executors.data.storage import DataStore, is_local, protocol_of

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
MAX_MESSAGE_CHARS = 2000
"""Ray's failure message carries the last 20,000 characters of the job's logs; we keep a tail."""


def ray_entrypoint_resources(resources: tasks_pb2.Resources) -> dict[str, float | int]:
    """``entrypoint_num_cpus`` / ``entrypoint_num_gpus`` / ``entrypoint_memory`` for a job.

    Requests are used; a resource with only a limit uses the limit (as Kubernetes defaults a
    request to its limit). Memory is in bytes (rounded up), CPUs and GPUs may be fractional.
    """
    out: dict[str, float | int] = {}
    for name, key, label in (
        (tasks_pb2.Resources.CPU, "entrypoint_num_cpus", "cpu"),
        (tasks_pb2.Resources.GPU, "entrypoint_num_gpus", "gpu"),
        (tasks_pb2.Resources.MEMORY, "entrypoint_memory", "memory"),
    ):
        text = resource_value(resources, name)
        if text is None:
            text = resource_value(resources, name, limits=True)
        if text is None or text == "":
            continue
        number = parse_quantity(text, what=f"resources {label}")
        out[key] = math.ceil(number) if key == "entrypoint_memory" else number
    return out


# -- small helpers -----------------------------------------------------------------------------------


def _as_bool(value: bool | str | int | None) -> bool:
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("", "0", "false", "no", "off", "none"):
            return False
        raise ValueError(f"not a boolean: {value!r}")
    return bool(value)


def _as_mapping(value: Mapping[str, Any] | str | None, what: str) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValueError(f"RayExecutor {what}: not a JSON object: {exc}") from None
    if not isinstance(value, Mapping):
        raise ValueError(f"RayExecutor {what}: expected a mapping, got {type(value).__name__}")
    return dict(value)


def _default_address() -> str:
    env = os.environ.get("RAY_ADDRESS", "")
    if env.startswith(("http://", "https://")):
        return env
    return DEFAULT_ADDRESS


def is_loopback_host(host: str | None) -> bool:
    """``127.x``, ``::1``, ``localhost`` (and ``*.localhost``)."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _shorten(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """The first line and the tail of a long text."""
    text = text.strip()
    if len(text) <= limit:
        return text
    first = text.split("\n", 1)[0][: limit // 4]
    tail = text[-(limit - len(first)) :]
    tail = tail.split("\n", 1)[-1] if "\n" in tail else tail
    return f"{first}\n...\n{tail}"


_AGENT_REJECTED_RE = re.compile(r"Request failed with status code 4\d\d")
_MISSING_MODULE_RE = re.compile(r"ModuleNotFoundError: No module named '([^'\s]+)'")
_EXCEPTION_LINE_RE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception): .+$", re.MULTILINE)


def _ray_message(response: httpx.Response) -> str:
    """What the dashboard said: a JSON ``message``, or (Ray answers errors with a plain-text
    traceback) the last exception line of the traceback, or the text itself."""
    text = response.text.strip()
    try:
        body = response.json()
    except ValueError:
        exceptions = _EXCEPTION_LINE_RE.findall(text)
        if exceptions:
            return str(exceptions[-1]).strip()
        return text or f"HTTP {response.status_code}"
    if isinstance(body, dict):
        for key in ("message", "msg", "detail", "error"):
            if isinstance(body.get(key), str):
                return str(body[key])
    return text


class _Unreachable(Exception):
    """The dashboard could not be reached or answered with a server error: transient."""


MAX_LOG_RESPONSE_BYTES = 16 * 1024 * 1024
"""The largest job log ``read_output`` fetches from the dashboard (it serves logs whole)."""


def _tail_bytes(text: str, max_bytes: int) -> str:
    data = text.encode("utf-8", errors="replace")
    if len(data) <= max_bytes:
        return text
    cut = data[-max_bytes:].decode("utf-8", errors="ignore")
    return "..." + (cut.split("\n", 1)[-1] if "\n" in cut else cut)


class RayExecutor(Executor):
    """Run container tasks as Ray jobs (Ray Jobs REST API of the dashboard).

    Configuration (keyword arguments; strings are accepted so they can come from a config file):

    ``address``
        the dashboard URL (default: ``$RAY_ADDRESS`` when it is an http(s) URL, else
        ``http://127.0.0.1:8265``).
    ``headers``
        extra HTTP headers for every request (a mapping or a JSON object string), e.g. for a proxy.
    ``token``
        sent as ``Authorization: Bearer <token>``.
    ``request_timeout``
        seconds one HTTP request may take (default 30); beyond it the call answers UNKNOWN.
    ``runtime_env``
        a Ray runtime environment (mapping or JSON) merged into every job's: ``pip``,
        ``working_dir``, ``env_vars`` (the task's own variables win), ...
    ``allow_local_data_dir``
        the data dir is a local path that is mounted identically on every Ray node (see the
        module docstring); without it a local data dir requires a loopback dashboard address.
    ``entrypoint_resources``
        custom Ray resources (a mapping or JSON, name -> amount) the job's entrypoint needs, e.g.
        ``{"gpu_node": 1}``: Ray runs the task only on a node that has them (without any resource
        requested, Ray runs a job's entrypoint on the head node).
    ``ship_runner``
        (default true) send this package with every function task (``@task.executor``) job as a
        ``py_modules`` entry (:mod:`executors.backends.ray.packages`), so Ray nodes need not have it
        installed and always run the submitter's version of the runner.
    ``runner_dependencies``
        ``"installed"`` (default): the nodes' Python has the runner's libraries (flyteidl, protobuf,
        fsspec, msgpack, jsonschema, referencing, and s3fs/gcsfs/adlfs for a data dir on an object store);
        ``"pip"``: add them, with this package's version ranges, to the job's ``runtime_env.pip``
        so Ray installs them for the job (once per node and set of requirements; the nodes need a
        package index). A job that fails because a module is missing on the node is a permanent
        failure naming the module and these two options.
    """

    id = "ray"

    def __init__(
        self,
        *,
        address: str | None = None,
        headers: Mapping[str, str] | str | None = None,
        token: str | None = None,
        request_timeout: float | str = 30.0,
        runtime_env: Mapping[str, Any] | str | None = None,
        allow_local_data_dir: bool | str = False,
        entrypoint_resources: Mapping[str, float] | str | None = None,
        ship_runner: bool | str = True,
        runner_dependencies: str = "installed",
    ) -> None:
        self.address = (address or _default_address()).rstrip("/")
        if not self.address.startswith(("http://", "https://")):
            raise ValueError(f"RayExecutor address {self.address!r}: expected an http(s) dashboard URL")
        self.headers = {str(k): str(v) for k, v in _as_mapping(headers, "headers").items()}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.request_timeout = float(request_timeout)
        self.runtime_env = _as_mapping(runtime_env, "runtime_env")
        env_vars = self.runtime_env.get("env_vars", {})
        if not isinstance(env_vars, Mapping):
            raise ValueError("RayExecutor runtime_env.env_vars: expected a mapping of strings")
        self.allow_local_data_dir = _as_bool(allow_local_data_dir)
        self.entrypoint_resources: dict[str, float] = {}
        for name, amount in _as_mapping(entrypoint_resources, "entrypoint_resources").items():
            if isinstance(amount, bool) or not isinstance(amount, int | float) or amount <= 0:
                raise ValueError(
                    f"RayExecutor entrypoint_resources[{name!r}]: expected a number > 0, got {amount!r}"
                )
            self.entrypoint_resources[str(name)] = float(amount)
        self.ship_runner = _as_bool(ship_runner)
        if runner_dependencies not in ("installed", "pip"):
            raise ValueError(
                f"RayExecutor runner_dependencies {runner_dependencies!r}: expected 'installed' or 'pip'"
            )
        self.runner_dependencies = runner_dependencies
        if runner_dependencies == "pip":
            with_pip_requirements(self.runtime_env, [])  # a pip entry we cannot add to fails here
        self._store = DataStore()
        self._outputs: OutputsResolver | None = None
        self._client: httpx.AsyncClient | None = None

    def get_properties(self) -> ExecutorProperties:
        return ExecutorProperties(requires_finalizer=True)

    async def initialize(self, params: ExecutorInitializationParameters) -> None:
        if params.data_store is not None:
            self._store = params.data_store
        self._outputs = OutputsResolver(self._store)
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.address,
                headers=self.headers,
                timeout=httpx.Timeout(self.request_timeout),
            )

    async def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- HTTP ----------------------------------------------------------------------------------

    async def _request(
        self, method: str, path: str, *, raise_5xx: bool = True, **kwargs: Any
    ) -> httpx.Response:
        """One request; :class:`_Unreachable` for connection trouble, timeouts and (unless
        ``raise_5xx`` is false) HTTP 5xx."""
        if self._client is None:
            raise RuntimeError("RayExecutor.initialize() was not called")
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise _Unreachable(
                f"the Ray dashboard at {self.address} did not answer {method} {path} within "
                f"{self.request_timeout:g}s ({type(exc).__name__})"
            ) from exc
        except httpx.TransportError as exc:
            raise _Unreachable(
                f"the Ray dashboard at {self.address} cannot be reached ({type(exc).__name__}: {exc})"
            ) from exc
        if raise_5xx and response.status_code >= 500:
            raise _Unreachable(
                f"the Ray dashboard at {self.address} answered {method} {path} with HTTP "
                f"{response.status_code}: {_shorten(_ray_message(response), 500)}"
            )
        return response

    def _job_path(self, task_ctx: TaskContext) -> str:
        return f"/api/jobs/{urllib.parse.quote(task_ctx.generated_name, safe='')}"

    # -- start ---------------------------------------------------------------------------------

    async def start_task(
        self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate, inputs: literals_pb2.LiteralMap
    ) -> TaskStatus:
        unreachable = self._data_dir_problem(task_ctx)
        if unreachable is not None:
            return permanent_failure(TaskError("DataDirNotShared", unreachable, ErrorOrigin.USER))
        command = container_command(self.id, task, task_ctx, inputs)
        if isinstance(command, TaskStatus):
            return command
        try:
            resources = ray_entrypoint_resources(
                merged_resources(task.container.resources, task_ctx.overrides.resources)
            )
        except ValueError as exc:
            return permanent_failure(TaskError("InvalidResources", str(exc), ErrorOrigin.USER))
        await self._make_local_folders(task_ctx)
        runtime_env = self._runtime_env(task_ctx, task)
        if runs_the_runner(command):
            shipped = await self._with_runner(task_ctx, runtime_env)
            if isinstance(shipped, TaskStatus):
                return shipped
            runtime_env = shipped
        body: dict[str, Any] = {
            "entrypoint": shlex.join(command),
            "submission_id": task_ctx.generated_name,
            "runtime_env": runtime_env,
            "metadata": self._metadata(task_ctx),
            **resources,
        }
        if self.entrypoint_resources:
            body["entrypoint_resources"] = dict(self.entrypoint_resources)
        try:
            response = await self._request("POST", "/api/jobs/", json=body, raise_5xx=False)
        except _Unreachable as exc:
            return unknown_status(TaskError("RayUnreachable", str(exc), ErrorOrigin.SYSTEM))
        if response.status_code in (400, 500) and "already exists" in response.text:
            # Submitted before (a restart, a retried call): re-attach, never submit twice. Ray
            # answers 400 in some versions and 500 (with the agent's traceback) in 2.60.
            return await self.check_task_status(task_ctx, task)
        if response.status_code >= 500 and _AGENT_REJECTED_RE.search(response.text):
            # The head relays the job agent's "invalid request" (HTTP 400) as a 500 (Ray 2.60).
            return permanent_failure(
                TaskError(
                    "RayRejectedJob",
                    f"the Ray dashboard at {self.address} refused job {task_ctx.generated_name}: "
                    f"{_shorten(_ray_message(response))}",
                    ErrorOrigin.USER,
                )
            )
        if response.status_code >= 500:
            return unknown_status(
                TaskError(
                    "RayUnreachable",
                    f"the Ray dashboard at {self.address} answered the submission of "
                    f"{task_ctx.generated_name} with HTTP {response.status_code}: "
                    f"{_shorten(_ray_message(response), 500)}",
                    ErrorOrigin.SYSTEM,
                )
            )
        if response.is_success:
            return TaskStatus(TaskPhase.QUEUED, state=self._state(task_ctx, response, "PENDING"))
        return permanent_failure(
            TaskError(
                "RayRejectedJob",
                f"the Ray dashboard at {self.address} refused job {task_ctx.generated_name} "
                f"(HTTP {response.status_code}): {_shorten(_ray_message(response))}",
                ErrorOrigin.USER,
            )
        )

    def _data_dir_problem(self, task_ctx: TaskContext) -> str | None:
        """Why Ray workers could not reach this execution's files, or ``None`` when they can."""
        references = {
            "inputs_file": task_ctx.inputs_file,
            "outputs_file": task_ctx.outputs_file,
            "error_file": task_ctx.error_file,
            "task_template_file": task_ctx.task_template_file,
        }
        for name, ref in references.items():
            if protocol_of(ref) == "memory":
                return (
                    f"{name} {ref} is in this process's memory and Ray workers cannot read it; use an "
                    "object store (s3://, gs://, ...) or a filesystem path shared by every Ray node "
                    "for the data dir"
                )
        host = urllib.parse.urlsplit(self.address).hostname
        if self.allow_local_data_dir or is_loopback_host(host):
            return None
        for name, ref in references.items():
            if is_local(ref):
                return (
                    f"the data dir is a local path ({name} {ref}) but the Ray dashboard at "
                    f"{self.address} is not on this machine, so Ray workers cannot read inputs.pb or "
                    "write outputs.pb there; use an object-store URL (s3://, gs://, ...) for the data "
                    "dir, or a shared filesystem path mounted identically on every Ray node and set "
                    "allow_local_data_dir=True"
                )
        return None

    async def _with_runner(
        self, task_ctx: TaskContext, runtime_env: dict[str, Any]
    ) -> dict[str, Any] | TaskStatus:
        """``runtime_env`` with the runner's package (``ship_runner``) and its requirements
        (``runner_dependencies='pip'``); UNKNOWN when the upload cannot reach the dashboard."""
        if self.runner_dependencies == "pip":
            protocols = {protocol_of(ref) for ref in (task_ctx.inputs_file, task_ctx.output_prefix)}
            runtime_env = with_pip_requirements(runtime_env, runner_requirements(sorted(protocols)))
        if not self.ship_runner:
            return runtime_env
        try:
            uri = await runner_module_uri(self._request)
        except _Unreachable as exc:
            return unknown_status(TaskError("RayUnreachable", str(exc), ErrorOrigin.SYSTEM))
        except PackageUploadError as exc:
            return permanent_failure(
                TaskError("RunnerUploadFailed", f"job {task_ctx.generated_name}: {exc}", ErrorOrigin.SYSTEM)
            )
        return with_py_module(runtime_env, uri)

    async def _make_local_folders(self, task_ctx: TaskContext) -> None:
        # A shared mount we cannot write to here is the workers' business, not a reason to fail the
        # start.
        with contextlib.suppress(OSError):
            await asyncio.to_thread(make_local_output_folders, task_ctx)

    def _runtime_env(self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate) -> dict[str, Any]:
        env = task_environment(task_ctx, task)
        runtime_env = copy.deepcopy(self.runtime_env)
        configured = {str(k): str(v) for k, v in (runtime_env.get("env_vars") or {}).items()}
        runtime_env["env_vars"] = {**configured, **env}
        return runtime_env

    @staticmethod
    def _metadata(task_ctx: TaskContext) -> dict[str, str]:
        metadata = {str(k): str(v) for k, v in task_ctx.labels.items()}
        metadata.update(
            {
                "submitted_by": "airflow-provider-executors",
                "owner_id": task_ctx.owner_id,
                "generated_name": task_ctx.generated_name,
                "task_name": task_ctx.task_execution_id.id.task_id.name,
                "retry_attempt": str(task_ctx.task_execution_id.id.retry_attempt),
            }
        )
        if task_ctx.owner_reference is not None:
            metadata["owner_kind"] = task_ctx.owner_reference.kind
            metadata["owner_name"] = task_ctx.owner_reference.name
        return metadata

    @staticmethod
    def _state(task_ctx: TaskContext, response: httpx.Response | None, ray_status: str) -> dict[str, Any]:
        state: dict[str, Any] = {"submission_id": task_ctx.generated_name, "ray_status": ray_status}
        if response is not None:
            try:
                body = response.json()
            except ValueError:
                body = None
            if isinstance(body, dict) and body.get("job_id"):
                state["job_id"] = str(body["job_id"])
        return state

    # -- status --------------------------------------------------------------------------------

    async def check_task_status(self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate) -> TaskStatus:
        try:
            response = await self._request("GET", self._job_path(task_ctx))
        except _Unreachable as exc:
            return unknown_status(TaskError("RayUnreachable", str(exc), ErrorOrigin.SYSTEM))
        name = task_ctx.generated_name
        if response.status_code == 404:
            return TaskStatus(
                TaskPhase.UNDEFINED,
                err=TaskError(
                    "NotStarted",
                    f"the Ray dashboard at {self.address} knows no job with submission id {name} "
                    "(never submitted, or the cluster was replaced)",
                    ErrorOrigin.SYSTEM,
                ),
            )
        if not response.is_success:
            return unknown_status(
                TaskError(
                    "RayStatusError",
                    f"GET {self._job_path(task_ctx)} answered HTTP {response.status_code}: "
                    f"{_shorten(_ray_message(response), 500)}",
                    ErrorOrigin.SYSTEM,
                )
            )
        try:
            info = response.json()
        except ValueError:
            info = None
        if not isinstance(info, dict):
            return unknown_status(
                TaskError("RayStatusError", f"job {name}: the dashboard answered no JSON object")
            )
        ray_status = str(info.get("status", ""))
        state = self._state(task_ctx, response, ray_status)
        if ray_status == "PENDING":
            return TaskStatus(TaskPhase.QUEUED, state=state)
        if ray_status == "RUNNING":
            return TaskStatus(TaskPhase.RUNNING, state=state)
        if ray_status == "SUCCEEDED":
            what = f"Ray job {task_ctx.generated_name} succeeded"
            return (await status_after_success(self._store, task_ctx, task, what=what)).with_state(state)
        if ray_status == "FAILED":
            return (await self._status_after_failure(task_ctx, task, info)).with_state(state)
        if ray_status == "STOPPED":
            message = str(info.get("message") or "").strip()
            return permanent_failure(
                TaskError(
                    "Stopped",
                    f"Ray job {name} was stopped" + (f": {_shorten(message)}" if message else ""),
                    ErrorOrigin.SYSTEM,
                )
            ).with_state(state)
        return unknown_status(
            TaskError("RayStatusError", f"job {name}: unrecognized Ray job status {ray_status!r}")
        ).with_state(state)

    async def _status_after_failure(
        self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate, info: Mapping[str, Any]
    ) -> TaskStatus:
        from_file = await status_from_error_file(self._store, task_ctx)
        if from_file is not None:
            return from_file
        exit_code = info.get("driver_exit_code")
        error_type = info.get("error_type")
        message = _shorten(str(info.get("message") or "no message"))
        missing = _MISSING_MODULE_RE.findall(message)
        if missing:
            # Before the command could write error.pb: the node's Python lacks a module. Every retry
            # would meet the same node set up the same way.
            command = [*task.container.command, *task.container.args]
            return permanent_failure(
                TaskError(
                    "ModuleNotFound",
                    f"Ray job {task_ctx.generated_name} failed: the Ray node's Python has no module "
                    f"{missing[-1]!r}; {self._missing_module_hint(missing[-1], runs_the_runner(command))}."
                    f"\n{message}",
                    ErrorOrigin.USER,
                )
            )
        pairs = (("error_type", error_type), ("driver_exit_code", exit_code))
        details = ", ".join(f"{k}={v}" for k, v in pairs if v is not None)
        code = f"ExitCode{exit_code}" if isinstance(exit_code, int) else str(error_type or "RayJobFailed")
        origin = ErrorOrigin.USER if isinstance(exit_code, int) else ErrorOrigin.SYSTEM
        return retryable_failure(
            TaskError(
                code,
                f"Ray job {task_ctx.generated_name} failed"
                + (f" ({details})" if details else "")
                + f": {message}",
                origin,
            )
        )

    def _missing_module_hint(self, module: str, runner: bool) -> str:
        if module.split(".")[0] == "executors":
            return (
                "this package (airflow-provider-executors) is not installed there; keep the Ray "
                "executor's ship_runner on (the default) to send it with the job, or install it on "
                "every node"
            )
        if runner:
            return (
                f"the function-task runner needs {', '.join(runner_requirements())} (and the data "
                "dir's fsspec filesystem); install them on every Ray node, or set the Ray "
                "executor's runner_dependencies='pip' so that Ray installs them for the job"
            )
        return "install it on every Ray node, or add it to the Ray executor's runtime_env (pip)"

    # -- kill ------------------------------------------------------------------------------------

    async def kill_task(self, task_ctx: TaskContext, reason: str) -> None:
        """Ask Ray to stop the job. A finished or unknown job is fine; an unreachable dashboard
        raises (the engine retries, since ``requires_finalizer``).

        Ray limitation (2.60): a job still PENDING (waiting for resources) is only stopped once
        its supervisor gets resources, and its entrypoint may start briefly before the stop
        lands; until then Ray reports it PENDING (or FAILED after ``RAY_JOB_START_TIMEOUT_SECONDS``).
        """
        try:
            response = await self._request("POST", self._job_path(task_ctx) + "/stop")
        except _Unreachable as exc:
            raise ConnectionError(f"cannot stop Ray job {task_ctx.generated_name}: {exc}") from exc
        if response.is_success or response.status_code == 404:
            return
        raise RuntimeError(
            f"stopping Ray job {task_ctx.generated_name} failed (HTTP {response.status_code}): "
            f"{_shorten(_ray_message(response), 500)}"
        )

    # -- extras ----------------------------------------------------------------------------------

    def get_run_url(self, task_ctx: TaskContext) -> str | None:
        return f"{self.address}/#/jobs/{task_ctx.generated_name}"

    async def read_logs(self, task_ctx: TaskContext, max_bytes: int = 64_000) -> str | None:
        """The tail of the job's logs; ``None`` when the dashboard has none or cannot be reached
        (this is best effort: it must never fail the task)."""
        try:
            response = await self._request("GET", self._job_path(task_ctx) + "/logs")
            if not response.is_success:
                return None
            body = response.json()
        except (_Unreachable, ValueError, httpx.HTTPError):
            return None
        logs = body.get("logs") if isinstance(body, dict) else None
        if not isinstance(logs, str) or not logs.strip():
            return None
        header = f"----- Ray job {task_ctx.generated_name} ({self.get_run_url(task_ctx)}) -----\n"
        return header + _tail_bytes(logs.strip(), max_bytes)

    async def read_output(
        self,
        task_ctx: TaskContext,
        cursor: Mapping[str, Any] | None,
        *,
        max_bytes: int = 64_000,
        final: bool = False,
    ) -> OutputChunk:
        """The job's new log lines (Ray merges stdout and stderr: stream ``"output"``).

        The dashboard serves a job's log whole, so each read transfers all of it and keeps what
        follows the cursor (a byte offset): fine for the output of a typical task. A log larger
        than ``MAX_LOG_RESPONSE_BYTES`` is not read at all (the triggerer must not hold it): one line
        says so and where to see it, and nothing more is copied. Raises ``ConnectionError`` when
        the dashboard cannot be reached (the engine tries again later)."""
        pos = int((cursor or {}).get("pos", 0))
        if (cursor or {}).get("too_large"):
            return OutputChunk((), dict(cursor or {}))
        body = await self._get_capped(self._job_path(task_ctx) + "/logs", MAX_LOG_RESPONSE_BYTES)
        if body is None:
            note = (
                f"[Ray job {task_ctx.generated_name}: its log is over {MAX_LOG_RESPONSE_BYTES:,} bytes, "
                f"too large to copy here from the dashboard; see {self.get_run_url(task_ctx)}]"
            )
            return OutputChunk((OutputLines("output", note),), {"pos": pos, "too_large": True})
        if not body:  # no such job (yet): nothing printed
            return OutputChunk((), {"pos": pos})
        try:
            logs = json.loads(body).get("logs")
        except (ValueError, AttributeError):
            logs = None
        data = logs.encode("utf-8", errors="replace") if isinstance(logs, str) else b""
        if len(data) < pos:  # not the log we were reading (the job was resubmitted): from the start
            pos = 0
        piece = data[pos : pos + max_bytes]
        text, used = split_lines(piece, final=final, full=len(piece) >= max_bytes)
        more = pos + used < len(data) and len(piece) >= max_bytes
        pieces = () if text is None else (OutputLines("output", text),)
        return OutputChunk(pieces, {"pos": pos + used}, more=more)

    async def _get_capped(self, path: str, cap: int) -> bytes | None:
        """The body of a GET, ``b""`` for a 404, ``None`` when it is larger than ``cap`` bytes
        (read no further than that). ``ConnectionError`` for connection trouble and HTTP 5xx,
        ``RuntimeError`` for another failure status."""
        if self._client is None:
            raise RuntimeError("RayExecutor.initialize() was not called")
        try:
            async with self._client.stream("GET", path) as response:
                if response.status_code == 404:
                    return b""
                if not response.is_success:
                    raise (ConnectionError if response.status_code >= 500 else RuntimeError)(
                        f"the Ray dashboard at {self.address} answered GET {path} "
                        f"with HTTP {response.status_code}"
                    )
                declared = response.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > cap:
                    return None
                body = bytearray()
                async for piece in response.aiter_bytes():
                    body += piece
                    if len(body) > cap:
                        return None
                return bytes(body)
        except httpx.TimeoutException as exc:
            raise ConnectionError(
                f"the Ray dashboard at {self.address} did not answer GET {path} "
                f"within {self.request_timeout:g}s"
            ) from exc
        except httpx.TransportError as exc:
            raise ConnectionError(f"the Ray dashboard at {self.address} cannot be reached ({exc})") from exc

    # -- outputs ---------------------------------------------------------------------------------

    async def resolve_outputs(
        self, task_ctx: TaskContext, *output_variables: str
    ) -> dict[str, literals_pb2.Literal]:
        resolver = self._outputs or OutputsResolver(self._store)
        return await resolver.resolve_outputs(task_ctx, *output_variables)
