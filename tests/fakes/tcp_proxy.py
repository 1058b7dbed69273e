"""An asyncio TCP proxy in front of a real server, for simulating network outages.

``cut()`` closes every proxied connection and stops listening, so new
connections are refused; ``restore()`` listens again on the same port.
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target_host:target_port`` byte for byte."""

    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.host = host
        self.port = 0
        self.accepted = 0
        self.cuts = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task[None]] = set()

    @property
    def is_cut(self) -> bool:
        return self._server is None

    @property
    def open_connections(self) -> int:
        return len(self._writers) // 2

    async def start(self) -> None:
        """Listen on ``host`` (port 0 the first time: read ``port`` afterwards)."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def restore(self) -> None:
        """Accept connections again on the same port after a ``cut()``."""
        await self.start()

    async def cut(self) -> None:
        """Refuse new connections and abort every open one."""
        self.cuts += 1
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        for pump in list(self._pumps):
            pump.cancel()
        if self._pumps:
            await asyncio.wait(set(self._pumps))
        if server is not None:
            await server.wait_closed()

    async def close(self) -> None:
        await self.cut()

    async def __aenter__(self) -> TcpProxy:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _handle(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        if self._server is None:
            client_writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                self.target_host, self.target_port
            )
        except OSError:
            client_writer.transport.abort()
            return
        self.accepted += 1
        pair = (client_writer, upstream_writer)
        self._writers.update(pair)
        pumps = [
            asyncio.create_task(self._pump(client_reader, upstream_writer, pair)),
            asyncio.create_task(self._pump(upstream_reader, client_writer, pair)),
        ]
        self._pumps.update(pumps)
        for pump in pumps:
            pump.add_done_callback(self._pumps.discard)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
    ) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for end in pair:
                self._writers.discard(end)
                end.transport.abort()
