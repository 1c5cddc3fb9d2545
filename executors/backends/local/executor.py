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
    ``task.pb``, ``inputs.pb``, ``outputs/outputs.pb`` or ``outputs/error.pb`` (Flyte's; the
    output prefix is a folder of its own, so a task may empty it), ``logs/stdout.log`` and
    ``logs/stderr.log`` (the task's most recent output, at most ``max_log_bytes`` each, the part
    before in ``stdout.log.1``/``stderr.log.1``), ``work/`` (the command's working directory)

The execution folder is the task's data dir when that is a local path; otherwise (an object store)
a folder named after the generated name under ``<state_root>/executions/``.

While the supervisor or the command is alive the execution is running, whatever any file says;
then ``exit.json`` (or the claim's failure record) decides. A task runs as the same user as its
starter and could still find the state folder: this keeps the bookkeeping out of a task's way (a
forged ``exit.json`` in the execution folder means nothing), it is no sandbox.

The parts, in ``executors/backends/local/`` (this module only puts them together):

``options.py``
    the options' defaults and checks
``layout.py``
    where things live (the paths above)
``records.py``
    the files of the state folder: the claim, ``pid.json``, ``killed.json``, ... read and written
``validation.py``
    what cannot be launched (the OS would refuse the environment or an argument), found before
``admission.py``
    the running list, its non-blocking lock and the cheap count: whether a start may launch
``waiters.py``
    the starts that answered NOT_READY, woken when a slot frees
``exit_watch.py``
    the running executions whose processes this process watches (pidfds): their checks are answered
    from memory, and their end wakes the owner at once
``launch.py``
    the environment, the claim, the supervisor's start and its reply
``supervisor.py``
    the supervisor itself, run as a standard-library-only script (it imports nothing of this package)
``processes.py``
    finding an execution's processes and stopping them (SIGTERM, then SIGKILL)
``status.py``
    the status from the records on disk, and a failed command's message
``logs.py``
    the logs' tails, read without trusting the task
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from typing import Any

from flyteidl.core import literals_pb2, tasks_pb2

from executors.backends.container import container_command, status_after_success
from executors.backends.local.admission import LOCK_ATTEMPTS, LOCK_PAUSE, VERIFY_EVERY, Admission
from executors.backends.local.exit_watch import ExitWatches, open_pidfds
from executors.backends.local.launch import SUPERVISOR, Launcher, environment, spawn_supervisor
from executors.backends.local.layout import Layout, default_state_root
from executors.backends.local.logs import log_tails
from executors.backends.local.options import (
    DEFAULT_INHERITED_ENV,
    DEFAULT_MAX_LOG_BYTES,
    folder_option,
    names_option,
    seconds_option,
    whole_option,
)
from executors.backends.local.output import read_new_output, unchanged
from executors.backends.local.processes import LINUX, terminate
from executors.backends.local.records import CLAIM_BYTES, record_kill, state_dirs
from executors.backends.local.status import status_after_failure, status_from_disk
from executors.backends.local.validation import MAX_ARG_BYTES, invalid_launch, unshared_file
from executors.backends.local.waiters import SLOT_POLL, WAITER_TTL, Waiters
from executors.backends.outputs import MAX_OUTPUTS_BYTES, OutputsResolver
from executors.core.context import TaskContext
from executors.core.interface import Executor, ExecutorInitializationParameters, ExecutorProperties
from executors.core.output import OutputChunk
from executors.core.phase import TaskPhase
from executors.core.status import TaskStatus, permanent_failure
from executors.data.storage import DataStore
from executors.engine.waking import owner_key

__all__ = [
    "CLAIM_BYTES",
    "DEFAULT_INHERITED_ENV",
    "DEFAULT_MAX_LOG_BYTES",
    "LINUX",
    "LOCK_ATTEMPTS",
    "LOCK_PAUSE",
    "MAX_ARG_BYTES",
    "SLOT_POLL",
    "SUPERVISOR",
    "VERIFY_EVERY",
    "WAITER_TTL",
    "LocalExecutor",
    "default_state_root",
    "state_dirs",
]


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
    ``max_outputs_bytes``
        the largest ``outputs.pb`` read back; a larger one fails the task without retry, naming
        the file, its size and the cap (default 64 MiB).
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
        max_outputs_bytes: int | str = MAX_OUTPUTS_BYTES,
    ) -> None:
        self.max_concurrent = (
            0
            if max_concurrent is None or max_concurrent == ""
            else whole_option("max_concurrent", max_concurrent, positive=False)
        )
        self.kill_grace_period = seconds_option("kill_grace_period", kill_grace_period, positive=False)
        self.state_root = folder_option("state_root", state_root) or default_state_root()
        self.inherit_env = (
            names_option("inherit_env", inherit_env) if inherit_env is not None else DEFAULT_INHERITED_ENV
        )
        self.launch_timeout = seconds_option("launch_timeout", launch_timeout, positive=True)
        self.log_tail_bytes = whole_option("log_tail_bytes", log_tail_bytes, positive=False)
        self.max_log_bytes = whole_option("max_log_bytes", max_log_bytes, positive=True)
        self.max_outputs_bytes = whole_option("max_outputs_bytes", max_outputs_bytes, positive=True)
        self._store = DataStore()
        self._outputs: OutputsResolver | None = None
        self._layout = Layout(self.state_root)
        self._admission = Admission(
            self._layout, max_concurrent=self.max_concurrent, launch_timeout=self.launch_timeout
        )
        self._waiters = Waiters(
            self.max_concurrent, self._admission.count_running, self._admission.all_watched
        )
        self._exits = ExitWatches(self._processes_ended)
        self._admission.watched_count = lambda: len(self._exits)
        self._launcher = Launcher(
            self._layout,
            self._admission,
            launch_timeout=self.launch_timeout,
            kill_grace_period=self.kill_grace_period,
            max_log_bytes=self.max_log_bytes,
            # Looked up at each launch: a test replaces _spawn_supervisor on the instance.
            spawn_supervisor=lambda state_dir, env: self._spawn_supervisor(state_dir, env),
        )

    def get_properties(self) -> ExecutorProperties:
        return ExecutorProperties(requires_finalizer=True)

    async def initialize(self, params: ExecutorInitializationParameters) -> None:
        if params.data_store is not None:
            self._store = params.data_store
        self._outputs = OutputsResolver(self._store, max_outputs_bytes=self.max_outputs_bytes)
        self._waiters.enqueue = params.enqueue_owner
        await asyncio.to_thread(self._layout.make_state_root)

    async def close(self) -> None:
        self._waiters.close()
        self._exits.close()

    # -- where things live -------------------------------------------------------------------

    def execution_dir(self, task_ctx: TaskContext) -> str:
        return self._layout.execution_dir(task_ctx)

    def state_dir(self, task_ctx: TaskContext) -> str:
        """The executor's records of this execution (see the module docstring): under
        ``state_root``, out of the task's way, keyed by generated name and data dir."""
        return self._layout.state_dir(task_ctx)

    def log_paths(self, task_ctx: TaskContext) -> tuple[str, str]:
        """The task's ``stdout.log`` and ``stderr.log`` (the most recent part of its output)."""
        return self._layout.log_paths(task_ctx)

    # -- start -------------------------------------------------------------------------------

    async def start_task(
        self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate, inputs: literals_pb2.LiteralMap
    ) -> TaskStatus:
        if self._waiters.may_answer(task_ctx):
            # It waits for a slot, was checked in full before, and every slot is still held: no
            # rendering, no thread, no file (thousands may wait; they ask again with backoff).
            busy = self._admission.known_full()
            if busy is not None:
                self._waiters.after_start(task_ctx, busy, from_memory=True)
                return busy
        unshared = unshared_file(task_ctx)
        if unshared is not None:
            return permanent_failure(unshared)
        command = container_command(self.id, task, task_ctx, inputs)
        if isinstance(command, TaskStatus):
            return command
        # Secrets go to the supervisor through a pipe, never into spec.json on disk.
        env = environment(self.inherit_env, dataclasses.replace(task_ctx, secret_environment={}), task)
        secrets = dict(task_ctx.secret_environment)
        invalid = invalid_launch(task, task_ctx, command, env, secrets)
        if invalid is not None:
            return permanent_failure(invalid)
        state_dir = self.state_dir(task_ctx)
        watch = self._exits.wants(state_dir)

        def launch() -> tuple[TaskStatus | None, list[int] | None]:
            launched = self._launcher.launch(task_ctx, command, env, secrets)
            running = launched is not None and launched.phase is TaskPhase.RUNNING
            return launched, open_pidfds(state_dir) if running and watch else None

        launched, fds = await asyncio.to_thread(launch)
        if launched is None:  # already claimed by an earlier start: re-attach, never launch twice
            launched = await self.check_task_status(task_ctx, task)
        elif fds is not None:
            launched = self._exits.add(state_dir, owner_key(task_ctx), launched, fds)
        self._waiters.after_start(task_ctx, launched)
        return launched

    def _spawn_supervisor(self, state_dir: str, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        return spawn_supervisor(env)

    def _processes_ended(self, owner: str) -> None:
        """Every watched process of an owner's execution ended: its driver checks again now (the
        end is seen at once, not a poll interval later), and its slot may be free."""
        self._admission.slot_may_be_free()
        self._waiters.wake(owner)
        self._waiters.slot_freed()

    # -- status ------------------------------------------------------------------------------

    async def check_task_status(self, task_ctx: TaskContext, task: tasks_pb2.TaskTemplate) -> TaskStatus:
        state_dir = self.state_dir(task_ctx)
        remembered = self._exits.running(state_dir)
        if remembered is not None:  # a watched process of it lives (exit_watch.py)
            return remembered
        watched = self._exits.renewable(state_dir)
        watch = not watched and self._exits.wants(state_dir)

        def read() -> tuple[TaskStatus, int | None, list[int] | None]:
            status, exit_code = status_from_disk(
                state_dir,
                task_ctx.generated_name,
                launch_timeout=self.launch_timeout,
                admission=self._admission,
            )
            running = exit_code is None and status.phase is TaskPhase.RUNNING
            return status, exit_code, open_pidfds(state_dir) if running and watch else None

        status, exit_code, fds = await asyncio.to_thread(read)
        if exit_code is not None or status.phase is not TaskPhase.RUNNING:
            self._exits.forget(state_dir)
        elif watched:
            status = self._exits.renew(state_dir, status)
        elif fds is not None:
            status = self._exits.add(state_dir, owner_key(task_ctx), status, fds)
        if exit_code is None:
            result = status
        elif exit_code == 0:
            result = await status_after_success(self._store, task_ctx, task, what="the command exited 0")
        else:
            result = await status_after_failure(
                self._store,
                task_ctx,
                exit_code,
                log_paths=self.log_paths(task_ctx),
                within=self.execution_dir(task_ctx),
                tail_bytes=self.log_tail_bytes,
            )
        if exit_code is not None or status.phase.is_final_for_execution():
            self._waiters.slot_freed()
        return result

    # -- kill --------------------------------------------------------------------------------

    async def kill_task(self, task_ctx: TaskContext, reason: str) -> None:
        state_dir = self.state_dir(task_ctx)
        deadline = time.monotonic() + self.launch_timeout
        while True:
            claimed, pid, over = await asyncio.to_thread(record_kill, state_dir, reason)
            if not claimed:
                return  # never started: nothing to kill
            if pid is not None or over or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)  # a launch is in flight: wait for its pid
        if pid is not None:
            await terminate(pid, self.kill_grace_period)
        await asyncio.to_thread(self._admission.release, state_dir)
        self._waiters.slot_freed()

    # -- extras ------------------------------------------------------------------------------

    def get_run_url(self, task_ctx: TaskContext) -> str | None:
        return "file://" + os.path.join(self.execution_dir(task_ctx), "logs")

    async def read_logs(self, task_ctx: TaskContext, max_bytes: int = 64_000) -> str | None:
        stdout_path, stderr_path = self.log_paths(task_ctx)
        return await log_tails(stdout_path, stderr_path, self.execution_dir(task_ctx), max_bytes)

    async def read_output(
        self,
        task_ctx: TaskContext,
        cursor: Mapping[str, Any] | None,
        *,
        max_bytes: int = 64_000,
        final: bool = False,
    ) -> OutputChunk:
        stdout_path, stderr_path = self.log_paths(task_ctx)
        paths = {"stdout": stdout_path, "stderr": stderr_path}
        if unchanged(paths, cursor):  # the common case, thousands of times a minute: no thread
            return OutputChunk((), dict(cursor or {}))
        within = self.execution_dir(task_ctx)
        return await asyncio.to_thread(read_new_output, paths, within, cursor, max_bytes, final)

    # -- outputs -----------------------------------------------------------------------------

    async def resolve_outputs(
        self, task_ctx: TaskContext, *output_variables: str
    ) -> dict[str, literals_pb2.Literal]:
        resolver = self._outputs or OutputsResolver(self._store, max_outputs_bytes=self.max_outputs_bytes)
        return await resolver.resolve_outputs(task_ctx, *output_variables)
