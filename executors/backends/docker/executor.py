"""DockerExecutor: runs a container task in its own image, through the Docker Engine API.

The task's ``TaskTemplate.container`` becomes a container (:mod:`.spec`): its image, its command
with Flyte's placeholders rendered, its environment and resources. The same code drives Docker and
Podman's Docker-compatible service (``podman system service``).

Identity and re-attach
    The container's name is the execution's generated name; labels carry the owner (DAG, run, task,
    attempt). ``start_task`` first looks the name up: a container that exists is re-attached to
    (started if a crash left it created), never created twice; a create that loses a race for the
    name (HTTP 409) re-attaches too. Everything a later call needs is in the engine (the container)
    or in the execution's folder, so another process (a restarted triggerer, a worker adopting a
    task) checks and kills it the same way.

Data
    A local data dir is bind-mounted at the same path (every local folder the task reads or writes:
    :func:`.spec.local_folders`), so Flyte's placeholders keep their values inside the container;
    the engine must run on this machine for that. An object-store data dir needs no mount: the
    variables named by ``pass_env`` (by default the usual cloud credential variables, when the data
    dir is not local) are passed from this process to the container.

Secrets
    Each secret of ``security_context.secrets`` becomes a file, as flytekit reads it
    (``/etc/secrets/<group>/<key>``), in a private folder of this machine (``secrets_dir``, by
    default under ``/dev/shm``, a memory filesystem) mounted read-only into the container: never in
    its environment, its labels or ``docker inspect``. The folder is removed when the container
    ends or is killed.

Ends
    The status rules are in :mod:`.status`. When a container has ended, ``on_finish`` says what
    happens to it: ``keep``, ``delete``, or ``delete_succeeded`` (the default: a failed container
    stays for a person to look at, like KubernetesPodOperator's ``on_finish_action``). Before one is
    removed, its log and final state are saved in the execution's folder (``logs/container.log``,
    ``logs/container-state.json``), so a later read of its output or status (the final copy of the
    output, another process re-attaching) finds them; a container that disappears without that
    record was removed behind our back: a retryable failure.

Kill
    Stop (SIGTERM, then SIGKILL after ``stop_grace`` s), then remove. Idempotent.

An engine that cannot be reached (socket gone, restarting, timeout) is UNKNOWN, never a failure.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

from flyteidl.core import literals_pb2, tasks_pb2

from executors.backends.container import (
    container_command,
    make_local_output_folders,
    store_credentials,
    task_environment,
)
from executors.backends.docker.engine import EngineClient, EngineError, EngineUnreachable, resolve_address
from executors.backends.docker.logs import (
    FrameDecoder,
    LogCursor,
    LogLine,
    LogSelection,
    blocks,
    read_saved,
    saved_line,
)
from executors.backends.docker.spec import create_body, input_paths, local_folders, outermost
from executors.backends.docker.status import ended_status, running_status
from executors.backends.outputs import OutputsResolver
from executors.core.context import TaskContext
from executors.core.errors import DataNotFoundError, DataStoreError
from executors.core.interface import Executor, ExecutorInitializationParameters, ExecutorProperties
from executors.core.output import OutputChunk, OutputLines
from executors.core.phase import TaskPhase
from executors.core.secrets import DEFAULT_SECRETS_DIR, secret_env_name, secret_file_path
from executors.core.status import ErrorOrigin, TaskError, TaskStatus, permanent_failure, unknown_status
from executors.data.storage import DataStore, is_local, join, local_path

PULL_POLICIES = ("IfNotPresent", "Always", "Never")
ON_FINISH = ("keep", "delete", "delete_succeeded")
SAVED_LOG = "logs/container.log"
SAVED_STATE = "logs/container-state.json"
SAVED_LOG_BYTES = 8 * 2**20
"""At most this much of the end of a container's log is saved before it is removed."""
TAIL_LINES = 200


def _option_choice(name: str, value: str, choices: Sequence[str]) -> str:
    for choice in choices:
        if value.strip().lower() == choice.lower():
            return choice
    raise ValueError(f"docker executor option {name}: expected one of {', '.join(choices)}, got {value!r}")


def _names(value: Sequence[str] | str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            value = [str(v) for v in json.loads(text)]
        else:
            value = [part.strip() for part in text.split(",")]
    return tuple(v for v in value if v)


def _mounts_option(
    value: Sequence[str | Mapping[str, Any]] | str | None,
) -> tuple[tuple[str, str, bool], ...]:
    what = "docker executor option mounts"
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValueError(f"{what}: not a JSON list ({exc})") from None
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ValueError(f"{what}: expected a list, got {value!r}")
    out = []
    for index, entry in enumerate(value):
        if isinstance(entry, str):
            source, target, read_only = entry, entry, False
        elif isinstance(entry, Mapping) and entry.get("source"):
            source, target = str(entry["source"]), str(entry.get("target") or entry["source"])
            read_only = bool(entry.get("read_only", False))
        else:
            raise ValueError(
                f"{what}[{index}]: expected a path or {{source, target, read_only}}, got {entry!r}"
            )
        if not (source.startswith("/") and target.startswith("/")):
            raise ValueError(f"{what}[{index}]: paths must be absolute, got {entry!r}")
        out.append((source, target, read_only))
    return tuple(out)


def _default_secrets_dir() -> str:
    return (
        "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
    )


class DockerExecutor(Executor):
    """Run container tasks in their own image (Docker Engine API; see the module docstring).

    Configuration (keyword arguments; strings are accepted so they can come from a config file):

    ``address``
        the engine: ``unix:///path/to/docker.sock``, ``tcp://host:2375`` or an http(s) URL
        (default: ``$DOCKER_HOST``, else ``unix:///var/run/docker.sock``).
    ``default_image``
        the image of a template that names none (``@task.executor`` functions, commands).
    ``pull``
        ``IfNotPresent`` (default), ``Always`` or ``Never``. An image that is missing and cannot be
        pulled fails the start without retry, naming the image and the engine's reason.
    ``on_finish``
        ``delete_succeeded`` (default), ``delete`` or ``keep`` (see the module docstring).
    ``network``
        the container's ``NetworkMode`` (``host``, ``bridge``, a network name; default: the
        engine's default).
    ``user``, ``working_dir``
        the container's user (``uid[:gid]`` or a name) and working directory.
    ``pass_env``
        names of this process's variables passed to the container (a list or comma-separated);
        default: the common cloud credential variables when the data dir is not local, else none.
    ``mounts``
        more host folders for every container (a list, or JSON): an absolute path (mounted at
        the same path, read-write) or ``{"source": ..., "target": ..., "read_only": true}``.
    ``secrets_dir``
        the folder of this machine under which a container's secret files are made (default
        ``/dev/shm``); it must be where the engine can mount it from.
    ``init``
        run a small init as the container's PID 1 (default true), so that the command gets the
        SIGTERM of a kill (a command that is PID 1 ignores it and is SIGKILLed after ``stop_grace``).
    ``stop_grace``
        seconds between SIGTERM and SIGKILL on a kill (default 10).
    ``request_timeout``
        seconds one Engine API call may take (default 30); ``pull_timeout`` for a pull (600).
    """

    id = "docker"

    def __init__(
        self,
        *,
        address: str | None = None,
        default_image: str | None = None,
        pull: str = "IfNotPresent",
        on_finish: str = "delete_succeeded",
        network: str | None = None,
        user: str | None = None,
        working_dir: str | None = None,
        pass_env: Sequence[str] | str | None = None,
        mounts: Sequence[str | Mapping[str, Any]] | str | None = None,
        secrets_dir: str | None = None,
        init: bool | str = True,
        stop_grace: float | str = 10,
        request_timeout: float | str = 30.0,
        pull_timeout: float | str = 600.0,
    ) -> None:
        self.address = resolve_address(address)
        self.default_image = (default_image or "").strip() or None
        self.pull = _option_choice("pull", pull, PULL_POLICIES)
        self.on_finish = _option_choice("on_finish", on_finish, ON_FINISH)
        self.network = (network or "").strip() or None
        self.user = (user or "").strip() or None
        self.working_dir = (working_dir or "").strip() or None
        self.pass_env = _names(pass_env)
        self.mounts = _mounts_option(mounts)
        self.secrets_dir = secrets_dir or _default_secrets_dir()
        self.init = (
            init if isinstance(init, bool) else str(init).strip().lower() in ("1", "true", "yes", "on")
        )
        self.stop_grace = max(0, round(float(stop_grace)))
        self.request_timeout = float(request_timeout)
        self.pull_timeout = float(pull_timeout)
        for name, value in (("request_timeout", self.request_timeout), ("pull_timeout", self.pull_timeout)):
            if not value > 0:
                raise ValueError(f"docker executor option {name}: must be > 0, got {value!r}")
        self._store = DataStore()
        self._outputs: OutputsResolver | None = None
        self._engine: EngineClient | None = None

    def get_properties(self) -> ExecutorProperties:
        return ExecutorProperties(requires_finalizer=True)

    async def initialize(self, params: ExecutorInitializationParameters) -> None:
        if params.data_store is not None:
            self._store = params.data_store
        self._outputs = OutputsResolver(self._store)
        if self._engine is None:
            self._engine = EngineClient(self.address, timeout=self.request_timeout)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.aclose()
            self._engine = None

    @property
    def engine(self) -> EngineClient:
        if self._engine is None:
            raise RuntimeError("DockerExecutor.initialize() was not called")
        return self._engine

    # -- start -----------------------------------------------------------------------------------

    async def start_task(
        self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate, inputs: literals_pb2.LiteralMap
    ) -> TaskStatus:
        name = task_ctx.generated_name
        command = container_command(self.id, task, task_ctx, inputs)
        if isinstance(command, TaskStatus):
            return command
        image = task.container.image.strip() or self.default_image
        if not image:
            return permanent_failure(
                TaskError(
                    "MissingImage",
                    f"task {task.id.name or '<unnamed>'}: the template names no container image and the "
                    "docker executor has no default_image",
                    ErrorOrigin.USER,
                )
            )
        try:
            existing = await self.engine.inspect_container(name)
            if existing is not None:  # started before (a restart, a retried call): re-attach
                return await self._reattach(task_ctx, task, existing)
            saved = await self._saved_end(task_ctx, task)
            if saved is not None:  # it ran, ended and was removed: that end, never a second run
                return saved
            refused = await self._ensure_image(image)
            if refused is not None:
                return refused
            await asyncio.to_thread(make_local_output_folders, task_ctx)
            secrets = await asyncio.to_thread(self._write_secrets, task_ctx, task)
            body = create_body(
                task_ctx,
                task,
                image=image,
                command=command,
                env=self._environment(task_ctx, task),
                mounts=self._mounts(task_ctx, inputs, secrets),
                network=self.network,
                user=self.user,
                working_dir=self.working_dir,
                init=self.init,
            )
        except ValueError as exc:  # a resource that is not a quantity
            return permanent_failure(TaskError("InvalidResources", str(exc), ErrorOrigin.USER))
        except EngineUnreachable as exc:
            return unknown_status(TaskError("EngineUnreachable", str(exc), ErrorOrigin.SYSTEM))
        except EngineError as exc:
            return unknown_status(TaskError("EngineError", str(exc), ErrorOrigin.SYSTEM))
        try:
            container_id = await self.engine.create_container(name, body)
        except EngineError as exc:
            if exc.status_code == 409:  # another caller created it meanwhile: re-attach
                return await self.check_task_status(task_ctx, task)
            await asyncio.to_thread(self._remove_secrets, task_ctx)
            return permanent_failure(
                TaskError(
                    "ContainerRefused",
                    f"the container engine refused to create {name} from image {image}: {exc.message}",
                    ErrorOrigin.USER,
                )
            )
        except EngineUnreachable as exc:
            return unknown_status(TaskError("EngineUnreachable", str(exc), ErrorOrigin.SYSTEM))
        return await self._start(task_ctx, image, container_id)

    async def _start(self, task_ctx: TaskContext, image: str, container_id: str) -> TaskStatus:
        name = task_ctx.generated_name
        state = {"container": name, "container_id": container_id, "image": image}
        try:
            await self.engine.start_container(name)
        except EngineError as exc:  # the command cannot run (not in the image, not executable)
            with contextlib.suppress(EngineError, EngineUnreachable):
                await self.engine.remove_container(name)
            await asyncio.to_thread(self._remove_secrets, task_ctx)
            return permanent_failure(
                TaskError(
                    "ContainerStartFailed",
                    f"container {name} (image {image}) could not start: {exc.message}",
                    ErrorOrigin.USER,
                )
            )
        except EngineUnreachable as exc:  # created; the next check (or start) starts or sees it
            return unknown_status(TaskError("EngineUnreachable", str(exc), ErrorOrigin.SYSTEM)).with_state(
                state
            )
        return TaskStatus(TaskPhase.RUNNING, state=state)

    async def _reattach(
        self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate, info: Mapping[str, Any]
    ) -> TaskStatus:
        if str((info.get("State") or {}).get("Status", "")).lower() == "created":
            image = str((info.get("Config") or {}).get("Image") or "")
            return await self._start(task_ctx, image, str(info.get("Id", "")))
        return await self._status_of(task_ctx, task, info)

    async def _ensure_image(self, image: str) -> TaskStatus | None:
        """``None`` when the image is there (pulled if the policy says so), else the failure."""
        present = await self.engine.image_exists(image) if self.pull != "Always" else False
        if present:
            return None
        if self.pull == "Never":
            return permanent_failure(
                TaskError(
                    "ImageNotFound",
                    f"image {image} is not on the container engine at {self.address}, and pull is Never",
                    ErrorOrigin.USER,
                )
            )
        reason = await self.engine.pull_image(image, within=self.pull_timeout)
        if reason is None:
            return None
        if self.pull == "Always" and await self.engine.image_exists(image):
            return None  # a registry that is away does not stop an image we have from running
        return permanent_failure(
            TaskError(
                "ImagePullFailed",
                f"image {image} is not on the container engine at {self.address} and cannot be "
                f"pulled: {reason}",
                ErrorOrigin.USER,
            )
        )

    def _mounts(
        self, task_ctx: TaskContext, inputs: literals_pb2.LiteralMap, secrets: str | None
    ) -> list[tuple[str, str, bool]]:
        """The execution's folders (read-write), the local files its inputs point at (read-only,
        unless inside those folders), the secrets (read-only), each at its path, then ``mounts``."""
        extra = self.mounts
        folders = local_folders(task_ctx)
        mounts = [(folder, folder, False) for folder in folders]
        for path in outermost(input_paths(inputs)):
            if not any(path == f or path.startswith(f.rstrip("/") + "/") for f in folders):
                mounts.append((path, path, True))
        if secrets:
            mounts.append((secrets, DEFAULT_SECRETS_DIR, True))
        return mounts + list(extra)

    def _environment(self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate) -> dict[str, str]:
        names = self.pass_env if self.pass_env is not None else store_credentials(task_ctx)
        passed = {name: os.environ[name] for name in names if name in os.environ}
        # The secrets go as files (never in the environment): left out here.
        return {**passed, **task_environment(dataclasses.replace(task_ctx, secret_environment={}), task)}

    # -- secrets ---------------------------------------------------------------------------------

    def _secrets_folder(self, task_ctx: TaskContext) -> str:
        return os.path.join(self.secrets_dir, f"executors-secrets-{task_ctx.generated_name}")

    def _write_secrets(self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate) -> str | None:
        """Each secret as the file flytekit reads, in a private folder; the folder, or ``None``."""
        secrets = [
            s for s in task.security_context.secrets if secret_env_name(s) in task_ctx.secret_environment
        ]
        if not secrets:
            return None
        folder = self._secrets_folder(task_ctx)
        os.makedirs(folder, mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)
        for secret in secrets:
            path = os.path.join(folder, os.path.relpath(secret_file_path(secret), DEFAULT_SECRETS_DIR))
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o400)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(task_ctx.secret_environment[secret_env_name(secret)])
        return folder

    def _remove_secrets(self, task_ctx: TaskContext) -> None:
        shutil.rmtree(self._secrets_folder(task_ctx), ignore_errors=True)

    # -- status ----------------------------------------------------------------------------------

    async def check_task_status(self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate) -> TaskStatus:
        name = task_ctx.generated_name
        try:
            info = await self.engine.inspect_container(name)
        except (EngineUnreachable, EngineError) as exc:
            return unknown_status(TaskError("EngineUnreachable", str(exc), ErrorOrigin.SYSTEM))
        if info is None:
            saved = await self._saved_end(task_ctx, task)
            if saved is not None:  # removed by us after its end: the end it had
                return saved
            return TaskStatus(
                TaskPhase.RETRYABLE_FAILURE,
                err=TaskError(
                    "ContainerGone",
                    f"container {name} is not on the container engine at {self.address}: it was removed "
                    "before it ended (or the engine's storage was reset)",
                    ErrorOrigin.SYSTEM,
                ),
            )
        return await self._status_of(task_ctx, task, info)

    async def _status_of(
        self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate, info: Mapping[str, Any]
    ) -> TaskStatus:
        state = {"container": task_ctx.generated_name, "container_id": str(info.get("Id", ""))}
        running = running_status(info, task_ctx.generated_name)
        if running is not None:
            return running.with_state(state)
        tail = await self._tail(task_ctx.generated_name)
        status = await ended_status(self._store, task_ctx, task, info, last_output=tail)
        await self._finish(task_ctx, info, status)
        return status.with_state(state)

    async def _finish(self, task_ctx: TaskContext, info: Mapping[str, Any], status: TaskStatus) -> None:
        """What happens to an ended container (``on_finish``): its log and state saved in the
        execution's folder first, then removed. Best effort: a failure leaves it for next time."""
        await asyncio.to_thread(self._remove_secrets, task_ctx)
        remove = self.on_finish == "delete" or (
            self.on_finish == "delete_succeeded" and status.phase is TaskPhase.SUCCEEDED
        )
        if not remove or status.phase is TaskPhase.UNKNOWN:
            return
        name = task_ctx.generated_name
        try:
            lines = await self._whole_log(name)
            record = {
                "Id": info.get("Id"),
                "State": info.get("State"),
                "HostConfig": {"Memory": (info.get("HostConfig") or {}).get("Memory")},
                "Config": {"Cmd": (info.get("Config") or {}).get("Cmd")},
            }
            await self._store.write_bytes(
                join(task_ctx.data_dir, SAVED_LOG), "".join(map(saved_line, lines)).encode()
            )
            await self._store.write_bytes(join(task_ctx.data_dir, SAVED_STATE), json.dumps(record).encode())
            await self.engine.remove_container(name)
        except (EngineUnreachable, EngineError, DataStoreError):
            return  # kept: the next check (this is called again) or a person removes it

    async def _whole_log(self, name: str) -> list[LogLine]:
        """The container's log to save: its last ``SAVED_LOG_BYTES`` (the engine's ``tail`` is
        not used: Podman 4 joins a last line without a newline to the line before it there)."""
        kept: collections.deque[LogLine] = collections.deque()
        size = 0
        async for line in self._log_lines(name, {}):
            kept.append(line)
            size += len(line.text) + 1
            while size > SAVED_LOG_BYTES and len(kept) > 1:
                size -= len(kept.popleft().text) + 1
        return list(kept)

    async def _saved_end(self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate) -> TaskStatus | None:
        """The end of a container removed after it ended (from its saved state), else ``None``."""
        saved = await self._saved_state(task_ctx)
        return (
            None if saved is None else await ended_status(self._store, task_ctx, task, saved, last_output="")
        )

    async def _saved_state(self, task_ctx: TaskContext) -> dict[str, Any] | None:
        try:
            data = await self._store.read_bytes(
                join(task_ctx.data_dir, SAVED_STATE), within=task_ctx.data_dir, max_bytes=64 * 1024
            )
            record = json.loads(data)
        except (DataNotFoundError, DataStoreError, ValueError):
            return None
        return record if isinstance(record, dict) and isinstance(record.get("State"), dict) else None

    # -- kill ------------------------------------------------------------------------------------

    async def kill_task(self, task_ctx: TaskContext, reason: str) -> None:
        """Stop the container (grace ``stop_grace`` s), then remove it. A container that is gone
        is fine; an engine that cannot be reached raises (the engine retries the kill)."""
        name = task_ctx.generated_name
        try:
            await self.engine.stop_container(name, self.stop_grace)
            await self.engine.remove_container(name)
        except EngineUnreachable as exc:
            raise ConnectionError(f"cannot stop container {name}: {exc}") from exc
        finally:
            await asyncio.to_thread(self._remove_secrets, task_ctx)

    # -- output ----------------------------------------------------------------------------------

    async def _log_lines(self, name: str, params: Mapping[str, Any]) -> Any:
        decoder = FrameDecoder()
        async for data in self.engine.logs(name, {"timestamps": "true", **params}):
            for line in decoder.feed(data):
                yield line

    async def _tail(self, name: str) -> str:
        with contextlib.suppress(EngineUnreachable, EngineError):
            lines = [line.text async for line in self._log_lines(name, {"tail": 20})]
            return "\n".join(lines)[-2000:]
        return ""

    async def read_output(
        self,
        task_ctx: TaskContext,
        cursor: Mapping[str, Any] | None,
        *,
        max_bytes: int = 64_000,
        final: bool = False,
    ) -> OutputChunk:
        """The container's new log lines, stdout and stderr apart (:mod:`.logs` explains the
        cursor). Reads the saved log once the container is removed. ``ConnectionError`` when the
        engine cannot be reached (the engine tries again later)."""
        position = LogCursor.from_mapping(cursor)
        selection = LogSelection(position, max_bytes)
        name = task_ctx.generated_name
        params: dict[str, Any] = {}
        if position.since() is not None:
            params["since"] = position.since()
        found = False
        try:
            async for line in self._log_lines(name, params):
                found = True
                if not selection.take(line):
                    break
        except EngineUnreachable as exc:
            raise ConnectionError(str(exc)) from exc
        if not found:
            for line in await self._saved_lines(task_ctx):
                if not selection.take(line):
                    break
        pieces = tuple(OutputLines(stream, text) for stream, text in blocks(selection.lines))
        return OutputChunk(pieces, selection.next_cursor().to_mapping(), more=selection.full)

    async def _saved_lines(self, task_ctx: TaskContext) -> list[LogLine]:
        try:
            data = await self._store.read_bytes(join(task_ctx.data_dir, SAVED_LOG), within=task_ctx.data_dir)
        except (DataNotFoundError, DataStoreError):
            return []
        return list(read_saved(data.decode("utf-8", errors="replace")))

    async def read_logs(self, task_ctx: TaskContext, max_bytes: int = 64_000) -> str | None:
        name = task_ctx.generated_name
        try:
            lines = [line async for line in self._log_lines(name, {"tail": TAIL_LINES})]
        except (EngineUnreachable, EngineError):
            return None
        if not lines:
            lines = (await self._saved_lines(task_ctx))[-TAIL_LINES:]
        text = "\n".join(f"[{line.stream}] {line.text}" for line in lines)
        return text[-max_bytes:] if text else None

    def get_run_url(self, task_ctx: TaskContext) -> str | None:
        """The execution's folder (the Airflow UI shows it as the Execution view) when it is local."""
        if is_local(task_ctx.data_dir):
            return "file://" + local_path(task_ctx.data_dir)
        return None

    async def resolve_outputs(
        self, task_ctx: TaskContext, *output_variables: str
    ) -> dict[str, literals_pb2.Literal]:
        resolver = self._outputs or OutputsResolver(self._store)
        return await resolver.resolve_outputs(task_ctx, *output_variables)
