"""Scripted RTSP peers: asyncio servers that answer each request as a test wants.

They speak just enough RTSP for a publisher to get its answers (CSeq echoed,
bodies read past); `StatusServer` answers every request with one status.
Python sockets: tests using them need the `socket_enabled` fixture.
"""

from __future__ import annotations

import asyncio

from tests.helpers.service import Service

from .ports import HOST


class ScriptedServer(Service):
    """An RTSP server on 127.0.0.1; `answer()` says what each request gets."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        """The TCP port it listens on."""
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def answer(self, method: str, fields: dict[str, str]) -> str:
        """Return the response to a request: status line on, without the blank end.

        Args:
            method: the request's method (OPTIONS, ANNOUNCE, SETUP, ...).
            fields: its header fields, names in lower case.
        """
        raise NotImplementedError

    async def start(self, port: int = 0) -> None:
        """Listen on `port` (0: any free one)."""
        self._server = await asyncio.start_server(self._serve, HOST, port)

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._writers):
            writer.close()
        await server.wait_closed()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._writers.add(writer)
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                lines = head.decode(errors="replace").split("\r\n")
                method = lines[0].split(" ", 1)[0]
                fields = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in lines[1:])
                }
                if length := int(fields.get("content-length", "0")):
                    await reader.readexactly(length)
                writer.write(f"RTSP/1.0 {self.answer(method, fields)}\r\n\r\n".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


class StatusServer(ScriptedServer):
    """An RTSP peer that answers every request with one status, CSeq echoed.

    OPTIONS gets "200 OK" unless `options_too`, as a server whose refusal is
    about the path or the user (ANNOUNCE) rather than about the client.
    """

    def __init__(self, status: str, *, options_too: bool = False) -> None:
        super().__init__()
        self.status = status
        self.options_too = options_too
        self.requests: list[str] = []

    def url(self, userinfo: str = "") -> str:
        """The URL to publish to, with `userinfo` (ending in "@") if given."""
        return f"rtsp://{userinfo}{HOST}:{self.port}/announce"

    def answer(self, method: str, fields: dict[str, str]) -> str:
        self.requests.append(method)
        cseq = fields.get("cseq", "0")
        if method == "OPTIONS" and not self.options_too:
            status = "200 OK\r\nPublic: ANNOUNCE, SETUP, RECORD, TEARDOWN"
        else:
            status = self.status
        return f"{status}\r\nCSeq: {cseq}"
