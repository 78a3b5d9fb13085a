"""One volume scale and the limiter after every gain.

The chime is the one the integration ships, decoded by the real ffmpeg and
raised to full scale; the limiter is measured where it runs, in the queue.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from custom_components.rtsp_announcer.audio.gain import (
    DEFAULT_CEILING_DBFS,
    Limiter,
    db_to_gain,
    gain_to_db,
    volume_to_gain,
)
from custom_components.rtsp_announcer.audio.playback import (
    PlaybackItem,
    PlaybackQueue,
)

RATE = 24000
FRAME = 480  # 20 ms, the default frame period
CHIME = (
    Path(__file__).parents[2]
    / "custom_components"
    / "rtsp_announcer"
    / "sounds"
    / "chime.flac"
)
CEILING = 32767 * 10 ** (DEFAULT_CEILING_DBFS / 20)


def pcm(samples: NDArray[np.float64]) -> bytes:
    return np.rint(samples).astype("<i2").tobytes()


def samples_of(data: bytes) -> NDArray[np.int16]:
    return np.frombuffer(data, dtype="<i2")


def full_scale_chime() -> NDArray[np.int16]:
    """The shipped chime at 24 kHz, normalised so its peak is full scale."""
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg is not None
    argv = [ffmpeg, "-v", "error", "-i", str(CHIME), "-f", "s16le", "-ac", "1"]
    decoded = subprocess.run(
        [*argv, "-ar", str(RATE), "pipe:1"],
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    raw = samples_of(decoded).astype(np.float64)
    chime: NDArray[np.int16] = np.rint(raw / np.abs(raw).max() * 32767).astype(np.int16)
    assert int(np.abs(chime.astype(np.int32)).max()) == 32767
    return chime


def rms_db(samples: NDArray[np.int16]) -> float:
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    return 20 * math.log10(rms / 32768)


def test_one_volume_scale() -> None:
    # Perceptual 0..1: amplitude gain is volume squared.
    assert volume_to_gain(1.0) == 1.0
    assert volume_to_gain(0.0) == 0.0
    assert volume_to_gain(0.5) == 0.25
    assert gain_to_db(volume_to_gain(0.5)) == pytest.approx(-12.04, abs=0.01)
    assert gain_to_db(volume_to_gain(0.1)) == pytest.approx(-40.0)
    # Out of range is clamped, never louder than unity.
    assert volume_to_gain(2.0) == 1.0
    assert volume_to_gain(-1.0) == 0.0
    assert db_to_gain(0.0) == 1.0
    assert db_to_gain(12.0) == pytest.approx(3.981, abs=0.001)
    assert db_to_gain(-math.inf) == 0.0
    assert gain_to_db(0.0) == -math.inf


def test_unity_and_below_pass_untouched() -> None:
    limiter = Limiter(RATE)
    frame = pcm(np.full(FRAME, 32767.0))
    assert limiter.process(frame, 1.0) is frame
    assert samples_of(limiter.process(frame, 0.25)).tolist() == [8191] * FRAME
    assert limiter.process(frame, 0.0) == bytes(len(frame))
    assert limiter.process(b"", 4.0) == b""
    assert limiter.stats.limited_samples == 0
    assert limiter.reduction_db == 0.0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        Limiter(0)
    with pytest.raises(ValueError, match="above full scale"):
        Limiter(RATE, ceiling_dbfs=1.0)


async def test_full_scale_chime_at_plus_12_db_is_not_clipped() -> None:
    chime = full_scale_chime()
    queue = PlaybackQueue()
    loud = PlaybackItem(sample_rate=RATE, gain=db_to_gain(12.0))
    plain = PlaybackItem(sample_rate=RATE)
    queue.add(loud)
    queue.add(plain)
    for item in (loud, plain):
        await item.feed(chime.tobytes())
        item.end()
    frames = -(-chime.size // FRAME)
    limited = samples_of(b"".join(queue.read(FRAME) or b"" for _ in range(frames)))
    stats = queue.limiter.stats if queue.limiter else None
    assert stats is not None
    # The second (unity) chime starts once the release is over: measure it on
    # a fresh queue so that the limiter's release from the first is no part.
    unity_queue = PlaybackQueue()
    unity = PlaybackItem(sample_rate=RATE)
    unity_queue.add(unity)
    await unity.feed(chime.tobytes())
    unity.end()
    reference = samples_of(
        b"".join(unity_queue.read(FRAME) or b"" for _ in range(frames))
    )

    peak = int(np.abs(limited.astype(np.int32)).max())
    clipped = int(np.count_nonzero(np.abs(limited.astype(np.int32)) >= 32767))
    naive = np.clip(chime.astype(np.float64) * db_to_gain(12.0), -32768, 32767)
    naive_clipped = int(np.count_nonzero(np.abs(naive) >= 32767))
    report = (
        f"+12 dB on a full-scale chime ({chime.size} samples): peak {peak}"
        f" ({gain_to_db(peak / 32767):.2f} dBFS), clipped {clipped}"
        f" (without the limiter {naive_clipped}), gain reduction"
        f" {stats.max_reduction_db:.2f} dB at most on {stats.limited_samples}"
        f" samples, loudness {rms_db(limited):.1f} dBFS RMS against"
        f" {rms_db(reference):.1f} at unity"
    )
    assert clipped == 0, report
    assert stats.clipped_samples == 0, report
    assert peak <= CEILING + 0.5, report
    # Without it, most of the chime would be flattened against full scale.
    assert naive_clipped > chime.size // 10, report
    # The gain is really there where it fits: louder than unity, not crushed
    # back to it, and reduced by about what the peaks need (12 + 1 dB).
    assert rms_db(limited) - rms_db(reference) > 3, report
    assert stats.max_reduction_db == pytest.approx(-13.0, abs=0.1), report
    print(report)  # noqa: T201


def test_the_gain_comes_back_after_a_peak() -> None:
    limiter = Limiter(RATE)
    t = np.arange(RATE) / RATE
    burst = 32767 * np.sin(2 * np.pi * 440 * t[:FRAME])
    quiet = 3000 * np.sin(2 * np.pi * 440 * t)
    gain = db_to_gain(12.0)
    out = samples_of(limiter.process(pcm(burst), gain))
    assert np.abs(out.astype(np.int32)).max() <= CEILING + 0.5
    assert limiter.reduction_db == pytest.approx(-13.0, abs=0.5)
    # 60 dB/s: 13 dB of reduction is gone after ~217 ms; from then on the
    # quiet tone (-9 dBFS at +12 dB) passes at the full gain.
    after = [
        samples_of(limiter.process(pcm(quiet[start : start + FRAME]), gain))
        for start in range(0, quiet.size, FRAME)
    ]
    tail = np.concatenate(after)[RATE // 2 :]
    assert limiter.reduction_db == 0.0
    assert np.abs(tail.astype(np.int32)).max() == pytest.approx(3000 * gain, rel=0.01)
    # Now below unity again the plain path is taken.
    frame = pcm(quiet[:FRAME])
    assert limiter.process(frame, 1.0) is frame


def test_reduction_ramps_in_before_a_peak_in_the_frame() -> None:
    limiter = Limiter(RATE, attack_ms=2.0)
    frame = np.full(FRAME, 4000.0)
    frame[-1] = 32767.0
    out = samples_of(limiter.process(pcm(frame), db_to_gain(12.0)))
    # The peak itself is held at the ceiling; the samples just before it are
    # already turned down a little, the ones long before not at all.
    assert abs(int(out[-1])) <= CEILING + 0.5
    assert int(out[0]) == round(4000 * db_to_gain(12.0))
    assert int(out[-2]) < round(4000 * db_to_gain(12.0))
