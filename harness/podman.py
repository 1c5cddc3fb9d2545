"""A real container engine for the tests: Podman's Docker-compatible service, and the test image.

Podman (``apt-get install podman runc``) serves the Docker Engine API on a unix socket
(``podman system service``). What this machine needs (FIELD-NOTES): runc as the runtime (crun fails
on hybrid cgroups) and no default rlimits (no CAP_SYS_RESOURCE). Both go in a ``containers.conf`` of
our own (``CONTAINERS_CONF``), and the image store in the work tree (``.cache/podman``, ignored by
git), so nothing of the machine's own Podman set-up is touched and built images survive between runs.

There is no registry: the test image is built here (:func:`ensure_test_image`), in two layers:

1. ``localhost/executors-base:bookworm``: Debian 12 with Python 3.11 (``debootstrap``, once);
2. ``localhost/executors-deps:<hash>``: a venv at ``/opt/venv`` with the pinned flytekit and its
   data libraries (``scripts/flytekit-requirements.txt``, the same pins as ``.venv-flytekit``),
   installed from wheels downloaded here;
3. ``localhost/executors-test:<hash of the source>``: this project installed into that venv, the
   conformance suite's flytekit tasks (``tests/conformance/corpus``) in ``/opt/corpus`` on
   ``PYTHONPATH``, as a Flyte task image carries its tasks' code, and a marker file
   (:data:`IMAGE_MARKER`) that exists only in the image. :func:`ensure_test_image` also tags it with
   the name the conformance corpus is serialized with.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
HOME = REPO / ".cache" / "podman"
INSTALL = "apt-get install -y podman runc debootstrap"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
BASE_IMAGE = "localhost/executors-base:bookworm"
IMAGE_MARKER = "/etc/executors-test-image"
REQUIREMENTS = REPO / "scripts" / "flytekit-requirements.txt"
CORPUS = REPO / "tests" / "conformance" / "corpus" / "flyte_tasks.py"
MANAGED_LABEL = "io.airflow-provider-executors.managed"
CONFORMANCE_IMAGE = "localhost/executors-flytekit:conformance"
"""``tests/conformance/cases.py``'s name for the test image (kept equal by a test)."""


class PodmanMissing(RuntimeError):
    """Podman (or what building the image needs) is not installed; the message says how."""


def missing() -> str | None:
    """What is missing to run the container suite, or ``None``."""
    for tool in ("podman", "runc", "debootstrap"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"{tool} is needed for the container suite: {INSTALL}"
    return None


def _log(message: str) -> None:
    print(f"[podman] {message}", file=sys.stderr, flush=True)


def environment() -> dict[str, str]:
    """The variables that make ``podman`` use our configuration and image store."""
    HOME.mkdir(parents=True, exist_ok=True)
    conf, storage = HOME / "containers.conf", HOME / "storage.conf"
    conf.write_text('[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n')
    storage.write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{HOME / "storage"}"\nrunroot = "{HOME / "run"}"\n'
    )
    env = dict(os.environ)
    env.update({"CONTAINERS_CONF": str(conf), "CONTAINERS_STORAGE_CONF": str(storage)})
    env["PATH"] = os.pathsep.join([env.get("PATH", os.defpath), "/usr/sbin", "/sbin"])
    return env


def podman(
    *args: str, check: bool = True, timeout: float = 600, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["podman", *args],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args[:3])} failed ({done.returncode}): {done.stderr[-3000:]}")
    return done  # type: ignore[no-any-return]


def _run(command: list[str], timeout: float) -> None:
    """Run a build step; its output only if it fails (pip and debootstrap are chatty)."""
    env = environment()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} failed ({done.returncode}):\n{done.stderr[-3000:]}")


def image_exists(image: str) -> bool:
    return podman("image", "exists", image, check=False).returncode == 0


def _hash(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()[:12]


def _source_hash() -> str:
    files = sorted(
        p
        for base in ("executors", "airflow_provider")
        for p in (REPO / base).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )
    return _hash(
        (REPO / "pyproject.toml").read_bytes(),
        CORPUS.read_bytes(),
        *(str(p.relative_to(REPO)).encode() + p.read_bytes() for p in files),
    )


def _ensure_base() -> None:
    if image_exists(BASE_IMAGE):
        return
    tarball = HOME / "bookworm-python.tar"
    if not tarball.exists():
        _log("building the base image (debootstrap of Debian 12 with python3; about a minute)")
        rootfs = Path(tempfile.mkdtemp(prefix="rootfs-", dir=HOME))
        try:
            _run(
                ["debootstrap", "--variant=minbase", "--include=python3,python3-venv", "bookworm",
                 str(rootfs), DEBIAN_MIRROR],
                timeout=900,
            )  # fmt: skip
            partial = tarball.with_suffix(".partial")
            _run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], timeout=600)
            partial.rename(tarball)
        finally:
            shutil.rmtree(rootfs, ignore_errors=True)
    podman("import", "--change", "CMD=/bin/bash", str(tarball), BASE_IMAGE)


def _build(tag: str, containerfile: str, context: Path, *volumes: str) -> None:
    (context / "Containerfile").write_text(containerfile)
    args = ["build", "--network", "host", "-t", tag, "-f", str(context / "Containerfile")]
    for volume in volumes:
        args += ["--volume", volume]
    podman(*args, str(context), timeout=1800)


def _ensure_deps() -> str:
    requirements = REQUIREMENTS.read_text()
    tag = f"localhost/executors-deps:{_hash(requirements.encode(), BASE_IMAGE.encode())}"
    if image_exists(tag):
        return tag
    wheels = HOME / f"wheels-{tag.rsplit(':', 1)[1]}"
    if not (wheels / ".complete").exists():
        _log("downloading the image's wheels (flytekit and its data libraries)")
        wheels.mkdir(parents=True, exist_ok=True)
        _run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
             "--dest", str(wheels), "-r", str(REQUIREMENTS)],
            timeout=900,
        )  # fmt: skip
        (wheels / ".complete").touch()
    _log(f"building {tag} (a venv with flytekit)")
    context = Path(tempfile.mkdtemp(prefix="ctx-", dir=HOME))
    try:
        shutil.copy(REQUIREMENTS, context / "requirements.txt")
        _build(
            tag,
            f"FROM {BASE_IMAGE}\n"
            "COPY requirements.txt /tmp/requirements.txt\n"
            "RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --quiet --no-index "
            "--find-links /wheels -r /tmp/requirements.txt && rm /tmp/requirements.txt\n"
            "ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n",
            context,
            f"{wheels}:/wheels:ro",
        )
    finally:
        shutil.rmtree(context, ignore_errors=True)
    return tag


def ensure_base_image() -> str:
    """The base image alone (Debian 12 with python3, built if missing); its name. For what needs an
    image but none of this project inside it (the container benchmark's ``sleep``)."""
    problem = missing()
    if problem:
        raise PodmanMissing(problem)
    HOME.mkdir(parents=True, exist_ok=True)
    with _lock():
        _ensure_base()
    return BASE_IMAGE


def ensure_test_image() -> str:
    """The test image (built if missing, see the module docstring); its name."""
    problem = missing()
    if problem:
        raise PodmanMissing(problem)
    HOME.mkdir(parents=True, exist_ok=True)
    with _lock():
        tag = f"localhost/executors-test:{_source_hash()}"
        if not image_exists(tag):
            _build_test_image(tag)
        podman("tag", tag, CONFORMANCE_IMAGE)
        return tag


def _build_test_image(tag: str) -> None:
    t0 = time.monotonic()
    _ensure_base()
    deps = _ensure_deps()
    context = Path(tempfile.mkdtemp(prefix="ctx-", dir=HOME))
    try:
        _run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
             "--wheel-dir", str(context), str(REPO)],
            timeout=600,
        )  # fmt: skip
        wheel = next(context.glob("*.whl")).name
        shutil.copy(CORPUS, context / CORPUS.name)
        _build(
            tag,
            f"FROM {deps}\n"
            f"COPY {CORPUS.name} /opt/corpus/{CORPUS.name}\n"
            "ENV PYTHONPATH=/opt/corpus\n"
            f"COPY {wheel} /tmp/{wheel}\n"
            f"RUN /opt/venv/bin/pip install --quiet --no-deps /tmp/{wheel} && rm /tmp/{wheel} "
            f"&& echo 'made by harness/podman.py for the container suite' > {IMAGE_MARKER}\n",
            context,
        )
    finally:
        shutil.rmtree(context, ignore_errors=True)
    for line in podman("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split():
        if line.startswith("localhost/executors-test:") and line != tag:
            podman("rmi", "--force", line, check=False)  # older sources: not needed again
    _log(f"built {tag} in {time.monotonic() - t0:.0f}s")


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    import fcntl

    with open(HOME / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@dataclasses.dataclass
class PodmanService:
    """A running ``podman system service`` (the Docker Engine API) on a private unix socket."""

    socket: Path
    process: subprocess.Popen[bytes]
    log_file: Path

    @property
    def address(self) -> str:
        return f"unix://{self.socket}"

    def client(self) -> httpx.Client:
        return httpx.Client(
            transport=httpx.HTTPTransport(uds=str(self.socket)), base_url="http://docker/v1.41"
        )

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def start_service(socket_dir: Path | None = None, timeout: float = 60) -> PodmanService:
    """Start the service on ``<socket_dir>/podman.sock`` (a new temp dir by default) and wait until
    it answers ``/_ping``."""
    problem = missing()
    if problem:
        raise PodmanMissing(problem)
    folder = socket_dir or Path(tempfile.mkdtemp(prefix="podman-", dir="/tmp"))
    folder.mkdir(parents=True, exist_ok=True)
    socket = folder / "podman.sock"
    with contextlib.suppress(FileNotFoundError):
        socket.unlink()
    log_file = folder / "service.log"
    with open(log_file, "ab") as log:
        process = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{socket}"],
            env=environment(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    service = PodmanService(socket, process, log_file)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"podman system service exited with {process.returncode}:\n{service.log_tail()}"
            )
        if socket.exists():
            with contextlib.suppress(httpx.HTTPError), service.client() as client:
                if client.get("/_ping", timeout=2).status_code == 200:
                    return service
        if time.monotonic() > deadline:
            service.stop()
            raise RuntimeError(
                f"podman system service did not answer within {timeout:g}s:\n{service.log_tail()}"
            )
        time.sleep(0.1)


def leftover_containers(labels: dict[str, str] | None = None) -> list[str]:
    """Names of the containers this project's executor made (by label) that still exist."""
    filters = ["--filter", f"label={MANAGED_LABEL}=true"]
    for key, value in (labels or {}).items():
        filters += ["--filter", f"label={key}={value}"]
    out = podman("ps", "--all", *filters, "--format", "{{.Names}}", check=False).stdout
    return [line for line in out.split() if line]


def remove_containers(names: list[str]) -> None:
    if names:
        podman("rm", "--force", *names, check=False)
