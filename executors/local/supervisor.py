"""Supervisor of one local execution. Standard library only: it is started as a script
(``python -I -S supervisor.py <spec.json>``) so that it starts in milliseconds and does not depend
on what the task's environment has installed.

Why a supervisor at all: the process that starts a task (an Airflow worker or triggerer) may die
or be restarted long before the task ends. The supervisor detaches (double fork, new session),
owns the task process, waits for it, and writes the exit status to disk, so any later process can
learn how the task ended.

Protocol with the launcher:
1. the launcher writes ``spec.json`` (command, cwd, env, log paths, state folder) and runs us,
   sending the task's secret environment variables as one JSON line on our stdin;
2. we fork; the first child exits at once (the launcher reaps it), the grandchild carries on;
3. we start the command in its *own* process group and print one JSON line on stdout:
   ``{"pid": ..., "pgid": ..., "supervisor_pid": ...}`` or ``{"spawn_error": ...}``; the same goes
   to ``pid.json`` (atomically);
4. when the command exits we kill whatever it left running in its process group (a task's
   background children do not outlive it, as in a container) and write ``exit.json`` atomically.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping


def _write_json_atomic(path: str, data: Mapping[str, object]) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(data, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def main(spec_path: str) -> int:
    with open(spec_path) as fh:
        spec = json.load(fh)
    state_dir = spec["state_dir"]
    # Secret environment variables arrive on stdin (one JSON line), never through a file.
    secrets = json.loads(sys.stdin.readline() or "{}")
    env = {**spec["env"], **secrets}

    if os.fork() > 0:
        os._exit(0)  # the launcher reaps this first child; the grandchild is re-parented
    os.setsid()

    stdout = open(spec["stdout"], "ab")  # noqa: SIM115 - handed to the child for its lifetime
    stderr = open(spec["stderr"], "ab")  # noqa: SIM115
    try:
        proc = subprocess.Popen(
            spec["command"],
            cwd=spec["cwd"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        code = 127 if isinstance(exc, FileNotFoundError) else 126
        error = f"cannot run {spec['command'][0]!r}: {exc.strerror or exc}"
        _write_json_atomic(
            os.path.join(state_dir, "exit.json"),
            {"exit_code": code, "spawn_error": error, "ended_at": time.time()},
        )
        sys.stdout.write(json.dumps({"spawn_error": error}) + "\n")
        sys.stdout.flush()
        return 0
    finally:
        stdout.close()
        stderr.close()

    started = {"pid": proc.pid, "pgid": proc.pid, "supervisor_pid": os.getpid(), "started_at": time.time()}
    _write_json_atomic(os.path.join(state_dir, "pid.json"), started)
    sys.stdout.write(json.dumps(started) + "\n")
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # release the launcher's pipe so its read ends
        os.dup2(devnull, fd)

    def forward(signum: int, _frame: object) -> None:
        # Someone signalled the supervisor itself: pass it on to the task's group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)

    exit_code = proc.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # leftovers of the task's process group
    _write_json_atomic(
        os.path.join(state_dir, "exit.json"), {"exit_code": exit_code, "ended_at": time.time()}
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
