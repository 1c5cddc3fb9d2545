"""A TCP forwarder that a test can close and reopen: a network outage between a client and a service."""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    """A tiny TCP forwarder on 127.0.0.1 that can be closed (dropping every open connection) and
    reopened on the same port: a service outage (Ray's dashboard, an S3 server) as a client sees
    it, while the service itself keeps its state. It runs on the loop that opened it."""

    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.target_port = target_port
        self.host = host
        self.port = 0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and drop every open connection (keep-alive ones included)."""
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        up_writer: asyncio.StreamWriter | None = None
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

            async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
                with contextlib.suppress(ConnectionError, OSError):
                    while data := await src.read(65536):
                        dst.write(data)
                        await dst.drain()
                dst.close()

            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except (asyncio.CancelledError, OSError):
            pass  # closed by close(): the connection just drops
        finally:
            for w in (writer, up_writer):
                if w is not None:
                    w.close()
            self._connections.discard(task)
