"""Speech onsets: where speech starts in decoded PCM, and when it reached a receiver."""

from __future__ import annotations

import asyncio
import bisect
import math
from typing import TYPE_CHECKING

import numpy as np

from tests.helpers.analysis import rms_windows

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from tests.helpers.rtsp import ListenReceiver

# Speech is where a 5 ms window reaches -40 dBFS: the silence padding decodes
# to exact zeros and espeak's windows have a median near -25 dBFS, so the
# threshold sits far from both and another one would move the onset by a
# window or two.
ONSET_DBFS = -40.0
WINDOW_MS = 5.0
# After playback stops, speech already handed to ffmpeg keeps arriving for the
# pipeline delay (~0.2 s at 24 kHz, less at 48 kHz); the next call waits that
# out so its onset cannot be the previous call's tail.
SETTLE_S = 0.35
QUIET_S = 0.15


def window_samples(rate: int) -> int:
    return round(rate * WINDOW_MS / 1000)


def onset_index(samples: NDArray[np.int16], rate: int) -> int | None:
    """First sample of the first window loud enough to be speech."""
    levels = rms_windows(samples, rate, WINDOW_MS)
    loud = np.flatnonzero(levels >= ONSET_DBFS)
    if loud.size == 0:
        return None
    return int(loud[0]) * window_samples(rate)


def lead_ms(pcm: bytes, rate: int) -> float:
    """Silence at the start of synthesised audio, by the same onset rule."""
    start = onset_index(np.frombuffer(pcm, dtype="<i2").astype(np.int16), rate)
    return math.nan if start is None else start / rate * 1000


def arrival_time(receiver: ListenReceiver, sample: int) -> float:
    """When the chunk holding `sample` (an index into all samples) was read."""
    arrivals = receiver.arrivals
    index = bisect.bisect_left(arrivals, sample + 1, key=lambda arrival: arrival[1])
    return arrivals[index][0]


async def heard_at(
    receiver: ListenReceiver,
    base: int,
    timeout: float,  # noqa: ASYNC109
) -> float | None:
    """Monotonic time the first speech after sample `base` reached the receiver."""
    loop = asyncio.get_running_loop()
    rate = receiver.rate
    deadline = loop.time() + timeout
    # One AAC packet is 40 ms; checking every 20 ms of audio adds no delay to
    # the figure (arrival times are recorded by the receiver, not here).
    step = rate // 50
    seen = base
    while (remaining := deadline - loop.time()) > 0:
        try:
            await receiver.wait_for_samples(seen + step, timeout=remaining)
        except TimeoutError:
            return None
        seen = receiver.total_samples
        start = onset_index(receiver.samples()[base:seen], rate)
        if start is not None:
            # The loud window is complete once its last sample has arrived.
            return arrival_time(receiver, base + start + window_samples(rate) - 1)
    return None


async def settle(receiver: ListenReceiver) -> None:
    """Wait until what ffmpeg still held has arrived and the tail is quiet."""
    rate = receiver.rate
    await receiver.wait_for_samples(
        receiver.total_samples + int(rate * SETTLE_S), timeout=10
    )
    for _ in range(100):
        tail = receiver.samples()[-int(rate * QUIET_S) :]
        if onset_index(tail, rate) is None:
            return
        await receiver.wait_for_samples(receiver.total_samples + rate // 20, timeout=10)
