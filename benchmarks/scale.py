"""How many streams one core carries: N streams idle, then all speaking at once.

    .venv/bin/python -m benchmarks.scale [--streams 1,5,10,20,40] [--idle 20]
        [--speak 10] [--onsets 20] [--codec aac] [--rate 24000]
        [--transport socket|fifo|pipe] [--idle-block MS]

The streams run in a child Python process of their own, standing for Home
Assistant's process: it runs the audio core (`AudioStream`, one ffmpeg each)
on a normal, non-debug event loop and measures itself. This process runs the
RTSP relays (rtsp-server-perl, one per ten streams, UDP) and one real reader
per stream (`tests.helpers.rtsp.Reader`), so what the readers cost is not
counted against the streams. Per N it prints:

* CPU of the streams' process and of its ffmpeg children, idle and speaking,
  in % of one core (total and per stream);
* memory: the process's RSS with the streams idle, less its RSS before the
  first stream started, per stream;
* event-loop wake-ups per second per idle stream (the selector calls that
  slept, counted while nothing else runs in that loop, less the one that ends
  the measurement; with many streams several timers share a wake-up, so N = 1
  is the figure without that help),
  and loop iterations (also the ones that ran ready callbacks without sleeping);
* loop lag p50/p99 (a 10 ms timer's oversleep) idle and speaking;
* underruns at the readers: stretches over 100 ms without data, idle and
  speaking;
* time from a stream's start to publishing (ffmpeg's first progress block);
* onset of an announcement on an idle stream: call -> its first sample written
  to ffmpeg (p50/p95); call -> its first sample's place in the stream, i.e. the
  write plus the audio already queued ahead of it (p50/p95); and call -> the
  tone's onset at the reader (first 5 ms at -40 dBFS, counted when it arrived;
  through the relay, so ffmpeg's encoder and both RTSP hops included);

and checks them against the goals (20 streams speaking within one core, loop
lag p99 <= 5 ms, 0 underruns, <= 3 MB per idle stream, idle <= 0.3 % of a core
in the streams' process and <= 1 % with ffmpeg per stream, <= 10 wake-ups/s
per idle stream, first sample written <= 20 ms p95).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psutil

from benchmarks.clock import loop_lag
from custom_components.rtsp_announcer.audio.models import StreamSettings
from custom_components.rtsp_announcer.audio.options import (
    Codec,
    PcmTransport,
    RtspTransport,
)
from custom_components.rtsp_announcer.audio.playback import ItemState, PlaybackItem
from custom_components.rtsp_announcer.audio.stream import AudioStream
from tests.helpers.analysis import first_onset
from tests.helpers.rtsp import Reader, RelayServer

STREAMS_PER_RELAY = 10
GAP_S = 0.1
TONE_HZ = 440.0
ONSET_ITEM_S = 0.2
ONSET_DBFS = -40.0

GOAL_CORE_SPEAKING = 1.0
GOAL_LAG_P99_MS = 5.0
GOAL_MB_PER_STREAM = 3.0
GOAL_IDLE_CPU_HA = 0.3
GOAL_IDLE_CPU_TOTAL = 1.0
GOAL_WAKEUPS = 10.0
GOAL_ONSET_P95_MS = 20.0


def percentile(values: list[float], pct: float) -> float:
    """The nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


# --------------------------------------------------------------------------- child


class _WakeCounter:
    """Counts the event loop's wake-ups: selector calls that put it to sleep.

    A call with a zero timeout (ready callbacks were waiting) does not sleep:
    it is counted in `iterations` only.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.count = 0
        self.iterations = 0
        selector = loop._selector  # type: ignore[attr-defined]  # noqa: SLF001
        original = selector.select

        def select(timeout: float | None = None) -> Any:
            events = original(timeout)
            self.iterations += 1
            if timeout is None or timeout > 0:
                self.count += 1
            return events

        selector.select = select


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


class _Host:
    """The streams' side, in the child process."""

    def __init__(
        self, urls: list[str], codec: str, rate: int, transport: str, idle_block: int
    ) -> None:
        self.urls = urls
        self.idle_block = idle_block
        self.codec = codec
        self.rate = rate
        self.transport = transport
        self.me = psutil.Process()
        self.streams: list[AudioStream] = []
        self.wakes = _WakeCounter(asyncio.get_running_loop())

    def _ffmpegs(self) -> list[psutil.Process]:
        found = []
        for stream in self.streams:
            pid = stream.publisher.pid if stream.publisher is not None else None
            if pid is not None:
                with contextlib.suppress(psutil.NoSuchProcess):
                    found.append(psutil.Process(pid))
        return found

    def _cpu_all(self) -> tuple[float, float]:
        ffmpeg = 0.0
        for process in self._ffmpegs():
            with contextlib.suppress(psutil.NoSuchProcess):
                ffmpeg += _cpu(process)
        return _cpu(self.me), ffmpeg

    async def start(self) -> dict[str, Any]:
        rss_base = self.me.memory_info().rss
        loop = asyncio.get_running_loop()
        spawned: list[float] = []
        for url in self.urls:
            stream = AudioStream(
                StreamSettings(
                    url=url,
                    pcm_transport=PcmTransport(self.transport),
                    codec=Codec(self.codec),
                    sample_rate=self.rate,
                    rtsp_transport=RtspTransport.UDP,
                    idle_block_ms=self.idle_block,
                )
            )
            spawned.append(loop.time())
            await stream.start()
            self.streams.append(stream)
        async with asyncio.timeout(60):
            await asyncio.gather(*(s.wait_available() for s in self.streams))
        # From start() to ffmpeg's first progress block: when the stream
        # became available.
        to_publishing = [
            stream.publisher.published_at - at
            for stream, at in zip(self.streams, spawned, strict=True)
            if stream.publisher is not None and stream.publisher.published_at
        ]
        return {"rss_base": rss_base, "to_publishing": to_publishing}

    async def idle(self, seconds: float) -> dict[str, Any]:
        """Nothing else runs: CPU, wake-ups and memory of idle streams."""
        cpu0 = self._cpu_all()
        wakes0, wall0 = self.wakes.count, time.monotonic()
        iterations0 = self.wakes.iterations
        await asyncio.sleep(seconds)
        wall = time.monotonic() - wall0
        cpu1 = self._cpu_all()
        # The sleep that ends the window woke the loop once itself.
        wakes = self.wakes.count - wakes0 - 1
        return {
            "start": wall0,
            "end": wall0 + wall,
            "cpu_ha": (cpu1[0] - cpu0[0]) / wall,
            "cpu_ffmpeg": (cpu1[1] - cpu0[1]) / wall,
            "wakeups": wakes / wall,
            "iterations": (self.wakes.iterations - iterations0) / wall,
            "rss": self.me.memory_info().rss,
        }

    async def lag(self, seconds: float) -> dict[str, Any]:
        """Loop lag of idle streams (the probe's own timer wakes the loop)."""
        start = time.monotonic()
        lags = await loop_lag(seconds)
        return {"start": start, "end": time.monotonic(), "lags": lags}

    def _tone_item(self, stream: AudioStream, seconds: float) -> PlaybackItem:
        count = int(seconds * self.rate)
        wave = 0.25 * np.sin(2 * np.pi * TONE_HZ * np.arange(count) / self.rate)
        pcm = (wave * 32767).astype("<i2").tobytes()
        item = PlaybackItem(
            sample_rate=stream.settings.sample_rate, buffer_seconds=seconds + 1
        )
        item._buffer += pcm  # noqa: SLF001 - fed at once, not through a producer
        item.end()
        return item

    async def speak(self, seconds: float) -> dict[str, Any]:
        """All streams speak a tone at once: CPU and loop lag meanwhile."""
        items = [self._tone_item(stream, seconds) for stream in self.streams]
        cpu0 = self._cpu_all()
        start = time.monotonic()
        for stream, item in zip(self.streams, items, strict=True):
            stream.queue.add(item)
        lag_task = asyncio.create_task(loop_lag(seconds))
        async with asyncio.timeout(seconds + 30):
            await asyncio.gather(*(item.wait() for item in items))
        wall = time.monotonic() - start
        cpu1 = self._cpu_all()
        lags = await lag_task
        return {
            "start": start,
            "end": start + wall,
            "cpu_ha": (cpu1[0] - cpu0[0]) / wall,
            "cpu_ffmpeg": (cpu1[1] - cpu0[1]) / wall,
            "lags": lags,
            "states": [str(item.state) for item in items],
        }

    async def onsets(self, count: int) -> dict[str, Any]:
        """Short items at random moments on idle streams: when they start."""
        loop = asyncio.get_running_loop()
        rng = random.Random(16)  # noqa: S311 - moments, not secrets
        writes: list[float] = []
        places: list[float] = []
        calls: list[tuple[int, float]] = []
        for index in range(count):
            stream = self.streams[index % len(self.streams)]
            await asyncio.sleep(rng.uniform(0.3, 0.7))
            item = self._tone_item(stream, ONSET_ITEM_S)
            start = _FirstWrite(stream, item)
            remove = stream.add_item_listener(start.changed)
            called = loop.time()
            calls.append((index % len(self.streams), time.monotonic()))
            stream.queue.add(item)
            await item.wait()
            remove()
            if start.written_at is not None:
                writes.append((start.written_at - called) * 1000)
                places.append((start.written_at - called + start.ahead) * 1000)
        return {"writes": writes, "places": places, "calls": calls}

    async def stop(self) -> None:
        await asyncio.gather(*(s.stop() for s in self.streams))


class _FirstWrite:
    """When an item's first frame is written, and how far ahead of real time."""

    def __init__(self, stream: AudioStream, item: PlaybackItem) -> None:
        self.stream = stream
        self.item = item
        self.written_at: float | None = None
        self.ahead = 0.0

    def changed(self, item: PlaybackItem) -> None:
        if item is not self.item or self.written_at is not None:
            return
        if item.state is not ItemState.PLAYING:
            return
        now = asyncio.get_running_loop().time()
        clock = self.stream.clock
        # The clock has counted the frame being read: its first sample sits a
        # frame before the count, `ahead` of the wall clock.
        elapsed = clock.due(now) - self.stream.settings.lead_samples
        first = clock.samples_produced - clock.frame_samples
        self.written_at = now
        self.ahead = (first - elapsed) / self.stream.settings.sample_rate


async def _serve(
    urls: list[str], codec: str, rate: int, transport: str, idle_block: int
) -> None:
    host = _Host(urls, codec, rate, transport, idle_block)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )

    def reply(data: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(data) + "\n")
        sys.stdout.flush()

    try:
        reply(await host.start())
        while line := await reader.readline():
            command, _, arg = line.decode().strip().partition(" ")
            if command == "quit":
                break
            handler = getattr(host, command)
            reply(await handler(float(arg) if command != "onsets" else int(arg)))
    finally:
        await host.stop()


# --------------------------------------------------------------------------- parent


@dataclass
class Result:
    streams: int
    figures: dict[str, Any] = field(default_factory=dict)


class _Child:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def ask(self, command: str, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        if command:
            self.process.stdin.write(f"{command}\n".encode())
            await self.process.stdin.drain()
        async with asyncio.timeout(timeout):
            line = await self.process.stdout.readline()
        if not line:
            msg = f"the streams' process ended during {command!r}"
            raise RuntimeError(msg)
        data: dict[str, Any] = json.loads(line)
        return data


def _heard(reader: Reader, called: float) -> float | None:
    """Seconds from a call to the tone's onset at the reader (None: not heard)."""
    arrivals = reader.arrivals
    index = bisect.bisect_left(arrivals, called, key=lambda arrival: arrival[0])
    base = arrivals[index - 1][1] if index > 0 else 0
    samples = reader.samples()[base:]
    onset = first_onset(samples, reader.rate, ONSET_DBFS)
    if onset is None:
        return None
    # Counted when the loud window's last sample has arrived.
    last = base + int(onset * reader.rate) + reader.rate // 200
    at = bisect.bisect_left(arrivals, last, key=lambda arrival: arrival[1])
    if at >= len(arrivals):
        return None
    return arrivals[at][0] - called


def _gaps(readers: list[Reader], start: float, end: float) -> tuple[int, float]:
    """Stretches over GAP_S without data at the readers within [start, end]."""
    count = 0
    worst = 0.0
    for reader in readers:
        times = [t for t, _ in reader.arrivals if start - 1.0 <= t <= end]
        times = [start, *[t for t in times if t >= start], end]
        diffs = np.diff(np.array(sorted(times)))
        count += int((diffs > GAP_S).sum())
        worst = max(worst, float(diffs.max()) if len(diffs) else 0.0)
    return count, worst


def _urls(relays: list[RelayServer], n: int) -> tuple[list[str], list[str]]:
    """Publish and read URLs of N streams, ten to a relay."""
    urls = []
    read_urls = []
    for index in range(n):
        relay = relays[index // STREAMS_PER_RELAY]
        base = relay.publish_url.rsplit("/", 1)[0]
        read = relay.read_url.rsplit("/", 1)[0]
        urls.append(f"{base}/s{index}")
        read_urls.append(f"{read}/s{index}")
    return urls, read_urls


async def _measure(n: int, args: argparse.Namespace) -> Result:
    relays = [RelayServer() for _ in range(math.ceil(n / STREAMS_PER_RELAY))]
    readers: list[Reader] = []
    child: _Child | None = None
    result = Result(n)
    try:
        await asyncio.gather(*(relay.start() for relay in relays))
        urls, read_urls = _urls(relays, n)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.scale",
            "--serve",
            ",".join(urls),
            "--codec",
            args.codec,
            "--rate",
            str(args.rate),
            "--transport",
            args.transport,
            "--idle-block",
            str(args.idle_block),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        child = _Child(process)
        started = await child.ask("", 90)
        for relay_index, relay in enumerate(relays):
            for index in range(n):
                if index // STREAMS_PER_RELAY == relay_index:
                    await relay.wait_for_mount(f"/s{index}", timeout=30)
        for url in read_urls:
            reader = Reader(url, rate=args.rate, stall_timeout=5.0)
            await reader.start()
            readers.append(reader)
        await asyncio.gather(*(r.wait_for_samples(1, timeout=60) for r in readers))
        await asyncio.sleep(args.settle)
        # This process's own lag: a busy reader side shows up as gaps too.
        readers_lag: list[float] = []
        own_lag = asyncio.create_task(
            loop_lag(args.idle + args.lag + args.speak + 5, readers_lag)
        )
        idle = await child.ask(f"idle {args.idle}", args.idle + 30)
        lag = await child.ask(f"lag {args.lag}", args.lag + 30)
        speak = await child.ask(f"speak {args.speak}", args.speak + 60)
        onsets = await child.ask(f"onsets {args.onsets}", args.onsets * 3 + 30)
        own_lag.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await own_lag
        await asyncio.sleep(1.0)
        onsets["heard"] = [
            _heard(readers[index], called) for index, called in onsets["calls"]
        ]
        idle_gaps = _gaps(readers, idle["start"], lag["end"])
        speak_gaps = _gaps(readers, speak["start"], speak["end"])
        result.figures = {
            "idle": idle,
            "lag": lag,
            "speak": speak,
            "onsets": onsets,
            "rss_base": started["rss_base"],
            "to_publishing": started["to_publishing"],
            "idle_gaps": idle_gaps,
            "speak_gaps": speak_gaps,
            "reader_restarts": sum(r.attempts - 1 for r in readers),
            "readers_lag": readers_lag,
        }
    finally:
        if child is not None:
            with contextlib.suppress(Exception):
                assert child.process.stdin is not None
                child.process.stdin.write(b"quit\n")
                await child.process.stdin.drain()
            try:
                async with asyncio.timeout(20):
                    await child.process.wait()
            except TimeoutError:
                child.process.kill()
                await child.process.wait()
        await asyncio.gather(*(reader.stop() for reader in readers))
        await asyncio.gather(*(relay.stop() for relay in relays))
    return result


def _mark(ok: bool) -> str:  # noqa: FBT001
    return "ok" if ok else "MISSED"


def _report(result: Result) -> None:
    n = result.streams
    f = result.figures
    idle, speak, lag, onsets = f["idle"], f["speak"], f["lag"], f["onsets"]
    idle_ha = idle["cpu_ha"] * 100
    idle_ff = idle["cpu_ffmpeg"] * 100
    speak_ha = speak["cpu_ha"] * 100
    speak_ff = speak["cpu_ffmpeg"] * 100
    mb = (idle["rss"] - f["rss_base"]) / n / 2**20
    wakes = idle["wakeups"] / n
    lag_idle = (percentile(lag["lags"], 50), percentile(lag["lags"], 99))
    lag_speak = (percentile(speak["lags"], 50), percentile(speak["lags"], 99))
    gaps_idle, worst_idle = f["idle_gaps"]
    gaps_speak, worst_speak = f["speak_gaps"]
    writes, places = onsets["writes"], onsets["places"]
    heard = [h * 1000 for h in onsets["heard"] if h is not None]
    missing = len(onsets["heard"]) - len(heard)
    print(f"\n== {n} stream(s)")
    print(
        f"idle CPU: streams' process {idle_ha:.2f} % ({idle_ha / n:.3f} %/stream, "
        f"goal <= {GOAL_IDLE_CPU_HA} {_mark(idle_ha / n <= GOAL_IDLE_CPU_HA)}), "
        f"ffmpeg {idle_ff:.2f} % ({idle_ff / n:.3f} %/stream); together "
        f"{(idle_ha + idle_ff) / n:.3f} %/stream "
        f"(goal <= {GOAL_IDLE_CPU_TOTAL} "
        f"{_mark((idle_ha + idle_ff) / n <= GOAL_IDLE_CPU_TOTAL)})"
    )
    print(
        f"idle wake-ups: {idle['wakeups']:.2f}/s, {wakes:.2f}/s per stream "
        f"(goal <= {GOAL_WAKEUPS} {_mark(wakes <= GOAL_WAKEUPS)}); loop "
        f"iterations {idle['iterations'] / n:.1f}/s per stream"
    )
    print(
        f"memory: {mb:.2f} MB per idle stream "
        f"(goal <= {GOAL_MB_PER_STREAM} {_mark(mb <= GOAL_MB_PER_STREAM)})"
    )
    total = speak_ha + speak_ff
    print(
        f"speaking: streams' process {speak_ha:.1f} %, ffmpeg {speak_ff:.1f} %, "
        f"total {total:.1f} % of one core"
        + (
            f" (goal for 20: <= {GOAL_CORE_SPEAKING * 100:.0f} % "
            f"{_mark(total <= GOAL_CORE_SPEAKING * 100)})"
            if n == 20
            else ""
        )
    )
    print(
        f"loop lag p50/p99: idle {lag_idle[0]:.2f}/{lag_idle[1]:.2f} ms, speaking "
        f"{lag_speak[0]:.2f}/{lag_speak[1]:.2f} ms "
        f"(goal p99 <= {GOAL_LAG_P99_MS} "
        f"{_mark(max(lag_idle[1], lag_speak[1]) <= GOAL_LAG_P99_MS)})"
    )
    print(
        f"underruns at the readers (> {GAP_S * 1000:.0f} ms without data): idle "
        f"{gaps_idle} (longest {worst_idle * 1000:.0f} ms), speaking {gaps_speak} "
        f"(longest {worst_speak * 1000:.0f} ms) "
        f"(goal 0 {_mark(gaps_idle + gaps_speak == 0)}); reader restarts "
        f"{f['reader_restarts']}; the readers' own loop lag p99 "
        f"{percentile(f['readers_lag'], 99):.1f} ms, max "
        f"{max(f['readers_lag'], default=math.nan):.0f} ms"
    )
    starts = [t * 1000 for t in f["to_publishing"]]
    print(
        f"start to publishing: p50 {percentile(starts, 50):.0f} ms, max "
        f"{max(starts, default=math.nan):.0f} ms"
    )
    ended = sorted(set(speak["states"]))
    print(f"speaking items ended: {', '.join(ended)}")
    print(
        f"onset on an idle stream ({len(writes)} calls): first sample written "
        f"p50 {percentile(writes, 50):.1f} ms, p95 {percentile(writes, 95):.1f} ms "
        f"(goal p95 <= {GOAL_ONSET_P95_MS} "
        f"{_mark(percentile(writes, 95) <= GOAL_ONSET_P95_MS)}); its place in the "
        f"stream p50 {percentile(places, 50):.0f} ms, p95 "
        f"{percentile(places, 95):.0f} ms after the call; heard at the reader p50 "
        f"{percentile(heard, 50):.0f} ms, p95 {percentile(heard, 95):.0f} ms"
        + (f" ({missing} not heard)" if missing else "")
    )


def _load() -> str:
    load1, load5, _ = os.getloadavg()
    busy = psutil.cpu_percent(interval=1.0)
    return f"load average {load1:.2f}/{load5:.2f}, CPU busy {busy:.0f} % over 1 s"


async def _main(args: argparse.Namespace) -> None:
    counts = [int(part) for part in args.streams.split(",")]
    print(
        f"{psutil.cpu_count()} cores; codec {args.codec}, {args.rate} Hz, PCM over "
        f"the {args.transport}, idle block {args.idle_block} ms, RTSP over "
        f"UDP to rtsp-server-perl; idle {args.idle} s, speaking {args.speak} s"
    )
    print(f"before: {_load()}")
    for n in counts:
        result = await _measure(n, args)
        _report(result)
        print(f"machine: {_load()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", default="1,5,10,20,40")
    parser.add_argument("--idle", type=float, default=20.0)
    parser.add_argument("--lag", type=float, default=10.0)
    parser.add_argument("--speak", type=float, default=10.0)
    parser.add_argument("--onsets", type=int, default=20)
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--codec", default="aac")
    parser.add_argument("--rate", type=int, default=24000)
    parser.add_argument(
        "--transport", choices=["socket", "fifo", "pipe"], default="socket"
    )
    parser.add_argument("--idle-block", type=int, default=100, metavar="MS")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(
            _serve(
                args.serve.split(","),
                args.codec,
                args.rate,
                args.transport,
                args.idle_block,
            )
        )
    else:
        asyncio.run(_main(args))


if __name__ == "__main__":
    main()
