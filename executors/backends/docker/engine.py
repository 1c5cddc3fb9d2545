"""The Docker Engine API, as the container executor uses it: :class:`EngineClient`.

One ``httpx.AsyncClient`` per executor instance talks to the engine over a unix socket
(``unix:///run/docker.sock``) or TCP (``tcp://host:2375``, ``http(s)://...``). The same calls serve
Docker and Podman's Docker-compatible service (``podman system service``); where the two answer
differently (a duplicate container name is HTTP 409 from Docker and 500 from Podman 4) the client
reads both. Nothing here blocks the event loop.

Errors: trouble reaching the engine (connection refused, a socket that is gone, a timeout, HTTP
5xx that is not an answer about the request) is :class:`EngineUnreachable`, which the executor
reports as UNKNOWN; an answer about the request (404, 409, 400, ...) is :class:`EngineError` with
the engine's own message.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

API_VERSION = "v1.41"
"""The Engine API version spoken: Docker 20.10+ and Podman 4's compatible service both serve it."""

DEFAULT_SOCKET = "/var/run/docker.sock"


class EngineUnreachable(Exception):
    """The engine could not be asked (down, unreachable, too slow); try again later."""


class EngineError(Exception):
    """The engine answered, and refused."""

    def __init__(self, status_code: int, message: str, *, what: str) -> None:
        super().__init__(f"{what}: HTTP {status_code}: {message}")
        self.status_code = status_code
        self.message = message


def resolve_address(address: str | None) -> str:
    """The engine's address: ``address``, else ``$DOCKER_HOST`` (as every Docker client reads
    it), else the default socket, as ``unix:///path``, ``tcp://host:port`` or an http(s) URL.
    A plain path is a unix socket."""
    text = (address or os.environ.get("DOCKER_HOST") or "").strip() or f"unix://{DEFAULT_SOCKET}"
    if text.startswith("/"):
        text = "unix://" + text
    scheme = text.split("://", 1)[0] if "://" in text else ""
    if scheme not in ("unix", "tcp", "http", "https"):
        raise ValueError(
            f"container engine address {text!r}: expected unix:///path/to/socket, tcp://host:port "
            "or an http(s) URL"
        )
    if scheme == "unix" and not text[len("unix://") :].startswith("/"):
        raise ValueError(f"container engine address {text!r}: a unix socket needs an absolute path")
    return text


def _transport_and_base(address: str) -> tuple[httpx.AsyncHTTPTransport, str]:
    if address.startswith("unix://"):
        # Any host name will do over a unix socket; "docker" reads well in error messages.
        return httpx.AsyncHTTPTransport(uds=address[len("unix://") :]), "http://docker"
    if address.startswith("tcp://"):
        return httpx.AsyncHTTPTransport(), "http://" + address[len("tcp://") :]
    return httpx.AsyncHTTPTransport(), address


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:1000] or response.reason_phrase
    if isinstance(body, Mapping):
        return str(body.get("message") or body.get("cause") or body)[:1000]
    return str(body)[:1000]


class EngineClient:
    """The Engine API calls the container executor makes (see the module docstring)."""

    def __init__(self, address: str, *, timeout: float) -> None:
        self.address = address
        self.timeout = timeout
        transport, base = _transport_and_base(address)
        self._client = httpx.AsyncClient(
            transport=transport, base_url=f"{base.rstrip('/')}/{API_VERSION}", timeout=httpx.Timeout(timeout)
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(self, method: str, path: str, *, what: str, **kwargs: Any) -> httpx.Response:
        """One request; :class:`EngineUnreachable` when the engine cannot be asked."""
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise EngineUnreachable(
                f"{what}: the container engine at {self.address} did not answer within {self.timeout:g}s"
            ) from exc
        except httpx.TransportError as exc:
            raise EngineUnreachable(
                f"{what}: the container engine at {self.address} cannot be reached "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        return response

    def _raise_for(self, response: httpx.Response, what: str) -> None:
        if response.is_success or response.status_code == 304:
            return
        message = _message(response)
        if _engine_failed(response):
            raise EngineUnreachable(f"{what}: the container engine at {self.address} failed: {message}")
        raise EngineError(response.status_code, message, what=what)

    # -- containers ------------------------------------------------------------------------------

    async def create_container(self, name: str, body: Mapping[str, Any]) -> str:
        """Create ``name``; its id. :class:`EngineError` 409 when the name is taken."""
        what = f"creating container {name}"
        response = await self.request(
            "POST", "/containers/create", what=what, params={"name": name}, json=body
        )
        if response.status_code == 500 and "already in use" in response.text:
            raise EngineError(409, _message(response), what=what)  # Podman 4 says 500
        self._raise_for(response, what)
        return str(response.json()["Id"])

    async def start_container(self, name: str) -> None:
        """Start it; starting a running or finished container again is not an error (HTTP 304)."""
        what = f"starting container {name}"
        self._raise_for(await self.request("POST", f"/containers/{_q(name)}/start", what=what), what)

    async def inspect_container(self, name: str) -> dict[str, Any] | None:
        """``GET /containers/{name}/json``, or ``None`` when there is no such container."""
        what = f"inspecting container {name}"
        response = await self.request("GET", f"/containers/{_q(name)}/json", what=what)
        if response.status_code == 404:
            return None
        self._raise_for(response, what)
        info = response.json()
        if not isinstance(info, dict):
            raise EngineUnreachable(f"{what}: the engine answered no JSON object")
        return info

    async def stop_container(self, name: str, grace_seconds: int) -> None:
        """SIGTERM, then SIGKILL after ``grace_seconds``. A container that is gone or already
        stopped is fine."""
        what = f"stopping container {name}"
        response = await self.request(
            "POST",
            f"/containers/{_q(name)}/stop",
            what=what,
            params={"t": grace_seconds},
            timeout=self.timeout + grace_seconds,
        )
        if response.status_code in (304, 404):
            return
        self._raise_for(response, what)

    async def remove_container(self, name: str) -> None:
        """Remove it (forced: a running one is killed). A container that is gone is fine."""
        what = f"removing container {name}"
        response = await self.request(
            "DELETE", f"/containers/{_q(name)}", what=what, params={"force": "true"}
        )
        if response.status_code == 404:
            return
        if response.status_code == 409 and "in progress" in response.text:
            return  # another caller is removing it
        self._raise_for(response, what)

    async def list_containers(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """Every container (running or not) carrying all of ``labels``."""
        filters = json.dumps({"label": [f"{k}={v}" for k, v in labels.items()]})
        what = "listing containers"
        response = await self.request(
            "GET", "/containers/json", what=what, params={"all": "true", "filters": filters}
        )
        self._raise_for(response, what)
        return list(response.json() or [])

    async def logs(self, name: str, params: Mapping[str, Any]) -> AsyncIterator[bytes]:
        """The container's log stream (multiplexed frames, see :mod:`.logs`), as it arrives."""
        what = f"reading the logs of container {name}"
        query = {"stdout": "true", "stderr": "true", **params}
        try:
            async with self._client.stream("GET", f"/containers/{_q(name)}/logs", params=query) as response:
                if response.status_code == 404:
                    return
                if not response.is_success:
                    await response.aread()
                    self._raise_for(response, what)
                async for data in response.aiter_raw():
                    yield data
        except httpx.TimeoutException as exc:
            raise EngineUnreachable(f"{what}: no answer within {self.timeout:g}s") from exc
        except httpx.TransportError as exc:
            raise EngineUnreachable(f"{what}: {type(exc).__name__}: {exc}") from exc

    # -- images ----------------------------------------------------------------------------------

    async def image_exists(self, image: str) -> bool:
        what = f"looking up image {image}"
        response = await self.request("GET", f"/images/{_q(image, safe='/:@')}/json", what=what)
        if response.status_code == 404:
            return False
        self._raise_for(response, what)
        return True

    async def pull_image(self, image: str, *, within: float) -> str | None:
        """Pull ``image``; ``None`` when it worked, else the engine's reason. The engine answers a
        pull with a stream of JSON progress lines, and a failure is one of them (HTTP 200)."""
        name, tag = split_image(image)
        what = f"pulling image {image}"
        params = {"fromImage": name, **({"tag": tag} if tag else {})}
        try:
            async with self._client.stream(
                "POST", "/images/create", params=params, timeout=httpx.Timeout(within)
            ) as response:
                if not response.is_success:
                    await response.aread()
                    if _engine_failed(response):
                        raise EngineUnreachable(f"{what}: {_message(response)}")
                    return _message(response)
                async for line in response.aiter_lines():
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(event, Mapping) and event.get("error"):
                        return str(event.get("error"))[:1000]
        except httpx.TimeoutException as exc:
            raise EngineUnreachable(f"{what}: not done within {within:g}s") from exc
        except httpx.TransportError as exc:
            raise EngineUnreachable(f"{what}: {type(exc).__name__}: {exc}") from exc
        return None

    async def version(self) -> dict[str, Any]:
        what = "asking the engine's version"
        response = await self.request("GET", "/version", what=what)
        self._raise_for(response, what)
        return dict(response.json())


def split_image(image: str) -> tuple[str, str]:
    """``"repo/name:tag"`` -> (``"repo/name"``, ``"tag"``); a digest stays whole; no tag -> ``""``."""
    if "@" in image:
        return image, ""
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = image.rsplit(":", 1)
        return name, tag
    return image, ""


def _q(name: str, safe: str = "") -> str:
    return urllib.parse.quote(name, safe=safe)


def _engine_failed(response: httpx.Response) -> bool:
    """Whether an error status is the engine (or a proxy before it) failing, rather than its answer
    about the request. Podman 4 answers many refusals with HTTP 500 and a JSON ``message`` (a bad
    mount, an unknown image, a name in use): those are answers. A gateway error (502-504), or a
    5xx without the engine's JSON body, is the engine being away."""
    if response.status_code < 500:
        return False
    if response.status_code in (502, 503, 504):
        return True
    try:
        body = response.json()
    except ValueError:
        return True
    return not (isinstance(body, Mapping) and body.get("message"))
