"""How PCM reaches ffmpeg: the sink, ffmpeg's stdin pipe, the private socket and FIFO.

Pipes, sockets and ffmpeg are real; nothing is mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import io
import os
import signal
import socket
import stat
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from unittest.mock import patch

import numpy as np
import pytest

from custom_components.rtsp_announcer.audio.exceptions import TransportError
from custom_components.rtsp_announcer.audio.ffmpeg import publisher_args
from custom_components.rtsp_announcer.audio.models import StreamSettings
from custom_components.rtsp_announcer.audio.options import Codec
from custom_components.rtsp_announcer.audio.transport import (
    FifoFeed,
    PcmFeed,
    TransportSink,
    UnixSocketFeed,
    shrink_pipe,
)
from tests.helpers.analysis import dominant_frequency
from tests.helpers.rtsp import ListenReceiver, dies_with_parent, s16le_mono
from tests.helpers.waiting import until

TRANSPORT = "custom_components.rtsp_announcer.audio.transport"
RATE = 24000
PAGE = 4096
DEADLINE_S = 10.0


def connected(sink: TransportSink) -> bool:
    """Read afresh (it changes behind mypy's narrowing)."""
    return sink.connected


def tone(seconds: float, freq: float = 440.0) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.5 * 32767 * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


@contextlib.asynccontextmanager
async def write_pipe() -> AsyncIterator[tuple[asyncio.WriteTransport, int]]:
    """An asyncio transport writing into a pipe nobody reads until told to."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_write_pipe(
        asyncio.Protocol, os.fdopen(write_fd, "wb", buffering=0)
    )
    assert isinstance(transport, asyncio.WriteTransport)
    try:
        yield transport, read_fd
    finally:
        if not transport.is_closing():
            transport.abort()
        os.close(read_fd)


def read_all(fd: int) -> bytes:
    data = bytearray()
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(fd, 65536):
            data += chunk
    return bytes(data)


def test_a_sink_without_ffmpeg_takes_nothing() -> None:
    sink = TransportSink(max_buffer_bytes=1000)
    assert not sink.connected
    assert sink.buffered_bytes == 0
    assert not sink.can_accept(1)
    # The clock keeps ticking while ffmpeg restarts: its frames go nowhere.
    sink.write(b"\x00\x01")
    sink.detach()
    assert not sink.connected


async def test_back_pressure_from_a_slow_ffmpeg_reaches_the_sink() -> None:
    sink = TransportSink(max_buffer_bytes=4000)
    async with write_pipe() as (transport, read_fd):
        # What a publisher asks for: 60 ms of lead at 24 kHz.
        shrink_pipe(transport, 2880)
        # The kernel rounds up to a page: the smallest a pipe can be.
        assert fcntl.fcntl(read_fd, fcntl.F_GETPIPE_SZ) == PAGE
        sink.attach(transport)
        assert connected(sink)
        sink.write(b"a" * PAGE)
        assert sink.buffered_bytes == 0
        # ffmpeg reads nothing: what follows waits in the transport, in sight.
        sink.write(b"b" * 3000)
        assert sink.buffered_bytes == 3000
        assert sink.can_accept(1000)
        assert not sink.can_accept(1001)
        # ffmpeg catches up: the transport flushes by itself.
        assert read_all(read_fd) == b"a" * PAGE
        await until(lambda: sink.buffered_bytes == 0)
        assert read_all(read_fd) == b"b" * 3000
        transport.close()
        assert not connected(sink)
        assert not sink.can_accept(1)


async def test_a_new_ffmpeg_replaces_the_old_one() -> None:
    sink = TransportSink(max_buffer_bytes=PAGE)
    async with write_pipe() as (old, old_fd), write_pipe() as (new, new_fd):
        sink.attach(old)
        sink.attach(new)
        # Only one ffmpeg gets the audio: the old pipe is dropped.
        assert old.is_closing()
        sink.write(b"frame")
        assert read_all(new_fd) == b"frame"
        assert read_all(old_fd) == b""
        # The old publisher's late cleanup leaves the new one attached.
        sink.detach(old)
        assert connected(sink)
        # Attaching the same transport again keeps it open.
        sink.attach(new)
        assert not new.is_closing()
        sink.detach(new)
        assert not connected(sink)


@contextlib.asynccontextmanager
async def socket_reader(feed: PcmFeed) -> AsyncIterator[asyncio.subprocess.Process]:
    """An ffmpeg reading PCM from the feed (socket or FIFO), echoing it on stdout."""
    process = await asyncio.create_subprocess_exec(
        *dies_with_parent(
            [
                "ffmpeg",
                "-hide_banner",
                "-nostdin",
                "-loglevel",
                "error",
                *s16le_mono(RATE),
                "-i",
                feed.input_spec,
                "-f",
                "s16le",
                "pipe:1",
            ]
        ),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.communicate()


async def write_and_close(
    sink: TransportSink,
    feed: PcmFeed,
    ffmpeg: asyncio.subprocess.Process,
    pcm: bytes,
) -> tuple[bytes, bytes]:
    """Write `pcm`, wait until it is out, close the feed: ffmpeg's stdout and stderr."""
    sink.write(pcm)
    await until(lambda: sink.buffered_bytes == 0)
    # Closing the socket or FIFO is the end of ffmpeg's input.
    await feed.stop()
    return await ffmpeg.communicate()


@contextlib.asynccontextmanager
async def started(
    feed: PcmFeed, scheme: str, is_kind: Callable[[int], bool]
) -> AsyncIterator[Path]:
    """The feed started, a file of its kind at its path, which ffmpeg is given as
    `scheme:path`; it has no path before, and once it is stopped its private
    directory is gone."""
    with pytest.raises(TransportError):
        _ = feed.path
    await feed.start()
    path = feed.path
    try:
        assert feed.input_spec == f"{scheme}:{path}"
        assert is_kind(path.stat().st_mode)
        yield path
    finally:
        await feed.stop()
    assert not path.parent.exists()


async def test_ffmpeg_reads_exactly_what_the_socket_carries() -> None:
    sink = TransportSink(max_buffer_bytes=RATE * 2)
    feed = UnixSocketFeed(sink, sndbuf=8192)
    async with started(feed, "unix", stat.S_ISSOCK):
        pcm = tone(0.5)
        async with socket_reader(feed) as ffmpeg, asyncio.timeout(DEADLINE_S):
            await until(lambda: connected(sink))
            server_side = sink._transport
            assert server_side is not None
            sock = server_side.get_extra_info("socket")
            # A small kernel buffer (Linux doubles what is asked for its own
            # bookkeeping), so that a stalled ffmpeg shows up in the sink.
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 2 * 8192
            # A socket is not a pipe: there is nothing to shrink.
            shrink_pipe(server_side, PAGE)
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 2 * 8192
            out, err = await write_and_close(sink, feed, ffmpeg, pcm)
            assert ffmpeg.returncode == 0, err
        assert out == pcm
        assert not connected(sink)
    with pytest.raises(TransportError):
        _ = feed.path


async def test_a_restarted_ffmpeg_takes_over_the_socket() -> None:
    sink = TransportSink(max_buffer_bytes=RATE * 2)
    feed = UnixSocketFeed(sink, sndbuf=8192)
    await feed.start()
    before, after = tone(0.2, freq=300), tone(0.2, freq=600)
    try:
        async with socket_reader(feed) as old, asyncio.timeout(DEADLINE_S):
            await until(lambda: connected(sink))
            old_side = sink._transport
            sink.write(before)
            await until(lambda: sink.buffered_bytes == 0)
            # A new ffmpeg while the old one hangs on: the new one is fed and
            # the old connection is dropped, which ends the old ffmpeg's input.
            async with socket_reader(feed) as new:
                await until(lambda: sink._transport is not old_side)
                old_out, old_err = await old.communicate()
                new_out, new_err = await write_and_close(sink, feed, new, after)
        assert (old.returncode, old_out) == (0, before), old_err
        assert (new.returncode, new_out) == (0, after), new_err
        assert not connected(sink)
    finally:
        await feed.stop()


async def test_an_opus_publisher_fed_through_a_shrunk_pipe_is_heard() -> None:
    async with ListenReceiver(rate=RATE) as receiver:
        settings = StreamSettings(url=receiver.url, codec=Codec.OPUS, sample_rate=RATE)
        argv = publisher_args("ffmpeg", settings, "pipe:0")
        assert argv[argv.index("-c:a") + 1] == "libopus"
        assert argv[argv.index("-frame_duration") + 1] == "20"
        process = await asyncio.create_subprocess_exec(
            *dies_with_parent(argv),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            assert process.stdin is not None
            transport = process.stdin.transport
            assert isinstance(transport, asyncio.WriteTransport)
            shrink_pipe(transport, PAGE)
            sink = TransportSink(max_buffer_bytes=RATE * 4)
            sink.attach(transport)
            sink.write(tone(1.0, freq=500))
            async with asyncio.timeout(DEADLINE_S):
                await until(lambda: sink.buffered_bytes == 0)
                # End of input: ffmpeg flushes the encoder and says goodbye.
                transport.close()
                assert await process.wait() == 0
                session = await receiver.wait_for_session_end(1)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        heard = receiver.session_samples(session)
    assert session.duration_s == pytest.approx(1.0, abs=0.1)
    assert dominant_frequency(heard, RATE) == pytest.approx(500, abs=2)


async def test_ffmpeg_reads_exactly_what_the_fifo_carries() -> None:
    sink = TransportSink(max_buffer_bytes=RATE * 2)
    feed = FifoFeed(sink, pipe_size=2880)
    async with started(feed, "file", stat.S_ISFIFO) as path:
        # Only we may write to it: a private directory, a private FIFO.
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        # No ffmpeg yet: the writer waits for one without blocking the loop.
        await asyncio.sleep(0.1)
        assert not connected(sink)
        assert feed.connections == 0
        pcm = tone(0.5)
        async with socket_reader(feed) as ffmpeg, asyncio.timeout(DEADLINE_S):
            await until(lambda: connected(sink))
            assert feed.connected
            transport = sink._transport
            assert transport is not None
            pipe = transport.get_extra_info("pipe")
            # Shrunk like ffmpeg's stdin, so that a stalled ffmpeg shows up.
            assert fcntl.fcntl(pipe.fileno(), fcntl.F_GETPIPE_SZ) == PAGE
            out, err = await write_and_close(sink, feed, ffmpeg, pcm)
            assert ffmpeg.returncode == 0, err
        assert out == pcm
        assert not connected(sink)


async def test_a_restarted_ffmpeg_reopens_the_fifo() -> None:
    sink = TransportSink(max_buffer_bytes=RATE * 2)
    feed = FifoFeed(sink, pipe_size=PAGE)
    await feed.start()
    after = tone(0.2, freq=600)
    try:
        async with asyncio.timeout(DEADLINE_S):
            async with socket_reader(feed) as old:
                await until(lambda: connected(sink))
                sink.write(tone(0.2, freq=300))
                # ffmpeg dies without a word (a crash, the supervisor's kill).
                old.send_signal(signal.SIGKILL)
                await old.wait()
                # Writing on: EPIPE or the closed read end ends the transport;
                # nothing is raised into the clock.
                for _ in range(50):
                    sink.write(bytes(960))
                    await asyncio.sleep(0.005)
                await until(lambda: not connected(sink))
                assert not feed.connected
            started = time.monotonic()
            async with socket_reader(feed) as new:
                await until(lambda: connected(sink))
                reopened = time.monotonic() - started
                assert feed.connections == 2
                new_out, new_err = await write_and_close(sink, feed, new, after)
        # The new ffmpeg hears the new audio only: the dead one's unread
        # bytes went with the old pipe.
        assert (new.returncode, new_out) == (0, after), new_err
        # ffmpeg's start-up (~50 ms) plus at most one poll interval.
        assert reopened < 2.0, f"reopened after {reopened:.3f} s"
        print(f"FIFO fed a restarted ffmpeg {reopened * 1000:.0f} ms after its start")  # noqa: T201
    finally:
        await feed.stop()


async def test_a_fifo_that_cannot_be_made_leaves_nothing() -> None:
    made: list[Path] = []
    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp(**kwargs: str) -> str:
        directory = real_mkdtemp(**kwargs)
        made.append(Path(directory))
        return directory

    feed = FifoFeed(TransportSink(max_buffer_bytes=PAGE), pipe_size=PAGE)
    with (
        patch(f"{TRANSPORT}.tempfile.mkdtemp", side_effect=mkdtemp),
        patch(f"{TRANSPORT}.os.mkfifo", side_effect=OSError(1, "Not permitted")),
        pytest.raises(TransportError, match="named pipe"),
    ):
        await feed.start()
    (directory,) = made
    assert not directory.exists()
    # Stopping again is harmless.
    await feed.stop()


async def test_a_vanished_fifo_is_retried_quietly() -> None:
    sink = TransportSink(max_buffer_bytes=PAGE)
    feed = FifoFeed(sink, pipe_size=PAGE)
    await feed.start()
    try:
        # Removed behind our back (a cleaner of /tmp): no reader can come,
        # and the writer neither fails nor spins.
        feed.path.unlink()
        await asyncio.sleep(0.1)
        assert not connected(sink)
        assert feed.connections == 0
    finally:
        await feed.stop()


async def test_a_fault_while_feeding_waits_for_the_next_reader(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = TransportSink(max_buffer_bytes=PAGE)
    feed = FifoFeed(sink, pipe_size=PAGE)
    original = FifoFeed._feed
    calls = 0

    async def broken(
        self: FifoFeed, loop: asyncio.AbstractEventLoop, pipe: io.FileIO
    ) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            pipe.close()
            msg = "a fault in the writer"
            raise RuntimeError(msg)
        await original(self, loop, pipe)

    await feed.start()
    # A reader of our own: a non-blocking open of the read end needs no writer.
    reader = os.open(feed.path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        with (
            patch.object(FifoFeed, "_feed", broken),
            patch(f"{TRANSPORT}._FIFO_ERROR_INTERVAL", 0.01),
        ):
            async with asyncio.timeout(DEADLINE_S):
                await until(lambda: connected(sink))
        assert calls == 2
        assert "waiting for the next reader" in caplog.text
        sink.write(b"after")
        await until(lambda: sink.buffered_bytes == 0)
        assert read_all(reader) == b"after"
    finally:
        await feed.stop()
        os.close(reader)


async def test_a_slow_reader_of_the_fifo_shows_as_back_pressure() -> None:
    sink = TransportSink(max_buffer_bytes=4000)
    feed = FifoFeed(sink, pipe_size=2880)
    await feed.start()
    # A reader that reads only when told to, like a stalled ffmpeg.
    reader = os.open(feed.path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        async with asyncio.timeout(DEADLINE_S):
            await until(lambda: connected(sink))
            sink.write(b"a" * PAGE)
            # The pipe is full (EAGAIN): the rest waits in the transport, in
            # the clock's sight, and the loop goes on.
            sink.write(b"b" * 3000)
            assert sink.buffered_bytes == 3000
            assert not sink.can_accept(1001)
            assert read_all(reader) == b"a" * PAGE
            await until(lambda: sink.buffered_bytes == 0)
            assert read_all(reader) == b"b" * 3000
    finally:
        await feed.stop()
        os.close(reader)
