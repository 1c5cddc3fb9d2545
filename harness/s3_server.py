"""A real S3-compatible server for the tests: moto's server mode on loopback, in its own process.

moto (``moto[server]``, a dev dependency; the server s3fs's own test suite runs against) answers
the S3 REST API over HTTP, so s3fs, aiobotocore and boto3 talk to it exactly as to AWS: signed
requests, multipart uploads, conditional writes (``If-None-Match: *``). Its own process, so that a
test can stop it (a store that goes away) and start it again on the same port (moto keeps nothing
across a restart: the buckets are gone with it).

Credentials and endpoint reach every client the usual way, through the ``AWS_*`` variables
(:meth:`S3Server.environment`), as a platform team would configure a real deployment.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class S3Server:
    """``python -m moto.server`` on a free loopback port. Use as a context manager or start/stop."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.endpoint = f"http://{HOST}:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def environment(self) -> dict[str, str]:
        """The variables that point s3fs/botocore (and a task's process) at this server."""
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def start(self, timeout: float = 30.0) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the S3 server (moto) exited with {self._process.returncode} at start")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.endpoint}/moto-api/", timeout=1).status_code < 500:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the S3 server (moto) did not answer on {self.endpoint} within {timeout:.0f}s")

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def new_bucket(self, prefix: str = "test") -> str:
        """A new, empty bucket; returns its name."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        response = httpx.put(f"{self.endpoint}/{name}", timeout=10)
        response.raise_for_status()
        return name

    def __enter__(self) -> S3Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def environment_of(server: S3Server) -> Iterator[None]:
    """This process's ``AWS_*`` variables set to ``server`` for the block, restored after."""
    saved = {name: os.environ.get(name) for name in server.environment()}
    os.environ.update(server.environment())
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
