"""PCM transports from the event loop to ffmpeg: a unix socket or ffmpeg's stdin.

Both end in an asyncio write transport, which never blocks. ffmpeg reads its
input at the real-time rate, so the audio the clock writes ahead waits in the
kernel buffer: it is sized to hold that lead and no more (`kernel_buffer_bytes`),
so that writes never wait in user space for the loop to be woken again, and
back-pressure from a slow or hung ffmpeg soon shows up in the transport's own
buffer, where the clock sees it and drops frames instead of queueing without
bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import shutil
import socket
import tempfile
from pathlib import Path

from .clock import DEFAULT_IDLE_BLOCK_MS
from .exceptions import TransportError
from .models import BYTES_PER_SAMPLE, StreamSettings

_LOGGER = logging.getLogger(__name__)

# Linux's F_SETPIPE_SZ; the fcntl module only names it from Python 3.10 on some builds.
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
SOCKET_NAME = "pcm.sock"
# Room in the kernel for the bookkeeping of each write (a socket counts it
# against its buffer) and for the reads of ffmpeg in flight.
_KERNEL_SLACK = 16384


def kernel_buffer_bytes(settings: StreamSettings) -> int:
    """Kernel buffer for the audio written ahead: the lead, an idle block, a frame."""
    ahead_ms = settings.lead_ms + DEFAULT_IDLE_BLOCK_MS + settings.frame_ms
    ahead = settings.sample_rate * ahead_ms // 1000 * BYTES_PER_SAMPLE
    return 2 * ahead + _KERNEL_SLACK


class TransportSink:
    """Writes frames to whichever transport currently feeds ffmpeg."""

    def __init__(self, *, max_buffer_bytes: int) -> None:
        """Bound what may wait in user space when ffmpeg reads too slowly."""
        self._transport: asyncio.WriteTransport | None = None
        self._max_buffer = max_buffer_bytes

    @property
    def connected(self) -> bool:
        """Whether an ffmpeg process is attached and readable."""
        transport = self._transport
        return transport is not None and not transport.is_closing()

    @property
    def buffered_bytes(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        transport = self._transport
        return 0 if transport is None else transport.get_write_buffer_size()

    def can_accept(self, nbytes: int) -> bool:
        """Whether `nbytes` more stay within the buffer bound."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return False
        return transport.get_write_buffer_size() + nbytes <= self._max_buffer

    def write(self, frame: bytes) -> None:
        """Hand a frame to the transport; it sends what it can at once."""
        if self._transport is not None:
            self._transport.write(frame)

    def attach(self, transport: asyncio.WriteTransport) -> None:
        """Feed a new ffmpeg; a previous connection is dropped."""
        previous, self._transport = self._transport, transport
        if previous is not None and previous is not transport:
            previous.abort()

    def detach(self, transport: asyncio.WriteTransport | None = None) -> None:
        """Forget the transport (only if it is still the given one)."""
        if transport is None or transport is self._transport:
            self._transport = None


def shrink_pipe(transport: asyncio.WriteTransport, size: int) -> None:
    """Make a pipe's kernel buffer small so back-pressure reaches the transport."""
    pipe = transport.get_extra_info("pipe")
    if pipe is None:
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(pipe.fileno(), _F_SETPIPE_SZ, size)


class _FeedProtocol(asyncio.Protocol):
    """One ffmpeg connected to the socket."""

    def __init__(self, feed: UnixSocketFeed) -> None:
        self._feed = feed
        self._transport: asyncio.WriteTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)  # noqa: S101
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self._feed.sndbuf)
        self._feed.sink.attach(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._feed.sink.detach(self._transport)
            self._transport = None

    def data_received(self, data: bytes) -> None:
        """Ignore anything ffmpeg sends back."""


class UnixSocketFeed:
    """A unix socket in a private directory that ffmpeg connects to.

    The directory is created with mode 0700, so no other local user can
    connect and inject audio into the stream.
    """

    def __init__(self, sink: TransportSink, *, sndbuf: int) -> None:
        """Prepare a feed for `sink`; `start()` creates the socket."""
        self.sink = sink
        self.sndbuf = sndbuf
        self._dir: Path | None = None
        self._server: asyncio.Server | None = None

    @property
    def path(self) -> Path:
        """The socket's path."""
        if self._dir is None:
            msg = "the socket feed is not started"
            raise TransportError(msg)
        return self._dir / SOCKET_NAME

    @property
    def input_spec(self) -> str:
        """Ffmpeg's name for the socket."""
        return f"unix:{self.path}"

    async def start(self) -> None:
        """Create the private directory and listen on the socket."""
        loop = asyncio.get_running_loop()
        try:
            self._dir = Path(
                await loop.run_in_executor(
                    None, lambda: tempfile.mkdtemp(prefix="rtsp_announcer-")
                )
            )
            self._server = await loop.create_unix_server(
                lambda: _FeedProtocol(self), str(self._dir / SOCKET_NAME), backlog=1
            )
        except OSError as err:
            await self.stop()
            msg = f"cannot listen on a unix socket: {err}"
            raise TransportError(msg) from err

    async def stop(self) -> None:
        """Close the connection and the socket and remove the directory."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            server.close_clients()
            await server.wait_closed()
        directory, self._dir = self._dir, None
        if directory is not None:
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: shutil.rmtree(directory, ignore_errors=True)
            )
