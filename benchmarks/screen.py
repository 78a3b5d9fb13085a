"""The call-number screen: its cost, its sync with the audio, how soon a reader sees it.

    .venv/bin/python -m benchmarks.screen [--idle 20] [--calls 6]

Prints:

(a) CPU while idle (nothing announced, nothing redrawn) for 1280x720 at 5 fps:
    the publishing ffmpeg and this process (the clock, the frame writes, the
    drawing), against the same stream without video; the screen's cost is the
    difference, in percent of one core;
(b) the A/V offset at a reader: for `--calls` announcements (a tone with a
    display text) the time of the first decoded frame showing the text minus
    the tone's onset, both on the reader's time line (ffmpeg's RTSP listener,
    tests/screen_reader.py), at 5 and 10 fps; and the keyframe interval seen;
(c) time to the first picture for a reader that joins a running stream
    (rtsp-server-perl relay, UDP), from the reader's start to its first
    decoded frame;
(d) drawing one 1280x720 frame (Pillow + yuv420p conversion) and the event
    loop's worst lateness during the idle run.

The stream is the integration's own audio core (AudioStream), without Home
Assistant: the same code paths the integration runs.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from custom_components.rtsp_announcer.audio.models import StreamSettings, VideoSettings
from custom_components.rtsp_announcer.audio.options import RtspTransport
from custom_components.rtsp_announcer.audio.stream import AudioStream
from custom_components.rtsp_announcer.audio.video import (
    ScreenContent,
    ScreenRenderer,
    ScreenStyle,
    find_fonts,
)
from tests.helpers.rtsp import ListenReceiver, RelayServer, dies_with_parent
from tests.screen_reader import ScreenReader

RATE = 24000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Idle:
    ffmpeg: float
    own: float
    max_tick_lag: float


async def idle_cost(video: VideoSettings | None, seconds: float, work: Path) -> Idle:
    """CPU (percent of one core) of ffmpeg and of this process while idle."""
    receiver = ListenReceiver() if video is None else ScreenReader(work)
    async with receiver:
        stream = AudioStream(StreamSettings(url=receiver.url, video=video))
        await stream.start()
        try:
            await asyncio.wait_for(stream.wait_available(), 15)
            await asyncio.sleep(3)
            pid = stream.publisher.pid if stream.publisher else None
            assert pid is not None
            stream.clock.stats.max_tick_lag = 0.0
            ffmpeg0, own0, wall0 = (
                cpu_seconds(pid),
                time.process_time(),
                time.monotonic(),
            )
            await asyncio.sleep(seconds)
            wall = time.monotonic() - wall0
            return Idle(
                ffmpeg=100 * (cpu_seconds(pid) - ffmpeg0) / wall,
                own=100 * (time.process_time() - own0) / wall,
                max_tick_lag=stream.clock.stats.max_tick_lag,
            )
        finally:
            await stream.stop()


def tone(seconds: float = 0.6, freq: float = 880.0) -> bytes:
    t = np.arange(int(RATE * seconds)) / RATE
    return (np.sin(2 * np.pi * freq * t) * 8000).astype("<i2").tobytes()


async def av_offsets(
    fps: int, calls: int, work: Path
) -> tuple[list[float], list[float]]:
    """Offsets (s) of picture against sound at a reader, and keyframe intervals."""
    offsets: list[float] = []
    async with ScreenReader(work) as reader:
        stream = AudioStream(
            StreamSettings(
                url=reader.url, video=VideoSettings(width=640, height=360, fps=fps)
            )
        )
        await stream.start()
        try:
            await asyncio.wait_for(stream.wait_available(), 15)
            await asyncio.sleep(2)
            for call in range(calls):
                before = reader.frames()[-1].pts
                item = stream.new_item(title="tone")
                item.display_text = f"A{call:03d}"
                stream.queue.add(item)
                await item.feed(tone())
                item.end()
                # Calls land anywhere between two frames.
                await asyncio.sleep(1.5 + call * 0.037)
                onset = reader.onset_after(before)
                change = reader.first_change_after(before)
                if onset is not None and change is not None:
                    offsets.append(change[1].pts - onset)
            keys = [frame.pts for frame in reader.frames() if frame.key]
        finally:
            await stream.stop()
    return offsets, [b - a for a, b in itertools.pairwise(keys)]


async def join_times(runs: int, *, probe: bool) -> list[float]:
    """Seconds from a joining reader's start to its first decoded picture.

    With `probe`, the reader probes as ffmpeg does by default (5 s of
    analysis); without, it starts from the session description at once.
    """
    flags = [] if probe else ["-probesize", "32", "-analyzeduration", "0"]
    times: list[float] = []
    async with RelayServer() as relay:
        stream = AudioStream(
            StreamSettings(
                url=relay.publish_url,
                rtsp_transport=RtspTransport.UDP,
                video=VideoSettings(width=1280, height=720, fps=5),
            )
        )
        await stream.start()
        try:
            await asyncio.wait_for(stream.wait_available(), 15)
            await relay.wait_for_mount()
            for run in range(runs):
                await asyncio.sleep(0.7 + run * 0.29)
                started = time.monotonic()
                process = await asyncio.create_subprocess_exec(
                    *dies_with_parent(
                        [
                            "ffmpeg",
                            "-hide_banner",
                            "-nostdin",
                            "-loglevel",
                            "info",
                            "-rtsp_transport",
                            "udp",
                            *flags,
                            "-i",
                            relay.read_url,
                            "-map",
                            "0:v",
                            "-vf",
                            "showinfo",
                            "-f",
                            "null",
                            "-",
                        ]
                    ),  # fmt: skip
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE,
                )
                assert process.stderr is not None
                try:
                    async with asyncio.timeout(10):
                        while line := await process.stderr.readline():
                            if re.search(rb"Parsed_showinfo.* n: *0 ", line):
                                times.append(time.monotonic() - started)
                                break
                finally:
                    process.kill()
                    await process.wait()
        finally:
            await stream.stop()
    return times


def draw_cost() -> float:
    """Milliseconds to draw one 1280x720 frame, median of 10."""
    renderer = ScreenRenderer(
        VideoSettings(width=1280, height=720, fps=5), ScreenStyle(), find_fonts()
    )
    content = ScreenContent("A042 → 3", ("A041", "A040", "请到三号窗口"))
    durations = []
    for _ in range(10):
        began = time.perf_counter()
        renderer.render(content)
        durations.append(time.perf_counter() - began)
    return statistics.median(durations) * 1000


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="screen-bench-") as tmp:
        work = Path(tmp)
        hd = VideoSettings(width=1280, height=720, fps=5)
        audio = await idle_cost(None, args.idle, work / "audio")
        video = await idle_cost(hd, args.idle, work / "video")
        print(f"(a) idle CPU, % of one core, over {args.idle:.0f} s")
        for name, idle in (("audio only    ", audio), ("1280x720 5 fps", video)):
            print(
                f"    {name}  ffmpeg {idle.ffmpeg:5.2f}  this process {idle.own:5.2f}"
            )
        extra = video.ffmpeg + video.own - audio.ffmpeg - audio.own
        print(f"    the screen's cost (drawing + encoding + frames): {extra:5.2f} %")
        for fps in (5, 10):
            offsets, gops = await av_offsets(fps, args.calls, work / f"sync{fps}")
            ms = [round(o * 1000) for o in offsets]
            print(f"(b) A/V offset at {fps} fps, picture - sound, ms: {ms}")
            if ms:
                print(
                    f"    median {statistics.median(ms):+.0f}, largest"
                    f" {max(ms, key=abs):+d}; keyframe interval"
                    f" {min(gops):.2f}-{max(gops):.2f} s"
                )
        for probe in (False, True):
            joins = await join_times(args.joins, probe=probe)
            how = "ffmpeg's default probing" if probe else "no probing"
            print(
                f"(c) joining reader ({how}), first picture after (s): "
                + ", ".join(f"{t:.2f}" for t in joins)
            )
        print(
            f"(d) drawing one 1280x720 frame (off the loop): {draw_cost():.1f} ms;"
            " worst lateness of the clock's ticks while idle with video:"
            f" {video.max_tick_lag * 1000:.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--idle", type=float, default=20.0, help="idle seconds")
    parser.add_argument("--calls", type=int, default=6, help="announcements per rate")
    parser.add_argument("--joins", type=int, default=3, help="joining readers")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
