"""Supervisor of one local execution. Standard library only: it is started as a script
(``python -I -S supervisor.py``) so that it starts in milliseconds and does not depend on what the
task's environment has installed.

Why a supervisor at all: the process that starts a task (an Airflow worker or triggerer) may die
or be restarted long before the task ends. The supervisor detaches (double fork, new session),
owns the task process, drains its output into size-capped logs, waits for it, stops whatever it
left behind and writes the exit status to disk, so any later process can learn how the task ended.

Protocol with the launcher (``executors/backends/local/launch.py``):

1. the launcher runs us with an almost empty environment and sends ONE JSON line on our stdin:
   ``{"spec": {...}, "secrets": {...}}`` (command, cwd, env, log paths, state folder, limits). None
   of it is in our argv or environment, so a task cannot read the state folder or the starter's
   secrets from ``ps`` or ``/proc/<our pid>/environ``; the secrets never touch the disk.
2. we read it and fork; the first child exits at once (the launcher reaps it: a non-zero status
   means we failed before that, the reason on stderr), the grandchild carries on.
3. the grandchild starts a new session, becomes a child subreaper (Linux), opens the logs and
   starts the command in its *own* process group, its stdout/stderr on pipes drained by one thread
   each; it writes ``pid.json`` (atomically) and prints one JSON line on stdout:
   ``{"pid", "pgid", "supervisor_pid", "started_at"}``, or ``{"spawn_error", "exit_code"}`` (the
   command cannot be run: the task's fault), or ``{"supervisor_error"}`` (ours: a full disk...; a
   command already started is stopped first). From then on our stderr is ``supervisor.log``.
4. when the command exits, every process it left behind is stopped (SIGTERM, then SIGKILL after the
   grace period) and reaped, the pipes are drained to their end, and ``exit.json`` is written
   atomically.

Processes that escape. A task may leave processes that are no longer in its process group
(``setsid cmd &``, a daemon's double fork into a new session). As a *child subreaper*
(``prctl(PR_SET_CHILD_SUBREAPER)``) we, not init, become the parent of every orphan among our
descendants, so they all stay in our process tree, where we find them (``/proc``) and stop them, as
a container runtime would. Why not a cgroup, which would also catch a process that re-parents
itself elsewhere: creating one needs root or a cgroup subtree delegated to the user (systemd
``Delegate=yes``), which an Airflow worker, an ordinary user, normally lacks, and macOS has none;
the subreaper needs no privilege and no set-up. What it cannot catch: a process handed to a daemon
outside our tree (``systemd-run``, ``at``, ``ssh localhost``), and the orphans of a supervisor that
is itself SIGKILLed (they go to init; ``kill_task`` still stops the command's process group). On
systems without subreapers (macOS) only the command's process group is stopped.

Logs. ``stdout.log`` and ``stderr.log`` keep the most recent output: once one holds
``max_log_bytes`` it is renamed ``<name>.1`` (replacing the previous ``.1``) and a new one starts
with a line saying so; a log never takes more than twice ``max_log_bytes`` on disk. The pipes are
drained whatever happens (a log that cannot be written any more is discarded, never left to fill
the pipe), so a task never blocks on its output for longer than a write to disk takes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from typing import Any

PR_SET_CHILD_SUBREAPER = 36
F_SETPIPE_SZ = 1031  # Linux: a 1 MiB pipe lets a task write in bursts while we write to disk
PIPE_SIZE = 1 << 20
READ_CHUNK = 1 << 16
DRAIN_TIMEOUT = 5.0  # after the command and what it left are gone, the pipes are at their end
LINUX = sys.platform.startswith("linux")


def write_json_atomic(path: str, data: Mapping[str, object], *, fsync: bool) -> None:
    """Write ``data`` to ``path`` atomically (``fsync``: on disk before it is renamed into place);
    on any failure (a full disk) nothing is left behind, not even the temporary file. The launcher's
    records are written with it too (``records.write_json``): it lives here because this script
    imports nothing of the package."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w") as fh:
            json.dump(data, fh)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:  # say which file (a flush has no name)
            raise OSError(exc.errno, f"cannot write {path}: {exc.strerror or exc}") from exc
        raise


def _note(message: str) -> None:
    """A line in supervisor.log (our stderr once detached); never fails."""
    with contextlib.suppress(Exception):
        sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} supervisor {os.getpid()}: {message}\n")
        sys.stderr.flush()


def become_subreaper() -> bool:
    """Make orphaned descendants re-parent to us instead of init (Linux only)."""
    if not LINUX:
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def descendants(root: int) -> list[int]:
    """Live (not zombie) descendants of ``root``, from ``/proc``; ``[]`` where there is none."""
    children: dict[int, list[int]] = {}
    dead: set[int] = set()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                line = fh.read()
        except OSError:
            continue
        fields = line[line.rfind(b")") + 2 :].split()  # the name (in parentheses) may hold anything
        if len(fields) < 2:
            continue
        pid = int(entry)
        if fields[0] in (b"Z", b"X"):
            dead.add(pid)
        children.setdefault(int(fields[1]), []).append(pid)
    found: list[int] = []
    todo, seen = [root], {root}
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in seen:
                seen.add(child)
                todo.append(child)
                if child not in dead:
                    found.append(child)
    return found


def reap() -> None:
    """Collect every child that has ended (as a subreaper, orphans become our children)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


class Leftovers:
    """Finds and stops what the command leaves: our whole process tree as a subreaper, else (no
    subreaper: macOS) the command's process group."""

    def __init__(self, pgid: int, subreaper: bool) -> None:
        self.pgid = pgid
        self.subreaper = subreaper

    def alive(self) -> list[int]:
        if self.subreaper:
            return descendants(os.getpid())
        try:
            os.killpg(self.pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [-self.pgid]

    def signal(self, pids: list[int], signum: int) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if pid < 0:
                    os.killpg(-pid, signum)
                else:
                    os.kill(pid, signum)

    def stop(self, grace: float) -> int:
        """SIGTERM everything left, SIGKILL what is still there after ``grace`` seconds; returns
        how many processes had to be stopped."""
        reap()
        pids = self.alive()
        if not pids:
            return 0
        stopped = set(pids)
        self.signal(pids, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            time.sleep(0.05)
            reap()
            pids = self.alive()
            if not pids:
                return len(stopped)
            new = [p for p in pids if p not in stopped]  # forked meanwhile
            stopped.update(new)
            self.signal(new, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while pids and time.monotonic() < deadline:
            stopped.update(pids)
            self.signal(pids, signal.SIGKILL)
            time.sleep(0.02)
            reap()
            pids = self.alive()
        if pids:
            _note(f"could not stop {pids}")
        return len(stopped)


class CappedLog:
    """One task log keeping the most recent output: at most ``cap`` bytes per file, the older part
    in ``<path>.1`` (one rotation kept). The task can write into the logs folder, so files are
    opened without following symlinks and must be regular files (a FIFO would block us)."""

    def __init__(self, path: str, cap: int) -> None:
        self.path = path
        self.cap = cap
        self.fd = self._open(os.O_APPEND)
        self.size = os.fstat(self.fd).st_size
        self.previous = 0  # bytes in <path>.1
        self.dropped = 0  # bytes of output no longer on disk
        self.error: str | None = None

    def _open(self, mode: int) -> int:
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | mode
        fd = os.open(self.path, flags, 0o644)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(f"{self.path} is not a regular file")
        os.set_blocking(fd, True)
        return fd

    def write(self, data: bytes) -> None:
        if self.error is not None:
            self.dropped += len(data)  # keep draining the pipe: the task must not block on it
            return
        try:
            if self.size and self.size + len(data) > self.cap:
                self._rotate()
            room = self.cap - self.size
            if len(data) > room:
                self.dropped += len(data) - max(room, 0)
                data = data[len(data) - max(room, 0) :]
            view = memoryview(data)
            while view:
                written = os.write(self.fd, view)
                view = view[written:]
                self.size += written
        except OSError as exc:
            self.error = str(exc)
            self.dropped += len(data)
            _note(f"{self.path}: output is discarded from now on: {exc}")

    def _rotate(self) -> None:
        self.dropped += self.previous
        try:
            os.replace(self.path, self.path + ".1")
            os.close(self.fd)
            try:
                self.fd = self._open(os.O_EXCL)  # a new file, never one the task put there
            except FileExistsError:
                os.unlink(self.path)
                self.fd = self._open(os.O_EXCL)
            self.previous = self.size
        except OSError as exc:  # cannot rename (the task replaced a name?): start again in place
            _note(f"{self.path}: cannot rotate ({exc}); truncating it instead")
            os.ftruncate(self.fd, 0)
            self.dropped += self.size
            self.previous = 0
        name = os.path.basename(self.path)
        note = (
            f"[local executor: {name} keeps the most recent output (max_log_bytes={self.cap}); "
            f"the {self.previous} bytes before this line are in {name}.1"
            + (f", {self.dropped} earlier bytes were dropped" if self.dropped else "")
            + "]\n"
        ).encode()
        if len(note) > self.cap // 2:  # a tiny cap: the output matters more than the note
            note = b""
        os.write(self.fd, note)
        self.size = len(note)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def pump(fd: int, log: CappedLog) -> None:
    """Copy a pipe into its log until every writer has closed it."""
    try:
        while True:
            try:
                data = os.read(fd, READ_CHUNK)
            except OSError:
                return
            if not data:
                return
            log.write(data)
    finally:
        os.close(fd)


def _report(data: Mapping[str, object]) -> None:
    """The one line the launcher reads. A launcher that died meanwhile is not our problem: what we
    started is in pid.json for anyone else."""
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.write(json.dumps(data) + "\n")
        sys.stdout.flush()


def _detach_stdio(state_dir: str) -> None:
    """Release the launcher's pipes (so its read ends) and make supervisor.log our stderr."""
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        log = os.open(
            os.path.join(state_dir, "supervisor.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
        )
    except OSError:
        log = devnull
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(log, 2)


class Supervisor:
    """Steps 3 and 4 of the protocol, in the detached grandchild."""

    def __init__(self, spec: dict[str, Any], env: dict[str, str]) -> None:
        self.spec = spec
        self.env = env
        self.state_dir: str = spec["state_dir"]
        self.grace = float(spec.get("kill_grace_period", 10))
        self.cap = int(spec.get("max_log_bytes", 64 << 20))
        self.proc: subprocess.Popen[bytes] | None = None
        self.leftovers: Leftovers | None = None
        self.reported = False
        self.signalled: int | None = None

    def run(self) -> int:
        os.setsid()
        subreaper = become_subreaper()
        try:
            return self._supervise(subreaper)
        except BaseException as exc:  # ours, not the task's: say what it was where it is read
            self._stop_after_failure()
            traceback.print_exc()
            if not self.reported:
                self.reported = True
                _report({"supervisor_error": f"{type(exc).__name__}: {exc}"})
            return 1

    def _forward(self, signum: int, _frame: object) -> None:
        """Someone signalled the supervisor itself: pass it on to the command and what it started
        (once there is a command; until then it is kept for it)."""
        self.signalled = signum
        if self.leftovers is not None:
            self.leftovers.signal(self.leftovers.alive(), signum)

    def _supervise(self, subreaper: bool) -> int:
        spec = self.spec
        signal.signal(signal.SIGTERM, self._forward)
        signal.signal(signal.SIGINT, self._forward)
        logs = [CappedLog(spec["stdout"], self.cap), CappedLog(spec["stderr"], self.cap)]
        pipes = [os.pipe(), os.pipe()]
        if LINUX:
            import fcntl

            for read_end, _ in pipes:
                with contextlib.suppress(OSError):
                    fcntl.fcntl(read_end, F_SETPIPE_SZ, PIPE_SIZE)
        try:
            self.proc = subprocess.Popen(
                spec["command"],
                cwd=spec["cwd"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=pipes[0][1],
                stderr=pipes[1][1],
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            for read_end, _ in pipes:
                os.close(read_end)
            if exc.filename == spec["cwd"]:
                raise  # the working directory, not the command: ours
            return self._spawn_failed(exc)
        finally:
            for _, write_end in pipes:
                os.close(write_end)
        proc = self.proc
        self.leftovers = leftovers = Leftovers(proc.pid, subreaper)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # after the spawn: the command keeps its own
        if self.signalled is not None:
            leftovers.signal([proc.pid], self.signalled)
        pumps = [
            threading.Thread(target=pump, args=(read_end, log), name=f"pump-{i}", daemon=True)
            for i, ((read_end, _), log) in enumerate(zip(pipes, logs, strict=True))
        ]
        for thread in pumps:
            thread.start()

        started = {
            "pid": proc.pid,
            "pgid": proc.pid,
            "supervisor_pid": os.getpid(),
            "started_at": time.time(),
            "subreaper": subreaper,
        }
        write_json_atomic(os.path.join(self.state_dir, "pid.json"), started, fsync=True)
        self.reported = True
        _report(started)
        _detach_stdio(self.state_dir)

        exit_code = self._wait(proc.pid)
        proc.returncode = exit_code
        left = leftovers.stop(self.grace)  # a task's leftovers do not outlive it, as in a container
        if left:
            _note(f"stopped {left} process(es) the command left behind")
        for thread in pumps:
            thread.join(DRAIN_TIMEOUT)
        for log in logs:
            log.close()
        write_json_atomic(
            os.path.join(self.state_dir, "exit.json"),
            {
                "exit_code": exit_code,
                "ended_at": time.time(),
                "left_behind": left,
                "log_bytes_dropped": {"stdout": logs[0].dropped, "stderr": logs[1].dropped},
            },
            fsync=True,
        )
        return 0

    def _spawn_failed(self, exc: OSError) -> int:
        code = 127 if isinstance(exc, FileNotFoundError) else 126
        error = f"cannot run {self.spec['command'][0]!r}: {exc.strerror or exc}"
        try:
            write_json_atomic(
                os.path.join(self.state_dir, "exit.json"),
                {"exit_code": code, "spawn_error": error, "ended_at": time.time()},
                fsync=True,
            )
        except OSError as write_error:  # the launcher records it in the claim too
            _note(f"cannot write exit.json: {write_error}")
        self.reported = True
        _report({"spawn_error": error, "exit_code": code})
        return 0

    @staticmethod
    def _wait(pid: int) -> int:
        """Wait for the command, reaping the orphans re-parented to us meanwhile."""
        while True:
            try:
                reaped, status = os.waitpid(-1, 0)
            except ChildProcessError:
                raise RuntimeError(f"lost track of the command (pid {pid})") from None
            if reaped == pid:
                return os.waitstatus_to_exitcode(status)

    def _stop_after_failure(self) -> None:
        """We failed after starting the command: nobody would supervise it, so it must not run."""
        if self.proc is None:
            return
        leftovers = self.leftovers or Leftovers(self.proc.pid, False)
        with contextlib.suppress(Exception):
            leftovers.signal([self.proc.pid], signal.SIGKILL)
            leftovers.stop(0)
            reap()


def main() -> int:
    """Steps 1 and 2 of the protocol. A failure here ends this process with status 1 and the
    traceback on stderr, both of which the launcher reads."""
    message = json.loads(sys.stdin.readline())
    spec: dict[str, Any] = message["spec"]
    secrets: dict[str, str] = message.get("secrets") or {}
    command = spec["command"]
    if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
        raise ValueError(f"the command must be a non-empty list of strings, got {command!r}")
    env = {**spec["env"], **secrets}
    if os.fork() > 0:
        os._exit(0)  # the launcher reaps this first child; the grandchild is re-parented
    return Supervisor(spec, env).run()


if __name__ == "__main__":
    sys.exit(main())
