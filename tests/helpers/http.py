"""Small TCP and HTTP servers on 127.0.0.1 for the media decoder's tests.

Everything runs on the test's event loop (asyncio streams, no thread), so a test
that starts ffmpeg against a server needs nothing else. Each path of `HttpServer`
answers one way: a body (at once, or trickled, or cut off and then silent), a
redirect, or an error status. Every request line is recorded, so a test can also
prove that a server was never asked. `SilentServer` accepts connections and never
says a word.

Python sockets are blocked by the Home Assistant test plugin: tests that use these
servers need the `socket_enabled` fixture. Stopping a server cancels its connection
handlers and closes every connection, so no task outlives `stop()`.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Final

from .rtsp.ports import HOST
from .service import Service

_REASONS: Final = {
    200: "OK",
    301: "Moved Permanently",
    302: "Found",
    404: "Not Found",
    500: "Internal Server Error",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """How a path answers.

    Attributes:
        status: HTTP status code.
        body: The body; `Content-Length` says its full length.
        headers: Extra response headers (`Location` for a redirect).
        send_first: Bytes of the body sent at once; None sends it all.
        trickle: After `send_first`, bytes sent per `every` seconds (0: none, the
            body stalls and the connection stays open).
        every: Seconds between two trickled pieces.
    """

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    send_first: int | None = None
    trickle: int = 0
    every: float = 0.1


class _Server(Service):
    """A listening socket on 127.0.0.1 whose handlers `stop()` ends."""

    def __init__(self) -> None:
        self.port = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_connect, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for handler in self._handlers:
            handler.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _on_connect(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        self.connections += 1
        try:
            await self.handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        raise NotImplementedError


class SilentServer(_Server):
    """Accepts TCP connections and never answers (nor closes them)."""

    async def handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await asyncio.Event().wait()


class LineServer(_Server):
    """Greets with `banner` and records every line a client sends (an FTP server's
    first words, say)."""

    def __init__(self, banner: bytes = b"220 ready\r\n") -> None:
        super().__init__()
        self.banner = banner
        self.lines: list[bytes] = []

    async def handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        writer.write(self.banner)
        await writer.drain()
        while line := await reader.readline():
            self.lines.append(line)


class HttpServer(_Server):
    """An HTTP/1.1 server whose paths answer as set with `route`; 404 elsewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[str] = []
        self._routes: dict[str, Reply] = {}

    def url(self, path: str, *, userinfo: str = "") -> str:
        """Return the URL of `path` on this server (`userinfo` with its `@`)."""
        return f"http://{userinfo}{HOST}:{self.port}{path}"

    def route(self, path: str, reply: Reply) -> str:
        """Answer `path` (without query) with `reply`; return its URL."""
        self._routes[path] = reply
        return self.url(path)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        """Answer `path` with a redirect to `location`; return its URL."""
        return self.route(path, Reply(status=status, headers={"Location": location}))

    @property
    def paths(self) -> list[str]:
        """The paths (without query) requested so far, in order."""
        return [request.split()[1].partition("?")[0] for request in self.requests]

    async def handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        request = (await reader.readline()).decode("latin-1").strip()
        if not request:
            return
        self.requests.append(request)
        while (await reader.readline()).strip():
            pass  # the request headers
        parts = request.split()
        path = parts[1].partition("?")[0] if len(parts) > 1 else "/"
        reply = self._routes.get(path, Reply(status=404, body=b"not here\n"))
        head = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}"]
        head += [f"{name}: {value}" for name, value in reply.headers.items()]
        head += [f"Content-Length: {len(reply.body)}", "Connection: close", "", ""]
        writer.write("\r\n".join(head).encode("latin-1"))
        first = len(reply.body) if reply.send_first is None else reply.send_first
        writer.write(reply.body[:first])
        await writer.drain()
        if first >= len(reply.body):
            return
        if reply.trickle <= 0:
            await asyncio.Event().wait()
        for start in range(first, len(reply.body), reply.trickle):
            await asyncio.sleep(reply.every)
            writer.write(reply.body[start : start + reply.trickle])
            await writer.drain()


async def closed_port() -> int:
    """Return a port on 127.0.0.1 where nothing listens (it just stopped)."""
    server = await asyncio.start_server(lambda _r, _w: None, HOST, 0)
    port: int = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    return port
