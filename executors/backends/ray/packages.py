"""The runner travels with the job: this package uploaded to the Ray cluster as a ``py_modules`` entry.

Ray's own job SDK uploads a local ``py_modules`` folder the same way: a zip whose name is its
content hash, ``GET /api/packages/gcs/<name>`` (200: the cluster has it; the call also pins it
for a while so it outlives the gap until the job references it), else ``PUT`` of the bytes. The
job's ``runtime_env.py_modules`` then names ``gcs://<name>``: every node that runs the job
downloads it once, unpacks it and puts it on the job's ``PYTHONPATH``, ahead of any installed
copy, so the code that runs is the code that wrote the task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from executors.backends.runner_package import package_archive

Request = Callable[..., Awaitable[httpx.Response]]
"""``RayExecutor._request``: ``(method, path, *, raise_5xx=..., **httpx kwargs)``."""


class PackageUploadError(Exception):
    """The dashboard refused the package (a 4xx): the job cannot get the runner."""


def package_name(digest: str) -> str:
    """The package's name in the cluster: Ray's prefix and the content hash."""
    return f"_ray_pkg_{digest[:32]}.zip"


async def runner_module_uri(request: Request) -> str:
    """``gcs://<name>`` of this package in the cluster, uploaded first when the cluster lacks it.

    Raises what ``request`` raises for an unreachable dashboard (the start answers UNKNOWN and is
    tried again) and :class:`PackageUploadError` when the dashboard refuses the package.
    """
    archive = await asyncio.to_thread(package_archive)
    name = package_name(archive.digest)
    path = f"/api/packages/gcs/{name}"
    found = await request("GET", path)
    if found.status_code == 404:
        put: httpx.Response = await request("PUT", path, content=archive.data)
        if not put.is_success:
            raise PackageUploadError(
                f"the Ray dashboard refused the upload of {name} ({len(archive.data)} bytes, this "
                f"package's runner) with HTTP {put.status_code}: {put.text.strip()[:500]}"
            )
    elif not found.is_success:
        raise PackageUploadError(
            f"the Ray dashboard answered GET {path} with HTTP {found.status_code}: {found.text.strip()[:500]}"
        )
    return f"gcs://{name}"


def with_py_module(runtime_env: dict[str, Any], uri: str) -> dict[str, Any]:
    """``runtime_env`` with ``uri`` first in its ``py_modules`` (the user's entries kept)."""
    modules = list(runtime_env.get("py_modules") or [])
    return {**runtime_env, "py_modules": [uri, *[m for m in modules if m != uri]]}


def with_pip_requirements(runtime_env: dict[str, Any], requirements: list[str]) -> dict[str, Any]:
    """``runtime_env`` with ``requirements`` added to its ``pip`` (a list, or ``{"packages": [...]}``)."""
    pip = runtime_env.get("pip")
    if pip is None:
        return {**runtime_env, "pip": list(requirements)}
    if isinstance(pip, list):
        return {**runtime_env, "pip": [*pip, *[r for r in requirements if r not in pip]]}
    if isinstance(pip, dict) and isinstance(pip.get("packages"), list):
        packages = pip["packages"]
        merged = [*packages, *[r for r in requirements if r not in packages]]
        return {**runtime_env, "pip": {**pip, "packages": merged}}
    raise ValueError(
        "RayExecutor runtime_env.pip: runner_dependencies='pip' adds the runner's requirements to a "
        f"list of requirements or to {{'packages': [...]}}, not to {type(pip).__name__} {pip!r:.80}"
    )
