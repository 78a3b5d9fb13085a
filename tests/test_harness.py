"""The end-to-end harness works: real RTSP servers, readers and the analysis helpers.

The publishers here are plain ffmpeg processes, independent of the integration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import TYPE_CHECKING

import numpy as np
import pytest

from tests.helpers import analysis
from tests.helpers.rtsp import (
    ListenReceiver,
    Reader,
    RelayServer,
    dies_with_parent,
    end_process,
    free_port,
    free_port_block,
    is_listening,
    ports_in_use,
    s16le_mono,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from numpy.typing import NDArray

_LOGGER = logging.getLogger(__name__)
RATE = 24000


# --------------------------------------------------------------------------- publishers


def _publisher_argv(source: list[str], url: str, transport: str = "tcp") -> list[str]:
    """ffmpeg encoding `source` (its input options) to AAC, published to `url`."""
    return [
        "ffmpeg",
        "-hide_banner",
        "-nostats",
        "-loglevel",
        "warning",
        *source,
        "-c:a",
        "aac",
        "-muxdelay",
        "0",
        "-f",
        "rtsp",
        "-rtsp_transport",
        transport,
        url,
    ]


@contextlib.asynccontextmanager
async def _publishing(
    argv: list[str], stdin: int
) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        *dies_with_parent(argv),
        stdin=stdin,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        # A publisher that reads its stdin ends by itself at EOF.
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()
        # One SIGTERM: a publisher ends the clean way (it sends TEARDOWN).
        await end_process(proc, terms=1, term_wait_s=3)


@contextlib.asynccontextmanager
async def tone_publisher(
    url: str, freq: float, *, transport: str = "tcp", seconds: float | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Publish a sine tone in real time (ffmpeg's lavfi source, AAC) until left."""
    duration = ["-t", str(seconds)] if seconds is not None else []
    source = [
        "-nostdin",
        "-re",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency={freq}:sample_rate={RATE}",
        *duration,
    ]
    argv = _publisher_argv(source, url, transport)
    async with _publishing(argv, asyncio.subprocess.DEVNULL) as proc:
        yield proc


@contextlib.asynccontextmanager
async def pcm_publisher(url: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """An ffmpeg publisher that encodes raw s16le mono PCM written to its stdin.

    It ends by itself at EOF on stdin, which also comes if the test process dies.
    """
    source = [
        *s16le_mono(RATE),
        # The input format is known: probing only delays the start.
        "-probesize",
        "32",
        "-analyzeduration",
        "0",
        "-i",
        "pipe:0",
    ]
    argv = _publisher_argv(source, url)
    async with _publishing(argv, asyncio.subprocess.PIPE) as proc:
        yield proc


def tone(freq: float, seconds: float, amplitude: float = 0.5) -> NDArray[np.int16]:
    t = np.arange(round(seconds * RATE)) / RATE
    return (amplitude * 32767 * np.sin(2 * np.pi * freq * t)).astype("<i2")


async def write_realtime(
    proc: asyncio.subprocess.Process, pcm: NDArray[np.int16]
) -> float:
    """Write PCM so that the count written follows the wall clock; return the end."""
    assert proc.stdin is not None
    data = pcm.astype("<i2").tobytes()
    start = time.monotonic()
    written = 0
    while written < pcm.size:
        due = min(pcm.size, round((time.monotonic() - start) * RATE))
        if due > written:
            proc.stdin.write(data[written * 2 : due * 2])
            await proc.stdin.drain()
            written = due
        await asyncio.sleep(0.01)
    return time.monotonic()


# --------------------------------------------------------------------------- analysis


def test_dominant_frequency_is_accurate() -> None:
    for freq in (440.0, 997.3, 1000.0, 3150.0):
        assert analysis.dominant_frequency(tone(freq, 1.0), RATE) == pytest.approx(
            freq, abs=0.5
        )
    with pytest.raises(ValueError, match="silent"):
        analysis.dominant_frequency(np.zeros(RATE, dtype=np.int16), RATE)


def test_levels() -> None:
    assert analysis.rms_dbfs(tone(1000, 1.0, amplitude=1.0)) == pytest.approx(
        -3.01, abs=0.05
    )
    assert analysis.rms_dbfs(tone(1000, 1.0, amplitude=0.1)) == pytest.approx(
        -23.01, abs=0.05
    )
    assert analysis.rms_dbfs(np.zeros(100, dtype=np.int16)) == analysis.SILENCE_DBFS
    signal = np.concatenate([np.zeros(RATE // 2, dtype=np.int16), tone(1000, 0.5)])
    windows = analysis.rms_windows(signal, RATE, 100)
    assert windows.shape == (10,)
    assert (windows[:5] == analysis.SILENCE_DBFS).all()
    assert windows[5:] == pytest.approx(-9.03, abs=0.1)
    onset = analysis.first_onset(signal, RATE, -40)
    assert onset == pytest.approx(0.5, abs=0.006)
    assert analysis.first_onset(np.zeros(RATE, dtype=np.int16), RATE, -80) is None


def test_tone_segments() -> None:
    silence = np.zeros(RATE // 2, dtype=np.int16)
    rng = np.random.default_rng(1)
    noise = (rng.standard_normal(RATE // 2) * 3000).astype(np.int16)
    signal = np.concatenate(
        [silence, tone(1000, 1.0), silence, tone(500, 0.5), noise, tone(1000, 0.3)]
    )
    segments = analysis.tone_segments(signal, RATE, 1000)
    assert len(segments) == 2
    assert segments[0] == pytest.approx((0.5, 1.5), abs=0.021)
    assert segments[1] == pytest.approx((3.0, 3.3), abs=0.021)
    assert analysis.tone_segments(signal, RATE, 500) == [
        pytest.approx((2.0, 2.5), abs=0.021)
    ]
    # A quiet tone under the threshold does not count.
    assert analysis.tone_segments(tone(1000, 1.0, amplitude=0.001), RATE, 1000) == []
    gap = np.concatenate(
        [tone(1000, 0.5), np.zeros(RATE // 20, np.int16), tone(1000, 0.5)]
    )
    assert len(analysis.tone_segments(gap, RATE, 1000)) == 2
    assert len(analysis.tone_segments(gap, RATE, 1000, max_gap_ms=100)) == 1


def test_arrivals() -> None:
    arrivals = [(10.0 + i * 0.04, (i + 1) * 960) for i in range(100)]
    arrivals.insert(50, (arrivals[49][0] + 0.5, arrivals[49][1]))
    arrivals[51:] = [(t + 0.5, n) for t, n in arrivals[51:]]
    assert analysis.arrival_gaps(arrivals, 0.1) == [pytest.approx(0.5)]
    steady = [(i * 0.04, (i + 1) * 960) for i in range(100)]
    stats = analysis.continuity(steady, RATE)
    assert stats.ratio == pytest.approx(1.0)
    assert stats.slope_ratio == pytest.approx(1.0)
    assert stats.drift_s == pytest.approx(0.0, abs=1e-9)
    assert stats.max_gap_s == pytest.approx(0.04)
    assert analysis.continuity(steady, RATE, skip_s=1.0, until_s=2.0).chunks == 26
    slow = [(i * 0.04, (i + 1) * 912) for i in range(100)]
    assert analysis.continuity(slow, RATE).ratio == pytest.approx(0.95)


def test_free_port_needs_no_socket() -> None:
    # The Home Assistant plugin disables Python sockets here, so this proves
    # free_port() works without them.
    ports = {free_port() for _ in range(20)}
    assert len(ports) == 20
    assert ports.isdisjoint(ports_in_use())
    assert not any(is_listening(port) for port in ports)
    block = free_port_block(16)
    assert ports_in_use().isdisjoint(range(block, block + 16))


# --------------------------------------------------------------------------- listener


async def test_listen_receiver_receives_tone() -> None:
    async with ListenReceiver() as receiver:
        assert receiver.url == f"rtsp://127.0.0.1:{receiver.port}/announce"
        assert is_listening(receiver.port)
        async with tone_publisher(receiver.url, 1000, seconds=2.5) as publisher:
            session = await receiver.wait_for_session(1, timeout=15)
            assert await asyncio.wait_for(publisher.wait(), 15) == 0
        await receiver.wait_for_session_end(1, timeout=10)
        await receiver.wait_ready(timeout=10)
        assert session.ended_at is not None
        assert session.returncode == 0
        audio = receiver.session_samples(session)
        assert audio.size == session.sample_count
        assert session.duration_s == pytest.approx(2.5, abs=0.2)
        middle = audio[RATE // 2 : RATE // 2 + RATE]
        assert analysis.dominant_frequency(middle, RATE) == pytest.approx(1000, abs=5)
        assert analysis.rms_dbfs(middle) > -30
        assert receiver.arrivals[-1][1] == receiver.total_samples
    assert not is_listening(receiver.port)


async def test_realtime_writer_arrives_continuously() -> None:
    """Silence then a tone written in real time arrives at real-time speed."""
    silence_s, tone_s = 2.0, 3.0
    pcm = np.concatenate(
        [np.zeros(round(silence_s * RATE), dtype="<i2"), tone(1000, tone_s)]
    )
    async with ListenReceiver() as receiver, pcm_publisher(receiver.url) as publisher:
        written_until = await write_realtime(publisher, pcm)
        assert publisher.stdin is not None
        publisher.stdin.close()
        assert await asyncio.wait_for(publisher.wait(), 15) == 0
        session = await receiver.wait_for_session_end(1, timeout=10)

    stats = analysis.continuity(
        session.arrivals,
        RATE,
        skip_s=0.5,
        until_s=written_until - session.started_at,
    )
    _LOGGER.info("real-time writer: %s", stats)
    assert stats.wall_s > 3.5
    assert stats.ratio == pytest.approx(1.0, abs=0.02)
    assert stats.slope_ratio == pytest.approx(1.0, abs=0.02)
    assert stats.max_gap_s < 0.3

    audio = receiver.session_samples(session)
    segments = analysis.tone_segments(audio, RATE, 1000, max_gap_ms=60)
    assert len(segments) == 1, segments
    start, end = segments[0]
    _LOGGER.info("tone received at %.3f-%.3f s of the session", start, end)
    # Nothing written is lost at the start: the session's audio begins with the first
    # sample written, whatever the publisher's start-up time.
    assert start == pytest.approx(silence_s, abs=0.1)
    assert end - start == pytest.approx(tone_s, abs=0.1)


async def test_listen_receiver_takes_next_publisher_after_sigkill() -> None:
    async with ListenReceiver() as receiver:
        async with tone_publisher(receiver.url, 1000) as first:
            await receiver.wait_for_session(1, timeout=15, min_samples=RATE // 2)
            killed_at = time.monotonic()
            first.kill()
            await first.wait()
            ready_at = await receiver.wait_ready(timeout=10)
        assert len(receiver.ready_times) == 2
        session1 = receiver.sessions[0]
        assert session1.ended_at is not None
        async with tone_publisher(receiver.url, 500) as second:
            session2 = await receiver.wait_for_session(2, timeout=10, min_samples=RATE)
            assert second.returncode is None
        _LOGGER.info(
            "listener: publisher killed -> session end %.3f s, -> listening %.3f s,"
            " -> second publisher's audio %.3f s",
            session1.ended_at - killed_at,
            ready_at - killed_at,
            session2.started_at - killed_at,
        )
        assert ready_at - killed_at < 3.0
        assert session2.started_at - killed_at < 5.0
        assert receiver.failure is None
        audio = receiver.session_samples(session2)
        assert analysis.dominant_frequency(audio[-RATE // 2 :], RATE) == pytest.approx(
            500, abs=5
        )


async def test_listen_receiver_stop_ends_publisher() -> None:
    receiver = ListenReceiver()
    await receiver.start()
    try:
        async with tone_publisher(receiver.url, 1000) as publisher:
            await receiver.wait_for_session(1, timeout=15, min_samples=RATE // 2)
            stopped_at = time.monotonic()
            await receiver.stop()
            stop_took = time.monotonic() - stopped_at
            returncode = await asyncio.wait_for(publisher.wait(), 10)
            exited_after = time.monotonic() - stopped_at
            assert publisher.stderr is not None
            log = (await publisher.stderr.read()).decode(errors="replace")
    finally:
        await receiver.stop()
    _LOGGER.info(
        "stop() took %.3f s; the publisher exited %.3f s after stop() began"
        " (rc %s): %s",
        stop_took,
        exited_after,
        returncode,
        log.strip().splitlines()[:1],
    )
    assert returncode != 0
    assert exited_after < 5.0
    assert not receiver.running
    assert not is_listening(receiver.port)
    assert receiver.sessions[0].ended_at is not None
    # A new publisher now finds nothing to connect to.
    async with tone_publisher(receiver.url, 1000) as late:
        assert await asyncio.wait_for(late.wait(), 10) != 0


async def test_cancelled_test_leaves_no_process() -> None:
    receiver = ListenReceiver()
    reached = asyncio.Event()

    async def body() -> None:
        async with receiver:
            reached.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(body())
    await asyncio.wait_for(reached.wait(), 15)
    child = receiver._child
    assert child is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert child.returncode is not None
    assert not receiver.running
    assert not is_listening(receiver.port)
    with pytest.raises(RuntimeError, match="not running"):
        await receiver.wait_for_samples(1, timeout=1)


# --------------------------------------------------------------------------- relay


async def test_relay_reader_receives_tone() -> None:
    async with RelayServer() as relay:
        assert relay.startup_s is not None
        _LOGGER.info("relay accepted connections %.3f s after spawn", relay.startup_s)
        assert relay.startup_s < 10
        async with (
            tone_publisher(relay.publish_url, 1000, transport="udp") as publisher,
            Reader(relay.read_url) as reader,
        ):
            await relay.wait_for_mount(timeout=15)
            await reader.wait_for_samples(round(1.5 * RATE), timeout=15)
            audio = reader.samples()
            assert analysis.dominant_frequency(audio[-RATE:], RATE) == pytest.approx(
                1000, abs=5
            )
            stopped_at = time.monotonic()
            await relay.stop()
            returncode = await asyncio.wait_for(publisher.wait(), 15)
            exited_after = time.monotonic() - stopped_at
        _LOGGER.info(
            "relay stopped: UDP publisher exited after %.3f s (rc %s)",
            exited_after,
            returncode,
        )
        assert returncode != 0
        assert not is_listening(relay.source_port)
        assert not is_listening(relay.client_port)


async def test_reader_follows_publisher_restart() -> None:
    async with (
        RelayServer() as relay,
        Reader(relay.read_url, stall_timeout=1.5) as reader,
    ):
        async with tone_publisher(relay.publish_url, 1000, transport="udp"):
            await reader.wait_for_session(1, timeout=15, min_samples=RATE // 2)
        # The publisher ended cleanly (SIGTERM): TEARDOWN unmounted the path.
        left_at = time.monotonic()
        async with tone_publisher(relay.publish_url, 600, transport="udp"):
            session = await reader.wait_for_session(2, timeout=15, min_samples=RATE)
        _LOGGER.info(
            "reader: audio again %.3f s after the publisher restarted"
            " (%d runs, %d stalls)",
            session.started_at - left_at,
            reader.attempts,
            reader.stalls,
        )
        assert reader.stalls >= 1
        audio = reader.session_samples(session)
        assert analysis.dominant_frequency(audio[-RATE // 2 :], RATE) == pytest.approx(
            600, abs=5
        )


async def test_relay_keeps_mount_of_killed_publisher() -> None:
    """rtsp-server-perl: a SIGKILLed publisher blocks its path until a restart."""
    async with RelayServer() as relay:
        async with tone_publisher(relay.publish_url, 1000, transport="udp") as first:
            await relay.wait_for_mount(timeout=15)
            first.kill()
            await first.wait()
        async with tone_publisher(relay.publish_url, 1000, transport="udp") as second:
            assert await asyncio.wait_for(second.wait(), 15) != 0
            assert second.stderr is not None
            assert "403" in (await second.stderr.read()).decode(errors="replace")
        await relay.restart()
        async with tone_publisher(relay.publish_url, 1000, transport="udp") as third:
            await relay.wait_for_mount(timeout=15)
            assert third.returncode is None


async def test_reader_without_restart_ends_on_404() -> None:
    async with RelayServer() as relay:
        reader = Reader(relay.read_url, auto_restart=False)
        await reader.start()
        try:
            with pytest.raises(RuntimeError, match="not running"):
                await reader.wait_for_samples(1, timeout=15)
            assert reader.attempts == 1
            assert reader.sessions == []
        finally:
            await reader.stop()
        assert reader._child is None
        assert math.isfinite(relay.startup_s or math.inf)
