"""Run the real clock feeding a real ffmpeg publisher and print what it measured.

    .venv/bin/python -m benchmarks.clock [--seconds 60] [--transport socket|pipe]

The RTSP server is ffmpeg's own listener on a free loopback port. Printed:
samples written against wall time (drift), frames late by more than 5 ms,
underruns, event-loop lag with and without the clock (what the clock adds),
and CPU use of this process and of the publishing ffmpeg while idle.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import time

import psutil

from custom_components.rtsp_announcer.audio.models import (
    Codec,
    PcmTransport,
    StreamSettings,
)
from custom_components.rtsp_announcer.audio.stream import AudioStream

PROBE_PERIOD = 0.01


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def loop_lag(seconds: float) -> list[float]:
    """Oversleep of a 10 ms timer, in ms: how late the loop runs callbacks."""
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    end = loop.time() + seconds
    while loop.time() < end:
        before = loop.time()
        await asyncio.sleep(PROBE_PERIOD)
        lags.append((loop.time() - before - PROBE_PERIOD) * 1000)
    return lags


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


async def run(seconds: float, transport: str, codec: str, rate: int) -> None:
    port = free_port()
    url = f"rtsp://127.0.0.1:{port}/bench"
    receiver = await asyncio.create_subprocess_exec(
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-rtsp_flags", "listen",
        "-listen_timeout", "30", "-i", url, "-f", "null", "-",
    )  # fmt: skip
    await asyncio.sleep(0.5)
    baseline = await loop_lag(min(seconds / 4, 10))

    stream = AudioStream(
        StreamSettings(
            url=url,
            pcm_transport=PcmTransport(transport),
            codec=Codec(codec),
            sample_rate=rate,
        )
    )
    loop = asyncio.get_running_loop()
    try:
        started = loop.time()
        await stream.start()
        async with asyncio.timeout(30):
            await stream.wait_available()
        print(f"publishing after {(loop.time() - started) * 1000:.0f} ms")
        me = psutil.Process()
        assert stream.publisher is not None
        assert stream.publisher.pid is not None
        ffmpeg = psutil.Process(stream.publisher.pid)
        cpu_me, cpu_ff = me.cpu_times(), ffmpeg.cpu_times()
        wall = time.monotonic()
        lags = await loop_lag(seconds)
        wall = time.monotonic() - wall
        cpu_me2, cpu_ff2 = me.cpu_times(), ffmpeg.cpu_times()
        clock = stream.clock
        stats = clock.stats
        now = loop.time()
        expected = clock.due(now)
        produced = clock.samples_produced
        drift_ms = (produced - expected) / rate * 1000
        print(f"ran {wall:.1f} s, transport {transport}, codec {codec}, {rate} Hz")
        frame_ms = clock.frame_samples / rate * 1000
        print(
            f"samples produced {produced} vs wall clock {expected}: "
            f"drift {drift_ms:+.2f} ms (one frame = {frame_ms:.0f} ms)"
        )
        print(
            f"frames written {stats.frames_written}, dropped {stats.frames_dropped}, "
            f"offline {stats.frames_offline}, late>5ms {stats.frames_late}, "
            f"underruns {stats.underruns}, "
            f"max tick lag {stats.max_tick_lag * 1000:.1f} ms"
        )
        print(
            f"loop lag without clock p50 {percentile(baseline, 50):.2f} ms "
            f"p99 {percentile(baseline, 99):.2f} ms; with clock "
            f"p50 {percentile(lags, 50):.2f} ms p99 {percentile(lags, 99):.2f} ms; "
            f"added p50 {percentile(lags, 50) - percentile(baseline, 50):+.2f} ms "
            f"p99 {percentile(lags, 99) - percentile(baseline, 99):+.2f} ms "
            f"(mean {statistics.fmean(lags):.2f} ms)"
        )
        me_cpu = (cpu_me2.user + cpu_me2.system - cpu_me.user - cpu_me.system) / wall
        ff_cpu = (cpu_ff2.user + cpu_ff2.system - cpu_ff.user - cpu_ff.system) / wall
        print(
            f"CPU while idle (silence): this process {me_cpu * 100:.1f} % of one core, "
            f"ffmpeg {ff_cpu * 100:.1f} %"
        )
        print(f"ffmpeg encoded {stream.publisher.out_time_us / 1e6:.2f} s of audio")
    finally:
        await stream.stop()
        with contextlib.suppress(ProcessLookupError):
            receiver.terminate()
        await receiver.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--transport", choices=["socket", "pipe"], default="socket")
    parser.add_argument("--codec", choices=[c.value for c in Codec], default="aac")
    parser.add_argument("--rate", type=int, default=24000)
    args = parser.parse_args()
    asyncio.run(run(args.seconds, args.transport, args.codec, args.rate))


if __name__ == "__main__":
    main()
