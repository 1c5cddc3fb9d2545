"""A private PostgreSQL cluster for the reliability suite, from Debian's ``postgresql`` package.

``PostgresCluster.start()`` runs ``initdb`` in a fresh temporary folder, then ``pg_ctl start`` on a
free TCP port of 127.0.0.1 with its unix socket in that folder too, and creates the ``airflow``
database (owner ``airflow``, trust authentication: nothing listens beyond this machine's
loopback). PostgreSQL refuses to run as root: when the suite runs as root (CI does), the cluster
runs as the ``postgres`` system user (``runuser -u postgres --``), which the Debian package creates.
``stop()`` stops the server (``pg_ctl stop -m immediate``, then SIGKILL of its postmaster if need
be) and removes the folder. Nothing here touches the machine's own clusters (``pg_lsclusters``).

The server binaries are looked up under ``/usr/lib/postgresql/<version>/bin`` (Debian's layout,
not on ``PATH``); Airflow's drivers (``psycopg2`` for ``postgresql+psycopg2://``, and ``asyncpg``,
which Airflow derives for its async engine) must be installed in this venv.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

from harness.airflow_stack import free_port, tail

APT_INSTALL = "apt-get install -y postgresql"
PIP_INSTALL = 'pip install "psycopg2-binary>=2.9.9" "asyncpg>=0.30.0"'
SERVER_GLOB = "/usr/lib/postgresql/*/bin"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL (or a driver for it) is not installed; the message says what to install."""


def _version_key(bin_dir: str) -> tuple[int, ...]:
    version = Path(bin_dir).parent.name
    return tuple(int(part) for part in version.split(".") if part.isdigit()) or (0,)


def find_server_bin() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has ``initdb``, ``pg_ctl`` and ``postgres``."""
    for bin_dir in sorted(glob.glob(SERVER_GLOB), key=_version_key, reverse=True):
        if all(os.access(os.path.join(bin_dir, tool), os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(bin_dir)
    raise PostgresUnavailable(
        f"the reliability suite runs Airflow on a private PostgreSQL cluster, but no PostgreSQL server "
        f"was found ({SERVER_GLOB}/initdb and pg_ctl are missing). Install Debian's server package: "
        f"`{APT_INSTALL}` (as root, after `apt-get update`)"
    )


def check_drivers() -> None:
    """Airflow connects with psycopg2 (``postgresql+psycopg2://``) and builds its async engine on
    asyncpg (``postgresql+asyncpg://``, derived from the same URL): both must be importable."""
    missing = [name for name in ("psycopg2", "asyncpg") if importlib.util.find_spec(name) is None]
    if missing:
        raise PostgresUnavailable(
            f"Airflow's PostgreSQL drivers are not installed in this venv (missing: {', '.join(missing)}); "
            f"install them with `{PIP_INSTALL}`"
        )


def _run_as() -> list[str]:
    """The command prefix that runs a server tool as a non-root user (empty when not root)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable(
            "running as root, and PostgreSQL refuses to: the cluster must run as the `postgres` system "
            f"user, which does not exist. It comes with Debian's server package: `{APT_INSTALL}`"
        ) from None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise PostgresUnavailable("running as root without `runuser` (util-linux): cannot drop to `postgres`")
    return [runuser, "-u", "postgres", "--"]


@dataclasses.dataclass
class PostgresCluster:
    bin_dir: Path
    root: Path
    port: int
    user: str = "airflow"
    database: str = "airflow"
    run_as: list[str] = dataclasses.field(default_factory=list)
    startup_seconds: float = 0.0

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    @property
    def url(self) -> str:
        """The SQLAlchemy URL Airflow uses (its async engine swaps the driver for asyncpg)."""
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{self.database}"

    @classmethod
    def create(cls) -> PostgresCluster:
        """Check what is needed and pick the folder and port; nothing runs yet."""
        bin_dir = find_server_bin()
        check_drivers()
        run_as = _run_as()
        # A short path: the unix socket (<root>/socket/.s.PGSQL.<port>) must stay under ~107 bytes.
        root = Path(tempfile.mkdtemp(prefix="pgrel-", dir="/tmp" if os.path.isdir("/tmp") else None))
        return cls(bin_dir=bin_dir, root=root, port=free_port(), run_as=run_as)

    def _tool(self, name: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self.run_as, str(self.bin_dir / name), *args],
            cwd=self.root,  # the postgres user may not enter the caller's working directory
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{name} {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n"
                f"--- {self.log_file} ---\n{tail(self.log_file, 40)}"
            )
        return done

    def start(self) -> None:
        t0 = time.monotonic()
        self.socket_dir.mkdir()
        if self.run_as:
            entry = pwd.getpwnam("postgres")
            for path in (self.root, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            os.chmod(self.root, 0o700)
        self._tool(
            "initdb", "--pgdata", str(self.data_dir), "--username", self.user, "--auth", "trust",
            "--encoding", "UTF8", "--no-locale", "--no-sync",
        )  # fmt: skip
        self._start_server()
        self._create_database()
        self.startup_seconds = time.monotonic() - t0

    def _start_server(self) -> None:
        options = " ".join(
            [
                f"-p {self.port}",
                f"-k {self.socket_dir}",
                "-c listen_addresses=127.0.0.1",
                "-c max_connections=200",
                # A throw-away cluster: durability buys nothing and costs seconds on every commit.
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
            ]
        )
        self._tool(
            "pg_ctl", "start", "--pgdata", str(self.data_dir), "--log", str(self.log_file),
            "--wait", "--timeout", "60", "--options", options,
        )  # fmt: skip

    def restart(self, down_seconds: float) -> float:
        """Stop the server (``fast``: every client is disconnected, as in a planned restart or a
        fail-over), keep it down ``down_seconds``, start it again on the same port and data; returns
        the seconds it was unreachable."""
        t0 = time.monotonic()
        self._tool(
            "pg_ctl", "stop", "--pgdata", str(self.data_dir), "--mode", "fast", "--wait", "--timeout", "60"
        )
        time.sleep(down_seconds)
        self._start_server()
        return time.monotonic() - t0

    def _create_database(self) -> None:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{self.database}" OWNER "{self.user}"')
        finally:
            conn.close()

    def airflow_tables(self) -> set[str]:
        """The tables of the ``public`` schema (``airflow db migrate`` made them, here)."""
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname=self.database)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                return {row[0] for row in cur.fetchall()}
        finally:
            conn.close()

    def postmaster_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        return None

    def stop(self) -> None:
        """Stop the server (immediate: the data is thrown away) and remove its folder."""
        pid = self.postmaster_pid()
        if pid is not None:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._tool("pg_ctl", "stop", "--pgdata", str(self.data_dir), "--mode", "immediate",
                           "--wait", "--timeout", "30")  # fmt: skip
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                if str(self.data_dir) in " ".join(proc.cmdline()):  # ours, not a reused pid
                    for child in proc.children(recursive=True):
                        with contextlib.suppress(psutil.Error):
                            child.kill()
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)

    def server_processes(self) -> list[psutil.Process]:
        """The postmaster and its children, if any still run."""
        pid = self.postmaster_pid()
        if pid is None:
            return []
        try:
            proc = psutil.Process(pid)
            return [proc, *proc.children(recursive=True)]
        except psutil.Error:
            return []
