"""Run the real clock feeding a real ffmpeg publisher; measure at the receiver.

    .venv/bin/python -m benchmarks.clock [--seconds 60] [--transport socket|pipe]

The RTSP server is ffmpeg's own listener on a free loopback port
(`tests.helpers.rtsp.ListenReceiver`), which decodes what arrives and notes when
each chunk arrived. Drift is taken from what the receiver got: the samples
received against the receiver's own wall clock over the run (after a settling
second), as a total and as a rate (the slope of samples over time, in parts
per million). Also printed: stretches over 100 ms without data at the receiver,
the longest one, and event-loop lag with and without the clock. The writer's
own counters are printed last, for comparison only.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics

from custom_components.rtsp_announcer.audio.models import StreamSettings
from custom_components.rtsp_announcer.audio.options import Codec, PcmTransport
from custom_components.rtsp_announcer.audio.stream import AudioStream
from tests.helpers.analysis import arrival_gaps, continuity
from tests.helpers.rtsp import ListenReceiver

PROBE_PERIOD = 0.01
GAP_S = 0.1
SETTLE_S = 1.0


async def loop_lag(seconds: float, into: list[float] | None = None) -> list[float]:
    """Oversleep of a 10 ms timer, in ms: how late the loop runs callbacks.

    With `into`, the figures are appended there as they come (for a caller that
    reads them while the probe still runs).
    """
    loop = asyncio.get_running_loop()
    lags: list[float] = [] if into is None else into
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
    async with ListenReceiver(rate=rate) as receiver:
        baseline = await loop_lag(min(seconds / 4, 10))
        stream = AudioStream(
            StreamSettings(
                url=receiver.url,
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
            await receiver.wait_for_samples(1, timeout=30)
            lags = await loop_lag(seconds)
            arrivals = list(receiver.arrivals)
            stats = stream.clock.stats
            produced = stream.clock.samples_produced
            expected = stream.clock.due()
        finally:
            await stream.stop()
    print(f"transport {transport}, codec {codec}, {rate} Hz")
    kept = continuity(arrivals, rate, skip_s=SETTLE_S)
    ppm = (kept.slope_ratio - 1) * 1e6
    print(
        f"at the receiver over {kept.wall_s:.1f} s of its wall clock: "
        f"{kept.audio_s:.3f} s of audio received, drift "
        f"{kept.drift_s * 1000:+.1f} ms (one AAC packet is ~43 ms), rate "
        f"{ppm:+.0f} ppm ({ppm * 3.6:+.0f} ms/hour)"
    )
    gaps = arrival_gaps(arrivals, GAP_S)
    print(
        f"stretches over {GAP_S * 1000:.0f} ms without data: {len(gaps)} "
        f"(the first {SETTLE_S:.0f} s included), longest "
        f"{kept.max_gap_s * 1000:.0f} ms after the first second"
    )
    print(
        f"loop lag without clock p50 {percentile(baseline, 50):.2f} ms "
        f"p99 {percentile(baseline, 99):.2f} ms; with clock "
        f"p50 {percentile(lags, 50):.2f} ms p99 {percentile(lags, 99):.2f} ms "
        f"(mean {statistics.fmean(lags):.2f} ms)"
    )
    print(
        f"the writer's own count, for comparison: {produced} samples against "
        f"{expected} due ({(produced - expected) / rate * 1000:+.1f} ms); frames "
        f"written {stats.frames_written}, dropped {stats.frames_dropped}, "
        f"late>5ms {stats.frames_late}, underruns {stats.underruns}"
    )


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
