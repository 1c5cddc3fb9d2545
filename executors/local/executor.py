"""LocalExecutor: runs a container task's command as a detached local process.

The container image is ignored: the command runs on this machine, in the Python environment of
the process that starts it (that environment's ``bin`` folder is put first on ``PATH``, so
``python`` means the same interpreter). POSIX only (Linux, macOS).

Everything it knows lives on disk, never only in memory, so any process (another triggerer, a
restarted worker) can check or kill an execution started by another. The task may write anywhere
in its execution folder, so the executor's own records are kept out of it, under ``state_root``
(not in the data dir; folders 0700), and the execution folder holds only what Flyte defines:

``<state_root>/tasks/<generated name>-<hash of the data dir>/``
    ``claim`` (created exclusively: one launch per execution; rewritten in place into the failure
    record when the launch fails), ``spec.json`` (what was run, without the secrets), ``pid.json``
    (process ids), ``exit.json`` (exit status, written by the supervisor), ``killed.json`` (why it
    was killed), ``supervisor.log``. The hash keeps apart two data dirs that reuse a name.
``<state_root>/running/<the same folder name>.json``
    one entry per execution that may be running, to enforce ``max_concurrent`` across processes
``<execution folder>/``
    ``inputs.pb``, ``outputs.pb`` or ``error.pb`` (Flyte's), ``logs/stdout.log`` and
    ``logs/stderr.log`` (the task's most recent output, at most ``max_log_bytes`` each, the part
    before in ``stdout.log.1``/``stderr.log.1``), ``work/`` (the command's working directory)

The execution folder is the task's data dir when that is a local path; otherwise (an object store)
a folder named after the generated name under ``<state_root>/executions/``.

While the supervisor or the command is alive the execution is running, whatever any file says;
then ``exit.json`` (or the claim's failure record) decides. A task runs as the same user as its
starter and could still find the state folder: this keeps the bookkeeping out of a task's way (a
forged ``exit.json`` in the execution folder means nothing), it is no sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import psutil
from flyteidl.core import literals_pb2, tasks_pb2

from executors.container import (
    container_command,
    status_after_success,
    status_from_error_file,
    task_environment,
)
from executors.context import TaskContext
from executors.driver import owner_key, wake_owner
from executors.interface import (
    EnqueueOwner,
    Executor,
    ExecutorInitializationParameters,
    ExecutorProperties,
)
from executors.outputs import OutputsResolver
from executors.phase import TaskPhase
from executors.status import (
    TASK_STATUS_QUEUED,
    ErrorOrigin,
    TaskError,
    TaskStatus,
    not_ready_failure,
    permanent_failure,
    retryable_failure,
)
from executors.storage import DataStore, is_local, local_path

SUPERVISOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "supervisor.py")

DEFAULT_INHERITED_ENV = (
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
    "PYTHONPATH", "VIRTUAL_ENV",
)  # fmt: skip
"""Variables of the starting process passed on to tasks. Deliberately short: an Airflow process's
environment holds its own secrets (database URLs, Fernet key) that a task must not see."""


def default_state_root() -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "airflow-provider-executors", "local")


LINUX = sys.platform.startswith("linux")

DEFAULT_MAX_LOG_BYTES = 64 << 20

CLAIM_BYTES = 4096
"""A claim is written at this size, so that marking it failed rewrites it in place: that needs no
free space, so even a launch that failed on a full disk is recorded as failed."""

SLOT_POLL = (0.05, 0.25)
"""Seconds between looks at the running list while starts wait here for a free slot: 2 ms per
``max_concurrent`` slot, within these bounds (a look costs a few stats and signals per entry)."""

WAITER_TTL = 180.0
"""A waiting start that has not asked again for this long (its trigger went away) is forgotten."""

LOCK_ATTEMPTS, LOCK_PAUSE = 20, 0.005
"""Tries (and the pause between them) at the running list's lock before a start answers NOT_READY:
admission never waits on another process's lock."""

VERIFY_EVERY = 30.0
"""Seconds between identity checks (create time) of a running entry's live pids: in between, a
signal 0 says whether they live, so counting the running executions costs no process-table scan."""

MAX_ARG_BYTES = 131072
"""Linux's MAX_ARG_STRLEN: the longest argument or ``NAME=value`` string, with its final NUL."""

_TEMPORARY = re.compile(r"(spec|pid|exit|killed)\.json\.tmp-\d+")


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path) as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # a half-written file cannot happen (atomic writes); treat garbage as absent
    return data if isinstance(data, dict) else None


def _write_json(path: str, data: Mapping[str, Any]) -> None:
    """Atomically; on a failure (a full disk) the temporary file is removed too."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:  # say which file (a flush has no name)
            raise OSError(exc.errno, f"cannot write {path}: {exc.strerror or exc}") from exc
        raise


# -- options ---------------------------------------------------------------------------------------


def _bad_option(name: str, requirement: str, value: object) -> ValueError:
    return ValueError(f"local executor option {name}: {requirement}, got {value!r}")


def _whole_option(name: str, value: object, *, positive: bool) -> int:
    requirement = f"must be a whole number {'> 0' if positive else '>= 0'}"
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif (isinstance(value, float) and value.is_integer()) or (
        isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value)
    ):
        number = int(value)
    if number is None or number < (1 if positive else 0):
        raise _bad_option(name, requirement, value)
    return number


def _seconds_option(name: str, value: object, *, positive: bool) -> float:
    requirement = f"must be a number of seconds {'> 0' if positive else '>= 0'}"
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            number = float(value)
    if number is None or not math.isfinite(number) or number < 0 or (positive and number == 0):
        raise _bad_option(name, requirement, value)
    return number


def _names_option(name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [n for n in re.split(r"[\s,]+", value) if n]
    if not isinstance(value, Sequence):
        raise _bad_option(name, "must be a list of variable names", value)
    for item in value:
        if not isinstance(item, str) or _env_name_problem(item) is not None:
            raise _bad_option(name, "names must be non-empty and contain neither '=' nor a NUL byte", item)
    return tuple(value)


def _folder_option(name: str, value: object) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str | os.PathLike):
        return os.fspath(value)
    raise _bad_option(name, "must be a folder path", value)


# -- what the OS would refuse to run ---------------------------------------------------------------


def _os_bytes(text: str) -> bytes | None:
    try:
        return os.fsencode(text)
    except UnicodeEncodeError:
        return None


def _env_name_problem(name: str) -> str | None:
    if not name:
        return "is empty"
    if "=" in name:
        return "contains '='"
    if "\x00" in name:
        return "contains a NUL byte"
    if _os_bytes(name) is None:
        return "is not valid text (it holds a lone surrogate)"
    return None


def _env_value_problem(name: str, value: str) -> str | None:
    if "\x00" in value:
        return "contains a NUL byte"
    encoded = _os_bytes(value)
    if encoded is None:
        return "is not valid text (it holds a lone surrogate)"
    size = len(os.fsencode(name)) + 1 + len(encoded)
    if LINUX and size >= MAX_ARG_BYTES:
        return f"is too long: {size} bytes with its name, the OS takes at most {MAX_ARG_BYTES - 1}"
    return None


def _argument_problem(arg: str) -> str | None:
    if "\x00" in arg:
        return "contains a NUL byte, which a process argument cannot hold"
    encoded = _os_bytes(arg)
    if encoded is None:
        return "is not valid text (it holds a lone surrogate)"
    if LINUX and len(encoded) >= MAX_ARG_BYTES:
        return f"is {len(encoded)} bytes long; the OS takes at most {MAX_ARG_BYTES - 1} per argument"
    return None


def _preview(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _invalid_launch(
    task: tasks_pb2.TaskTemplate,
    task_ctx: TaskContext,
    command: Sequence[str],
    env: Mapping[str, str],
    secrets: Mapping[str, str],
) -> TaskError | None:
    """What the supervisor could not start (the OS refuses it), found before anything is
    launched: a user error naming the variable (never a secret's value) or the argument."""
    sources = (
        ("the task template's env", [kv.key for kv in task.container.env]),
        ("the environment overrides", list(task_ctx.overrides.environment)),
        ("the secrets", list(secrets)),
        ("the environment", list(env)),
    )
    for source, names in sources:
        for name in names:
            problem = _env_name_problem(name)
            if problem is not None:
                return TaskError(
                    "InvalidEnvironment",
                    f"environment variable name {name!r} (from {source}) {problem}; names must be "
                    "non-empty and contain neither '=' nor a NUL byte",
                    ErrorOrigin.USER,
                )
    for kind, values in (("environment variable", env), ("secret environment variable", secrets)):
        for name, value in values.items():
            problem = _env_value_problem(name, value)
            if problem is not None:
                return TaskError(
                    "InvalidEnvironment", f"the value of {kind} {name!r} {problem}", ErrorOrigin.USER
                )
    for index, arg in enumerate(command):
        problem = _argument_problem(arg)
        if problem is not None:
            return TaskError(
                "InvalidCommand", f"command argument {index} ({_preview(arg)}) {problem}", ErrorOrigin.USER
            )
    return None


# -- the claim -------------------------------------------------------------------------------------


def _claim_bytes(record: Mapping[str, Any]) -> bytes:
    data = json.dumps(record).encode()
    failed = record.get("failed")
    while len(data) >= CLAIM_BYTES and isinstance(failed, dict) and len(failed.get("message", "")) > 80:
        message = failed["message"]
        failed = {**failed, "message": message[: len(message) * 3 // 4] + "..."}
        data = json.dumps({**record, "failed": failed}).encode()
    return data.ljust(CLAIM_BYTES - 1) + b"\n" if len(data) < CLAIM_BYTES else data


def _write_all(fd: int, data: bytes, offset: int | None = None) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view) if offset is None else os.pwrite(fd, view, offset)
        if offset is not None:
            offset += written
        view = view[written:]


def _read_claim(state_dir: str) -> dict[str, Any] | None:
    """The claim's record, ``None`` when nothing was claimed. A claim whose content cannot be read
    (being written) reads as a launch in flight since its file's time."""
    path = os.path.join(state_dir, "claim")
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
            mtime = os.fstat(fh.fileno()).st_mtime
    except FileNotFoundError:
        return None
    except OSError:
        return {"claimed_at": time.time()}
    try:
        record = json.loads(raw)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        record = {}
    record.setdefault("claimed_at", mtime)
    return record


def state_dirs(state_root: str) -> dict[str, str]:
    """Execution folder -> state folder of every execution claimed under ``state_root``: for tools
    and tests that know an execution by its folder (``LocalExecutor.state_dir`` needs its context)."""
    tasks = os.path.join(state_root, "tasks")
    try:
        entries = sorted(os.listdir(tasks))
    except FileNotFoundError:
        return {}
    found = {}
    for entry in entries:
        claim = _read_claim(os.path.join(tasks, entry))
        if claim is not None and isinstance(claim.get("execution_dir"), str):
            found[claim["execution_dir"]] = os.path.join(tasks, entry)
    return found


def _remove_temporary_files(state_dir: str) -> None:
    with contextlib.suppress(OSError):
        for name in os.listdir(state_dir):
            if _TEMPORARY.fullmatch(name):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(state_dir, name))


def _last_json_line(out: bytes) -> dict[str, Any]:
    for line in reversed(out.decode("utf-8", errors="replace").splitlines()):
        with contextlib.suppress(ValueError):
            data = json.loads(line)
            if isinstance(data, dict):
                return data
    return {}


def _last_line(err: bytes, limit: int = 500) -> str:
    lines = [line.strip() for line in err.decode("utf-8", errors="replace").splitlines() if line.strip()]
    return lines[-1][:limit] if lines else ""


def _tail(path: str, limit: int, within: str | None = None) -> str:
    """The last ``limit`` bytes of a task's log, as text ("" when it is missing or unreadable).

    The task controls its log files, so they are read by the guarded reader
    (:func:`executors.task_files.tail_task_file`) inside ``within``, the execution folder (default:
    the folder above ``path``'s, as logs live in ``<execution folder>/logs/``): a log that is a FIFO,
    a device, a directory or a symlink out of the folder is never read (a FIFO would block the
    thread forever); a one-line note naming it and the problem stands in for its content.
    """
    from executors.task_files import RefusedDataError, tail_task_file

    root = within if within is not None else os.path.dirname(os.path.dirname(os.path.abspath(path)))
    try:
        data, size = tail_task_file(path, limit, within=root)
    except RefusedDataError as exc:
        return f"[log not shown: {exc}]"
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    if size > limit:
        text = "..." + text.split("\n", 1)[-1]
    return text.strip()


def _group_members(pgid: int, not_before: float) -> list[psutil.Process]:
    """Live processes of our task's group. ``not_before`` (the group's start time) guards
    against a recycled process-group id belonging to someone else."""
    members = []
    for proc in psutil.process_iter(["pid", "create_time", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.info["create_time"] < not_before - 1:
                continue
            if os.getpgid(proc.pid) == pgid:
                members.append(proc)
        except (ProcessLookupError, psutil.Error, OSError):
            continue
    return members


def _process(pid: object, create_time: object) -> psutil.Process | None:
    """The live (not zombie) process ``pid``, if it is the one started at ``create_time``."""
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        if isinstance(create_time, int | float) and abs(proc.create_time() - create_time) >= 1.0:
            return None
        return proc
    except psutil.Error:
        return None


def _alive(pid: object, create_time: object) -> bool:
    return _process(pid, create_time) is not None


def _pid_exists(pid: object) -> bool:
    """Signal 0: no process-table scan (a zombie or a recycled pid also answers yes)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _still_running(proc: psutil.Process) -> bool:
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _pids_alive(pid: Mapping[str, Any]) -> bool:
    """Whether the command or its supervisor (as recorded in pid.json) still runs."""
    return _alive(pid.get("pid"), pid.get("create_time")) or _alive(
        pid.get("supervisor_pid"), pid.get("supervisor_create_time")
    )


@dataclasses.dataclass(eq=False)
class _Waiter:
    """A start that answered NOT_READY and will ask again (by owner, in order of arrival)."""

    seen: float
    woken: float = -math.inf


class LocalExecutor(Executor):
    """Run container tasks as local processes (the embedded default: needs nothing else running).

    Configuration (keyword arguments; strings are accepted so they can come from a config file;
    a bad value is a ValueError naming the option):

    ``max_concurrent``
        at most this many executions run at once on this machine (counted across processes);
        a start beyond it answers NOT_READY and launches nothing, and is woken (EnqueueOwner) as
        soon as a slot frees. ``None``/``0``: no limit.
    ``kill_grace_period``
        seconds between SIGTERM and SIGKILL when killing, and when stopping what a task left
        behind (default 10).
    ``state_root``
        folder for the executor's records (see the module docstring), outside the data dir.
    ``inherit_env``
        names of variables passed on from the starting process (default: PATH, HOME, locale, ...).
    ``launch_timeout``
        seconds a claimed launch may take before it counts as failed (default 30).
    ``max_log_bytes``
        the most bytes each of stdout.log/stderr.log keeps (the most recent output; the part
        before is in ``.1``, so at most twice this on disk per stream; default 64 MiB).
    ``log_tail_bytes``
        how much of the log tail a failure message quotes (default 2000).
    """

    id = "local"

    def __init__(
        self,
        *,
        max_concurrent: int | str | None = None,
        kill_grace_period: float | str = 10.0,
        state_root: str | None = None,
        inherit_env: Sequence[str] | str | None = None,
        launch_timeout: float | str = 30.0,
        log_tail_bytes: int | str = 2000,
        max_log_bytes: int | str = DEFAULT_MAX_LOG_BYTES,
    ) -> None:
        self.max_concurrent = (
            0
            if max_concurrent is None or max_concurrent == ""
            else _whole_option("max_concurrent", max_concurrent, positive=False)
        )
        self.kill_grace_period = _seconds_option("kill_grace_period", kill_grace_period, positive=False)
        self.state_root = _folder_option("state_root", state_root) or default_state_root()
        self.inherit_env = (
            _names_option("inherit_env", inherit_env) if inherit_env is not None else DEFAULT_INHERITED_ENV
        )
        self.launch_timeout = _seconds_option("launch_timeout", launch_timeout, positive=True)
        self.log_tail_bytes = _whole_option("log_tail_bytes", log_tail_bytes, positive=False)
        self.max_log_bytes = _whole_option("max_log_bytes", max_log_bytes, positive=True)
        self._store = DataStore()
        self._outputs: OutputsResolver | None = None
        self._enqueue: EnqueueOwner | None = None
        self._waiters: dict[str, _Waiter] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._verified: dict[str, float] = {}  # running entry -> when its pids were last identified
        self._entries: dict[str, tuple[int, dict[str, Any]]] = {}  # running entry -> (mtime, record)
        self._own_create_time: float | None = None

    def get_properties(self) -> ExecutorProperties:
        return ExecutorProperties(requires_finalizer=True)

    async def initialize(self, params: ExecutorInitializationParameters) -> None:
        if params.data_store is not None:
            self._store = params.data_store
        self._outputs = OutputsResolver(self._store)
        self._enqueue = params.enqueue_owner
        await asyncio.to_thread(self._make_state_root)

    def _make_state_root(self) -> None:
        for sub in ("running", "tasks"):
            os.makedirs(os.path.join(self.state_root, sub), mode=0o700, exist_ok=True)

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        self._watcher = None
        self._waiters.clear()

    # -- where things live -------------------------------------------------------------------

    def execution_dir(self, task_ctx: TaskContext) -> str:
        if is_local(task_ctx.data_dir):
            return local_path(task_ctx.data_dir)
        return os.path.join(self.state_root, "executions", task_ctx.generated_name)

    def state_dir(self, task_ctx: TaskContext) -> str:
        """The executor's records of this execution (see the module docstring): under
        ``state_root``, out of the task's way, keyed by generated name and data dir."""
        if is_local(task_ctx.data_dir):
            where = os.path.abspath(local_path(task_ctx.data_dir))
        else:
            where = task_ctx.data_dir
        digest = hashlib.sha256(where.encode("utf-8", errors="surrogatepass")).hexdigest()[:12]
        return os.path.join(self.state_root, "tasks", f"{task_ctx.generated_name}-{digest}")

    def _running_entry(self, state_dir: str) -> str:
        return os.path.join(self.state_root, "running", os.path.basename(state_dir) + ".json")

    def log_paths(self, task_ctx: TaskContext) -> tuple[str, str]:
        """The task's ``stdout.log`` and ``stderr.log`` (the most recent part of its output)."""
        logs = os.path.join(self.execution_dir(task_ctx), "logs")
        return os.path.join(logs, "stdout.log"), os.path.join(logs, "stderr.log")

    @contextlib.contextmanager
    def _running_lock(self) -> Iterator[bool]:
        """The running list's lock, never waited for: ``False`` when another start still holds it
        after ``LOCK_ATTEMPTS`` short tries (the caller answers NOT_READY and is asked again)."""
        fd = os.open(
            os.path.join(self.state_root, "running.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
        )
        try:
            for attempt in range(LOCK_ATTEMPTS):
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if attempt + 1 == LOCK_ATTEMPTS:
                        yield False
                        return
                    time.sleep(LOCK_PAUSE)
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    # -- start -------------------------------------------------------------------------------

    async def start_task(
        self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate, inputs: literals_pb2.LiteralMap
    ) -> TaskStatus:
        for ref_name in ("inputs_file", "outputs_file", "error_file"):
            ref = getattr(task_ctx, ref_name)
            if ref.startswith("memory://"):
                return permanent_failure(
                    TaskError(
                        "DataDirNotShared",
                        f"{ref_name} {ref} is in this process's memory and a local process cannot "
                        "read it; use a local folder or a shared store for the data dir",
                        ErrorOrigin.USER,
                    )
                )
        command = container_command(self.id, task, task_ctx, inputs)
        if isinstance(command, TaskStatus):
            return command
        # Secrets go to the supervisor through a pipe, never into spec.json on disk.
        env = self._environment(dataclasses.replace(task_ctx, secret_environment={}), task)
        secrets = dict(task_ctx.secret_environment)
        invalid = _invalid_launch(task, task_ctx, command, env, secrets)
        if invalid is not None:
            return permanent_failure(invalid)
        launched = await asyncio.to_thread(self._launch, task_ctx, command, env, secrets)
        if launched is None:  # already claimed by an earlier start: re-attach, never launch twice
            launched = await self.check_task_status(task_ctx, task)
        self._after_start(task_ctx, launched)
        return launched

    def _environment(self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate) -> dict[str, str]:
        env = {k: os.environ[k] for k in self.inherit_env if k in os.environ}
        bin_dir = os.path.dirname(sys.executable)
        env["PATH"] = os.pathsep.join(p for p in (bin_dir, env.get("PATH", os.defpath)) if p)
        env.update(task_environment(task_ctx, task))
        return env

    def _launch(
        self, task_ctx: TaskContext, command: list[str], env: dict[str, str], secrets: dict[str, str]
    ) -> TaskStatus | None:
        """Claim, then launch (in a thread); ``None`` when the execution was claimed before."""
        state_dir = self.state_dir(task_ctx)
        try:
            admitted = self._admit(task_ctx, state_dir)
        except OSError as exc:  # nothing claimed: a full disk, an unwritable state root
            return retryable_failure(
                TaskError(
                    "LaunchFailed", f"cannot claim the launch in {state_dir}: {exc}", ErrorOrigin.SYSTEM
                )
            )
        if admitted == "exists":
            return None
        if isinstance(admitted, TaskStatus):
            return admitted
        try:
            return self._spawn(task_ctx, state_dir, command, env, secrets)
        except Exception as exc:  # after the claim: record the failure, never leave the name waiting
            error = TaskError("LaunchFailed", f"the launch failed: {exc}", ErrorOrigin.SYSTEM)
            self._fail_claim(state_dir, error)
            return retryable_failure(error)

    def _admit(self, task_ctx: TaskContext, state_dir: str) -> Literal["claimed", "exists"] | TaskStatus:
        self._make_state_root()
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        if os.path.exists(os.path.join(state_dir, "claim")):
            return "exists"
        if not self.max_concurrent:
            return self._claim(task_ctx, state_dir)
        with self._running_lock() as locked:
            if not locked:
                return not_ready_failure(
                    TaskError(
                        "AdmissionBusy",
                        f"another start holds {os.path.join(self.state_root, 'running.lock')} "
                        "(the list of running local executions); asking again shortly",
                        ErrorOrigin.SYSTEM,
                    )
                )
            if os.path.exists(os.path.join(state_dir, "claim")):
                return "exists"
            running = self._count_running(prune=True)
            if running >= self.max_concurrent:
                return not_ready_failure(
                    TaskError(
                        "ConcurrencyLimit",
                        f"{running} local executions are running (max_concurrent={self.max_concurrent})",
                        ErrorOrigin.SYSTEM,
                    )
                )
            return self._claim(task_ctx, state_dir)

    def _claim(self, task_ctx: TaskContext, state_dir: str) -> Literal["claimed", "exists"]:
        if self._own_create_time is None:
            self._own_create_time = self._create_time(os.getpid())
        record = {
            "claimed_at": time.time(),
            "launcher_pid": os.getpid(),
            "launcher_create_time": self._own_create_time,
            "generated_name": task_ctx.generated_name,
            "execution_dir": os.path.abspath(self.execution_dir(task_ctx)),
            "data_dir": task_ctx.data_dir,
        }
        path = os.path.join(state_dir, "claim")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            return "exists"
        try:
            try:
                _write_all(fd, _claim_bytes(record))
            finally:
                os.close(fd)
            _write_json(
                self._running_entry(state_dir), {"state_dir": state_dir, "claimed_at": record["claimed_at"]}
            )
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(path)  # nothing was launched: the name is free again
            raise
        return "claimed"

    def _spawn(
        self,
        task_ctx: TaskContext,
        state_dir: str,
        command: list[str],
        env: dict[str, str],
        secrets: dict[str, str],
    ) -> TaskStatus:
        stdout_path, stderr_path = self.log_paths(task_ctx)
        os.makedirs(os.path.dirname(stdout_path), exist_ok=True)
        execution_dir = self.execution_dir(task_ctx)
        cwd = os.path.join(execution_dir, "work")
        os.makedirs(cwd, exist_ok=True)
        for ref in (
            task_ctx.outputs_file,
            task_ctx.raw_output_prefix + "/x",
            task_ctx.checkpoint_prefix + "/x",
        ):
            if is_local(ref):
                os.makedirs(os.path.dirname(local_path(ref)), exist_ok=True)
        spec = {
            "command": command,
            "cwd": cwd,
            "env": env,
            "stdout": stdout_path,
            "stderr": stderr_path,
            "state_dir": state_dir,
            "generated_name": task_ctx.generated_name,
            "execution_dir": execution_dir,
            "kill_grace_period": self.kill_grace_period,
            "max_log_bytes": self.max_log_bytes,
        }
        _write_json(os.path.join(state_dir, "spec.json"), spec)  # the record of what was run
        proc = self._spawn_supervisor(state_dir, env)
        message = json.dumps({"spec": spec, "secrets": secrets}).encode() + b"\n"
        try:
            out, err = proc.communicate(message, timeout=self.launch_timeout)
        except subprocess.TimeoutExpired:
            return self._supervisor_timed_out(proc, state_dir)
        self._keep_supervisor_output(state_dir, err)
        reply = _last_json_line(out)
        if isinstance(reply.get("pid"), int):
            return self._started(state_dir, reply)
        if "spawn_error" in reply:
            code = "CommandNotFound" if reply.get("exit_code") == 127 else "SpawnError"
            error = TaskError(code, str(reply["spawn_error"]), ErrorOrigin.USER)
            self._fail_claim(state_dir, error, permanent=True)
            return permanent_failure(error)
        cause = str(reply.get("supervisor_error") or _last_line(err) or "it printed nothing")
        exit_status = f" (exit status {proc.returncode})" if proc.returncode else ""
        error = TaskError(
            "LaunchFailed",
            f"the local supervisor could not start the command: {cause}{exit_status} "
            f"(details in {os.path.join(state_dir, 'supervisor.log')})",
            ErrorOrigin.SYSTEM,
        )
        self._fail_claim(state_dir, error)
        return retryable_failure(error)

    def _spawn_supervisor(self, state_dir: str, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        """Start the supervisor script. It gets its launch on stdin, so neither its argv, its
        environment nor its working directory (all readable in /proc by the task) tell where the
        state folder is: only the locale is passed, and it works where we do (relative paths)."""
        return subprocess.Popen(
            [sys.executable, "-I", "-S", SUPERVISOR],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            close_fds=True,
            env={k: env[k] for k in ("LANG", "LC_ALL", "LC_CTYPE") if k in env},
        )

    def _started(self, state_dir: str, reply: dict[str, Any]) -> TaskStatus:
        pids = {
            **reply,
            "create_time": self._create_time(reply["pid"]),
            "supervisor_create_time": self._create_time(reply.get("supervisor_pid")),
        }
        # Best effort: the supervisor's own pid.json (without create times) stands if these fail.
        with contextlib.suppress(OSError):
            _write_json(os.path.join(state_dir, "pid.json"), pids)
        with contextlib.suppress(OSError):
            _write_json(self._running_entry(state_dir), {"state_dir": state_dir, **pids})
        return TaskStatus(TaskPhase.RUNNING, state={"pid": reply["pid"]})

    def _supervisor_timed_out(self, proc: subprocess.Popen[bytes], state_dir: str) -> TaskStatus:
        proc.kill()  # the first child, if it is still there
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        error = TaskError(
            "LaunchFailed",
            f"the local supervisor did not report within launch_timeout={self.launch_timeout:g}s "
            f"(see {os.path.join(state_dir, 'supervisor.log')})",
            ErrorOrigin.SYSTEM,
        )
        self._fail_claim(state_dir, error)
        pid = _read_json(os.path.join(state_dir, "pid.json"))  # it may have started the command
        supervisor = _process(pid.get("supervisor_pid"), None) if pid else None
        if supervisor is not None:  # nobody will watch it: it must not run
            with contextlib.suppress(psutil.Error):
                for child in supervisor.children(recursive=True):
                    child.kill()
                supervisor.kill()
        return retryable_failure(error)

    @staticmethod
    def _keep_supervisor_output(state_dir: str, err: bytes) -> None:
        if not err:
            return
        with contextlib.suppress(OSError):
            fd = os.open(
                os.path.join(state_dir, "supervisor.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
            )
            try:
                _write_all(fd, err)
            finally:
                os.close(fd)

    def _fail_claim(self, state_dir: str, error: TaskError, permanent: bool = False) -> None:
        """Record a failed launch in its claim, so that any check answers the failure at once (and
        a re-start of the name never waits for a launch that is over); free its slot; leave no
        temporary file. Rewritten in place: it works on a full disk. If even that fails the claim
        goes, and the name with it (nothing runs under it)."""
        record = _read_claim(state_dir) or {}
        record["failed"] = {**error.to_dict(), "permanent": permanent, "at": time.time()}
        path = os.path.join(state_dir, "claim")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                _write_all(fd, _claim_bytes(record), offset=0)
            finally:
                os.close(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(path)
        self._release_slot(state_dir)
        _remove_temporary_files(state_dir)

    @staticmethod
    def _create_time(pid: object) -> float | None:
        if not isinstance(pid, int) or pid <= 0:
            return None
        try:
            return float(psutil.Process(pid).create_time())
        except psutil.Error:
            return None

    def _count_running(self, prune: bool = False) -> int:
        """How many executions hold a slot: cheap (a stat and a signal 0 per entry; a create-time
        check per entry only every ``VERIFY_EVERY`` seconds). ``prune`` (under the lock) removes
        the entries of executions that are over."""
        running = os.path.join(self.state_root, "running")
        try:
            entries = os.listdir(running)
        except FileNotFoundError:
            return 0
        count = 0
        for entry in entries:
            if not entry.endswith(".json"):
                continue
            path = os.path.join(running, entry)
            record = self._entry_record(entry, path)
            if record is not None and self._entry_running(entry, record):
                count += 1
            elif prune:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                self._forget_entry(entry)
        return count

    def _entry_record(self, entry: str, path: str) -> dict[str, Any] | None:
        """A running entry's record, parsed again only when the file changed."""
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            self._forget_entry(entry)
            return None
        cached = self._entries.get(entry)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        record = _read_json(path)
        if record is None:
            self._forget_entry(entry)
        else:
            self._entries[entry] = (mtime, record)
        return record

    def _forget_entry(self, entry: str) -> None:
        self._verified.pop(entry, None)
        self._entries.pop(entry, None)

    def _entry_running(self, entry: str, record: dict[str, Any]) -> bool:
        state_dir = record.get("state_dir")
        if not isinstance(state_dir, str) or os.path.exists(os.path.join(state_dir, "exit.json")):
            return False
        pids = record if "supervisor_pid" in record else _read_json(os.path.join(state_dir, "pid.json"))
        if pids is None:  # claimed, not launched yet: it counts until the launch is over
            claim = _read_claim(state_dir)
            if claim is None or "failed" in claim:
                return False
            return time.time() - float(claim.get("claimed_at") or 0) < self.launch_timeout
        live = [
            (pids.get(pid_key), pids.get(time_key))
            for pid_key, time_key in (("supervisor_pid", "supervisor_create_time"), ("pid", "create_time"))
            if _pid_exists(pids.get(pid_key))
        ]
        if not live:
            return False
        now = time.monotonic()
        if now - self._verified.get(entry, -math.inf) < VERIFY_EVERY:
            return True
        if any(_alive(pid, created) for pid, created in live):  # not a recycled pid
            self._verified[entry] = now
            return True
        return False

    # -- status ------------------------------------------------------------------------------

    async def check_task_status(self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate) -> TaskStatus:
        status, exit_code = await asyncio.to_thread(self._status_from_disk_sync, task_ctx)
        if exit_code is None:
            result = status
        elif exit_code == 0:
            result = await status_after_success(self._store, task_ctx, task, what="the command exited 0")
        else:
            result = await self._status_after_failure(task_ctx, exit_code)
        if exit_code is not None or status.phase.is_final_for_execution():
            self._slot_freed()
        return result

    def _status_from_disk_sync(self, task_ctx: TaskContext) -> tuple[TaskStatus, int | None]:
        """The status visible from local files; ``exit_code`` is set when the process ended
        normally and the data store must be consulted (outputs, error.pb)."""
        state_dir = self.state_dir(task_ctx)
        if not os.path.exists(os.path.join(state_dir, "claim")):
            return (
                TaskStatus(
                    TaskPhase.UNDEFINED,
                    err=TaskError(
                        "NotStarted",
                        f"no local execution named {task_ctx.generated_name} was started "
                        f"(nothing in {state_dir})",
                        ErrorOrigin.SYSTEM,
                    ),
                ),
                None,
            )
        pid = _read_json(os.path.join(state_dir, "pid.json"))
        if pid is not None and _pids_alive(pid):
            # Running while the command or its supervisor lives, whatever any file says.
            return TaskStatus(TaskPhase.RUNNING, state={"pid": pid.get("pid")}), None
        # Nothing of it runs any more (read after that check: an exit.json written just before the
        # supervisor ended is seen).
        claim = _read_claim(state_dir) or {}
        killed = _read_json(os.path.join(state_dir, "killed.json"))
        exited = _read_json(os.path.join(state_dir, "exit.json"))
        failed = claim.get("failed")
        if exited is not None or failed is not None or pid is not None:
            self._release_slot(state_dir)
        if exited is not None:
            if killed is not None:
                return permanent_failure(TaskError("Killed", f"killed: {killed.get('reason', '')}")), None
            if "spawn_error" in exited:
                return permanent_failure(
                    TaskError("CommandNotFound" if exited.get("exit_code") == 127 else "SpawnError",
                              str(exited["spawn_error"]), ErrorOrigin.USER)
                ), None  # fmt: skip
            with contextlib.suppress(TypeError, ValueError):
                return TASK_STATUS_QUEUED, int(exited["exit_code"])
        if isinstance(failed, dict):
            try:
                error = TaskError.from_dict(failed)
            except (KeyError, ValueError):
                error = TaskError("LaunchFailed", f"the launch failed: {failed}", ErrorOrigin.SYSTEM)
            return (permanent_failure(error) if failed.get("permanent") else retryable_failure(error)), None
        if killed is not None and (pid is not None or self._launch_over(claim)):
            return permanent_failure(TaskError("Killed", f"killed: {killed.get('reason', '')}")), None
        if pid is not None:
            return retryable_failure(
                TaskError(
                    "ProcessLost",
                    f"process {pid.get('pid')} ended without an exit status (its supervisor was killed, "
                    f"or could not write exit.json; see {os.path.join(state_dir, 'supervisor.log')})",
                    ErrorOrigin.SYSTEM,
                )
            ), None
        if not self._launch_over(claim):
            return TASK_STATUS_QUEUED, None
        self._release_slot(state_dir)
        launcher = claim.get("launcher_pid")
        why = (
            f"the process that was launching it (pid {launcher}) is gone"
            if self._launcher_gone(claim)
            else f"it did not complete within launch_timeout={self.launch_timeout:g}s"
        )
        return retryable_failure(
            TaskError(
                "LaunchFailed",
                f"the launch never completed: {why} (see {os.path.join(state_dir, 'supervisor.log')})",
                ErrorOrigin.SYSTEM,
            )
        ), None

    def _launch_over(self, claim: Mapping[str, Any]) -> bool:
        """A claim without pid.json: is its launch over (timed out, or its launcher died)?"""
        age = time.time() - float(claim.get("claimed_at") or 0)
        return age >= self.launch_timeout or (age > 2.0 and self._launcher_gone(claim))

    @staticmethod
    def _launcher_gone(claim: Mapping[str, Any]) -> bool:
        pid = claim.get("launcher_pid")
        return isinstance(pid, int) and not _alive(pid, claim.get("launcher_create_time"))

    def _release_slot(self, state_dir: str) -> None:
        entry = self._running_entry(state_dir)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(entry)
        self._forget_entry(os.path.basename(entry))

    async def _status_after_failure(self, task_ctx: TaskContext, exit_code: int) -> TaskStatus:
        from_file = await status_from_error_file(self._store, task_ctx)
        if from_file is not None:
            return from_file
        stdout_path, stderr_path = self.log_paths(task_ctx)
        tail = await asyncio.to_thread(self._log_tail, stderr_path, task_ctx)
        if not tail:
            tail = await asyncio.to_thread(self._log_tail, stdout_path, task_ctx)
        if exit_code < 0:
            code, what = f"Signal{-exit_code}", f"killed by signal {signal.Signals(-exit_code).name}"
        else:
            code, what = f"ExitCode{exit_code}", f"exited with code {exit_code}"
        message = f"the command {what}" + (f"; last output:\n{tail}" if tail else " and printed nothing")
        return retryable_failure(TaskError(code, message, ErrorOrigin.USER))

    def _log_tail(self, path: str, task_ctx: TaskContext) -> str:
        """The last ``log_tail_bytes`` of a log, reaching into ``<log>.1`` when the current file
        was rotated only a moment ago."""
        within = self.execution_dir(task_ctx)
        limit = self.log_tail_bytes
        current = _tail(path, limit, within)
        if len(current) >= limit // 2 or not os.path.exists(path + ".1"):
            return current
        older = _tail(path + ".1", limit - len(current), within)
        return "\n".join(part for part in (older, current) if part)

    # -- kill --------------------------------------------------------------------------------

    async def kill_task(self, task_ctx: TaskContext, reason: str) -> None:
        state_dir = self.state_dir(task_ctx)
        deadline = time.monotonic() + self.launch_timeout
        while True:
            claimed, pid, over = await asyncio.to_thread(self._pids_for_kill, state_dir, reason)
            if not claimed:
                return  # never started: nothing to kill
            if pid is not None or over or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)  # a launch is in flight: wait for its pid
        if pid is not None:
            await self._terminate(pid)
        await asyncio.to_thread(self._release_slot, state_dir)
        self._slot_freed()

    def _pids_for_kill(self, state_dir: str, reason: str) -> tuple[bool, dict[str, Any] | None, bool]:
        claim = _read_claim(state_dir)
        if claim is None:
            return False, None, False
        if not os.path.exists(os.path.join(state_dir, "killed.json")):
            _write_json(os.path.join(state_dir, "killed.json"), {"reason": reason, "at": time.time()})
        pid = _read_json(os.path.join(state_dir, "pid.json"))
        over = "failed" in claim or os.path.exists(os.path.join(state_dir, "exit.json"))
        return True, pid, over

    async def _terminate(self, pid: dict[str, Any]) -> None:
        """Stop the command and every process it started, also those that left its process group
        (the supervisor is their subreaper: they are all in its tree): SIGTERM, then SIGKILL after
        ``kill_grace_period``. Then the supervisor, which records the exit, ends by itself."""
        supervisor = await asyncio.to_thread(
            _process, pid.get("supervisor_pid"), pid.get("supervisor_create_time")
        )
        pgid = int(pid.get("pgid") or pid.get("pid") or 0)
        not_before = float(pid.get("create_time") or pid.get("started_at") or 0)
        whole_tree = LINUX and bool(pid.get("subreaper", True))

        def targets() -> list[psutil.Process]:
            found: dict[int, psutil.Process] = {}
            alive = supervisor is not None and _still_running(supervisor)
            if alive and supervisor is not None:
                with contextlib.suppress(psutil.Error):
                    found.update((p.pid, p) for p in supervisor.children(recursive=True))
            if not (alive and whole_tree) and pgid > 0:
                found.update((p.pid, p) for p in _group_members(pgid, not_before) if p.pid not in found)
            return [p for p in found.values() if _still_running(p)]

        def send(procs: list[psutil.Process], signum: int) -> None:
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    proc.send_signal(signum)

        remaining = await asyncio.to_thread(targets)
        signalled = {p.pid for p in remaining}
        send(remaining, signal.SIGTERM)
        deadline = time.monotonic() + self.kill_grace_period
        while remaining and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            remaining = await asyncio.to_thread(targets)
            fresh = [p for p in remaining if p.pid not in signalled]  # forked meanwhile
            signalled.update(p.pid for p in fresh)
            send(fresh, signal.SIGTERM)
        # SIGKILL cannot be ignored, but the kernel takes a moment: return only once it is done.
        deadline = time.monotonic() + 5
        while remaining and time.monotonic() < deadline:
            send(remaining, signal.SIGKILL)
            await asyncio.sleep(0.05)
            remaining = await asyncio.to_thread(targets)
        if supervisor is None:
            return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if not await asyncio.to_thread(_still_running, supervisor):
                return
            await asyncio.sleep(0.05)
        with contextlib.suppress(psutil.Error):
            if _still_running(supervisor):
                supervisor.kill()

    # -- admission: waking the starts that wait for a slot -------------------------------------

    def _after_start(self, task_ctx: TaskContext, status: TaskStatus) -> None:
        if not self.max_concurrent:
            return
        owner = owner_key(task_ctx)
        if status.phase is TaskPhase.NOT_READY:
            waiter = self._waiters.get(owner)
            if waiter is None:
                self._waiters[owner] = _Waiter(seen=time.monotonic())
            else:
                waiter.seen = time.monotonic()
            self._watch_slots()
            return
        self._waiters.pop(owner, None)
        if status.phase.is_final_for_execution():  # a launch that failed holds no slot
            self._slot_freed()

    def _slot_freed(self) -> None:
        if self._waiters:
            self._wake(1)
            self._watch_slots()

    def _wake(self, free: int) -> None:
        """Ask the engine (EnqueueOwner) to start again, right now, the first ``free`` waiters
        (in order of arrival) that were not already asked and have not answered yet."""
        now = time.monotonic()
        in_flight = [w for w in self._waiters.values() if w.woken > w.seen and now - w.woken < 2.0]
        budget = free - len(in_flight)
        for owner, waiter in list(self._waiters.items()):
            if budget <= 0:
                break
            if waiter in in_flight:
                continue
            waiter.woken = now
            budget -= 1
            for callback in (self._enqueue, wake_owner):
                if callback is not None:
                    with contextlib.suppress(Exception):  # must never fail the caller
                        callback(owner)

    def _watch_slots(self) -> None:
        """While starts wait here, look at the running list every 50 to 250 ms (``SLOT_POLL``; a slot
        also frees when an execution ends unobserved, or in another process) and wake waiters."""
        if self._watcher is not None and not self._watcher.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._watcher = loop.create_task(self._watch())

    async def _watch(self) -> None:
        while self._waiters:
            await asyncio.sleep(min(SLOT_POLL[1], max(SLOT_POLL[0], 0.002 * self.max_concurrent)))
            now = time.monotonic()
            for owner in [o for o, w in self._waiters.items() if now - w.seen > WAITER_TTL]:
                del self._waiters[owner]
            if not self._waiters:
                break
            try:
                running = await asyncio.to_thread(self._count_running)
            except Exception:  # an unreadable state root now: the drivers' own polls go on
                continue
            if running < self.max_concurrent:
                self._wake(self.max_concurrent - running)

    # -- extras ------------------------------------------------------------------------------

    def get_run_url(self, task_ctx: TaskContext) -> str | None:
        return "file://" + os.path.join(self.execution_dir(task_ctx), "logs")

    async def read_logs(self, task_ctx: TaskContext, max_bytes: int = 64_000) -> str | None:
        stdout_path, stderr_path = self.log_paths(task_ctx)
        parts = []
        for label, path in (("stdout", stdout_path), ("stderr", stderr_path)):
            text = await asyncio.to_thread(_tail, path, max_bytes // 2, self.execution_dir(task_ctx))
            if text:
                parts.append(f"----- {label} ({path}) -----\n{text}")
        return "\n".join(parts) or None

    # -- outputs -----------------------------------------------------------------------------

    async def resolve_outputs(
        self, task_ctx: TaskContext, *output_variables: str
    ) -> dict[str, literals_pb2.Literal]:
        resolver = self._outputs or OutputsResolver(self._store)
        return await resolver.resolve_outputs(task_ctx, *output_variables)
