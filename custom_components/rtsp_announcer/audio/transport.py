"""PCM transports from the event loop to ffmpeg: socket, FIFO or stdin.

A unix socket, a named pipe (FIFO), or ffmpeg's standard input. All end in an
asyncio write transport, which never blocks. ffmpeg reads its input at the
real-time rate, so the audio the clock writes ahead waits in the kernel buffer:
it is sized to hold that lead and no more (`kernel_buffer_bytes`), so that
writes never wait in user space for the loop to be woken again, and
back-pressure from a slow or hung ffmpeg soon shows up in the transport's own
buffer, where the clock sees it and drops frames instead of queueing without
bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import io
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Protocol

from .exceptions import TransportError
from .models import BYTES_PER_SAMPLE, StreamSettings
from .tasks import cancel_and_wait

_LOGGER = logging.getLogger(__name__)

# Linux's F_SETPIPE_SZ; the fcntl module only names it from Python 3.10 on some builds.
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
SOCKET_NAME = "pcm.sock"
FIFO_NAME = "pcm.fifo"
# How often the FIFO's writer looks for a reading ffmpeg while none has it
# open: at most this much is added to an ffmpeg start (~0.9 s anyway).
FIFO_POLL_INTERVAL = 0.02
# After an unexpected error opening the FIFO: retry, but without spinning.
_FIFO_ERROR_INTERVAL = 1.0


class PcmFeed(Protocol):
    """A transport ffmpeg opens by name: started before it, stopped after it."""

    @property
    def path(self) -> Path:
        """Where the transport lives, inside a private directory."""

    @property
    def input_spec(self) -> str:
        """Ffmpeg's name for the transport."""

    async def start(self) -> None:
        """Create the transport; raises TransportError."""

    async def stop(self) -> None:
        """Close the transport and remove its directory."""


async def _private_dir() -> Path:
    """A new directory only this user may enter (mode 0700)."""
    loop = asyncio.get_running_loop()
    return Path(
        await loop.run_in_executor(
            None, lambda: tempfile.mkdtemp(prefix="rtsp_announcer-")
        )
    )


async def _remove_dir(directory: Path) -> None:
    await asyncio.get_running_loop().run_in_executor(
        None, lambda: shutil.rmtree(directory, ignore_errors=True)
    )


# Room in the kernel for the bookkeeping of each write (a socket counts it
# against its buffer) and for the reads of ffmpeg in flight.
_KERNEL_SLACK = 16384


def kernel_buffer_bytes(settings: StreamSettings) -> int:
    """Kernel buffer for the audio written ahead: the lead, an idle block, a frame."""
    ahead_ms = settings.lead_ms + settings.idle_block_ms + settings.frame_ms
    ahead = settings.sample_rate * ahead_ms // 1000 * BYTES_PER_SAMPLE
    return 2 * ahead + _KERNEL_SLACK


class TransportSink:
    """Writes frames to whichever transport currently feeds ffmpeg."""

    def __init__(self, *, max_buffer_bytes: int) -> None:
        """Bound what may wait in user space when ffmpeg reads too slowly."""
        self._transport: asyncio.WriteTransport | None = None
        self._max_buffer = max_buffer_bytes
        # Bytes written over every connection, and their count when the current
        # one was attached: where a reader's time zero lies (a second input
        # paced by this one, the screen's frames, keeps to it).
        self.total_bytes = 0
        self.attached_bytes = 0
        self.on_write: Callable[[], None] | None = None
        self.on_attach: Callable[[], None] | None = None

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
            self.total_bytes += len(frame)
            if self.on_write is not None:
                self.on_write()

    def attach(self, transport: asyncio.WriteTransport) -> None:
        """Feed a new ffmpeg; a previous connection is dropped."""
        previous, self._transport = self._transport, transport
        if previous is not None and previous is not transport:
            previous.abort()
        self.attached_bytes = self.total_bytes
        if self.on_attach is not None:
            self.on_attach()

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


class _PrivateFileFeed:
    """A feed that ffmpeg opens as one named file in a private directory.

    The directory is created with mode 0700, so no other local user can reach
    the file and inject audio into the stream.
    """

    _file_name: ClassVar[str]
    # ffmpeg's protocol for the file, named so that no other one is guessed.
    _protocol: ClassVar[str]
    # What the feed is called in an error.
    _kind: ClassVar[str]

    def __init__(self, sink: TransportSink) -> None:
        self.sink = sink
        self._dir: Path | None = None

    @property
    def path(self) -> Path:
        """The file's path."""
        if self._dir is None:
            msg = f"the {self._kind} feed is not started"
            raise TransportError(msg)
        return self._dir / self._file_name

    @property
    def input_spec(self) -> str:
        """Ffmpeg's name for the file."""
        return f"{self._protocol}:{self.path}"

    async def _make_dir(self) -> Path:
        """Create the private directory; returns the path the file is to take."""
        self._dir = await _private_dir()
        return self._dir / self._file_name

    async def _drop_dir(self) -> None:
        directory, self._dir = self._dir, None
        if directory is not None:
            await _remove_dir(directory)


class UnixSocketFeed(_PrivateFileFeed):
    """A unix socket in a private directory that ffmpeg connects to."""

    _file_name = SOCKET_NAME
    _protocol = "unix"
    _kind = "socket"

    def __init__(self, sink: TransportSink, *, sndbuf: int) -> None:
        """Prepare a feed for `sink`; `start()` creates the socket."""
        super().__init__(sink)
        self.sndbuf = sndbuf
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Create the private directory and listen on the socket."""
        loop = asyncio.get_running_loop()
        try:
            path = await self._make_dir()
            self._server = await loop.create_unix_server(
                lambda: _FeedProtocol(self), str(path), backlog=1
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
        await self._drop_dir()


class _FifoProtocol(asyncio.Protocol):
    """The write end of the FIFO: reports when ffmpeg's read end is gone."""

    def __init__(self) -> None:
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        # EPIPE on a write, or the read end closing (the pipe transport
        # watches for it), whichever comes first: ffmpeg exited.
        if not self.lost.done():
            self.lost.set_result(None)


class FifoFeed(_PrivateFileFeed):
    """A named pipe (FIFO) in a private directory that ffmpeg reads from.

    ffmpeg opens the FIFO for reading and blocks there until a writer opens
    it. The writer opens it non-blocking: while no ffmpeg reads it that fails
    with ENXIO, and the feed tries again every `poll_interval`; once open, it
    feeds the sink through a non-blocking pipe transport (EAGAIN leaves the
    rest in the transport's buffer, which the clock watches) until ffmpeg goes
    away (EPIPE or the read end closing), then waits for the next ffmpeg.
    Nothing ever blocks the event loop, and each ffmpeg restart is met by a
    new open. The directory (mode 0700) and the FIFO (0600) keep other local
    users from writing to it.
    """

    _file_name = FIFO_NAME
    _protocol = "file"
    _kind = "FIFO"

    def __init__(
        self,
        sink: TransportSink,
        *,
        pipe_size: int,
        poll_interval: float = FIFO_POLL_INTERVAL,
    ) -> None:
        """Prepare a feed for `sink`; `start()` creates the FIFO."""
        super().__init__(sink)
        self.pipe_size = pipe_size
        self._poll = poll_interval
        self._task: asyncio.Task[None] | None = None
        self._transport: asyncio.WriteTransport | None = None
        self.connections = 0

    @property
    def connected(self) -> bool:
        """Whether an ffmpeg has the FIFO open and is being fed."""
        transport = self._transport
        return transport is not None and not transport.is_closing()

    async def start(self) -> None:
        """Create the private directory and the FIFO, and wait for readers."""
        loop = asyncio.get_running_loop()
        try:
            path = await self._make_dir()
            await loop.run_in_executor(None, os.mkfifo, path, 0o600)
        except OSError as err:
            await self.stop()
            msg = f"cannot create a named pipe: {err}"
            raise TransportError(msg) from err
        self._task = loop.create_task(self._serve(path), name=f"fifo {path}")

    async def stop(self) -> None:
        """Stop feeding, close the FIFO and remove its directory."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        await self._drop_dir()

    async def _serve(self, path: Path) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as err:
                if err.errno != errno.ENXIO:
                    # Not "no reader yet": the FIFO is gone or unusable. ffmpeg
                    # cannot open it either and the supervisor reports that.
                    _LOGGER.debug("Cannot open %s: %s", path, err)
                    await asyncio.sleep(_FIFO_ERROR_INTERVAL)
                    continue
                await asyncio.sleep(self._poll)
                continue
            try:
                await self._feed(loop, io.FileIO(fd, "wb", closefd=True))
            except Exception:
                # The stream must outlive a fault here: the next ffmpeg gets
                # a fresh open.
                _LOGGER.exception(
                    "Feeding %s failed; waiting for the next reader", path
                )
                await asyncio.sleep(_FIFO_ERROR_INTERVAL)

    async def _feed(self, loop: asyncio.AbstractEventLoop, pipe: io.FileIO) -> None:
        """Feed one ffmpeg until it goes away."""
        try:
            transport, protocol = await loop.connect_write_pipe(_FifoProtocol, pipe)
        except BaseException:
            pipe.close()
            raise
        assert isinstance(transport, asyncio.WriteTransport)  # noqa: S101
        self._transport = transport
        self.connections += 1
        shrink_pipe(transport, self.pipe_size)
        self.sink.attach(transport)
        try:
            await protocol.lost
        finally:
            self.sink.detach(transport)
            self._transport = None
            # Closing our end frees what the dead ffmpeg left unread in the
            # pipe, so the next one starts with fresh audio. A transport that
            # reported its loss is closed already (and cannot be aborted).
            if not transport.is_closing():
                transport.abort()
