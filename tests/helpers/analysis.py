"""Pure numpy analysis of received PCM and of its arrival timing.

Samples are int16 (as `ListenReceiver.samples()` returns them) or any real array in
int16 scale: levels are dBFS relative to 32768. Arrivals are the
`(time.monotonic(), cumulative_samples)` pairs the receivers record per chunk read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike, NDArray

FULL_SCALE = 32768.0
SILENCE_DBFS = -200.0
"""Level reported for digital silence (log of zero), far below any threshold."""


def _as_float(samples: ArrayLike) -> NDArray[np.float64]:
    return np.asarray(samples, dtype=np.float64).reshape(-1)


def _window_len(rate: int, window_ms: float) -> int:
    length = round(rate * window_ms / 1000)
    if length < 1:
        msg = f"window of {window_ms} ms is shorter than a sample at {rate} Hz"
        raise ValueError(msg)
    return length


def _to_dbfs(rms: NDArray[np.float64]) -> NDArray[np.float64]:
    with np.errstate(divide="ignore"):
        levels: NDArray[np.float64] = 20.0 * np.log10(rms / FULL_SCALE)
    return np.maximum(levels, SILENCE_DBFS)


def dominant_frequency(samples: ArrayLike, rate: int) -> float:
    """Return the frequency of the strongest spectral peak, in Hz.

    A Hann window keeps leakage low; the peak is refined between FFT bins by
    parabolic interpolation of the log magnitude, so one second of a clean tone is
    accurate to well under 1 Hz.

    Args:
        samples: mono PCM.
        rate: sample rate in Hz.

    Returns:
        The peak frequency, excluding DC.

    Raises:
        ValueError: if there are fewer than 16 samples or only silence.
    """
    x = _as_float(samples)
    if x.size < 16:
        msg = f"need at least 16 samples, got {x.size}"
        raise ValueError(msg)
    x = x - x.mean()
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    spectrum[0] = 0.0
    peak = int(np.argmax(spectrum))
    if spectrum[peak] == 0.0:
        msg = "no spectral peak: the signal is silent"
        raise ValueError(msg)
    offset = 0.0
    if 0 < peak < spectrum.size - 1:
        left, centre, right = np.log(spectrum[peak - 1 : peak + 2] + 1e-12)
        denominator = left - 2.0 * centre + right
        if denominator != 0.0:
            offset = 0.5 * (left - right) / denominator
    return float((peak + offset) * rate / x.size)


def rms_dbfs(samples: ArrayLike) -> float:
    """Return the RMS level in dBFS (a full-scale sine is about -3 dBFS).

    Args:
        samples: mono PCM.

    Returns:
        The level; `SILENCE_DBFS` for digital silence or no samples.
    """
    x = _as_float(samples)
    if x.size == 0:
        return SILENCE_DBFS
    rms = np.array([math.sqrt(float(np.mean(x * x)))])
    return float(_to_dbfs(rms)[0])


def rms_windows(samples: ArrayLike, rate: int, window_ms: float) -> NDArray[np.float64]:
    """Return the RMS level in dBFS of consecutive, non-overlapping windows.

    Args:
        samples: mono PCM.
        rate: sample rate in Hz.
        window_ms: window length; a last partial window is dropped.

    Returns:
        One level per window; window i covers [i, i + 1) * window_ms.
    """
    x = _as_float(samples)
    length = _window_len(rate, window_ms)
    count = x.size // length
    frames = x[: count * length].reshape(count, length)
    return _to_dbfs(np.sqrt(np.mean(frames * frames, axis=1)))


def tone_levels(
    samples: ArrayLike, rate: int, freq: float, *, window_ms: float = 20.0
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Measure a tone per window: its level and its share of the window's energy.

    The tone's energy is the Hann-windowed spectrum within two bins of `freq` (the
    main lobe); the share is that energy over the whole window's.

    Args:
        samples: mono PCM.
        rate: sample rate in Hz.
        freq: tone frequency in Hz.
        window_ms: window length.

    Returns:
        (level in dBFS of the tone component, share in 0..1) per window.
    """
    x = _as_float(samples)
    length = _window_len(rate, window_ms)
    count = x.size // length
    frames = x[: count * length].reshape(count, length)
    frames = frames - frames.mean(axis=1, keepdims=True)
    window = np.hanning(length)
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    bin_hz = rate / length
    centre = freq / bin_hz
    low = max(math.floor(centre - 2.0), 1)
    high = min(math.ceil(centre + 2.0), power.shape[1] - 1)
    band = power[:, low : high + 1].sum(axis=1)
    total = power[:, 1:].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, band / total, 0.0)
    # Parseval for a Hann-windowed frame: sum |X|^2 = N * sum (x w)^2, and the mean
    # of w^2 is 3/8; one-sided spectrum, so twice the band.
    band_rms = np.sqrt(2.0 * band / (length * length * 0.375))
    return _to_dbfs(band_rms), share


def tone_segments(
    samples: ArrayLike,
    rate: int,
    freq: float,
    *,
    window_ms: float = 20.0,
    threshold_db: float = -50.0,
    min_share: float = 0.5,
    max_gap_ms: float = 0.0,
) -> list[tuple[float, float]]:
    """Return (start, end) seconds of the stretches where a tone at `freq` is present.

    A window counts when the tone's level is at least `threshold_db` dBFS and it
    carries at least `min_share` of the window's energy (so noise, speech or another
    tone at the same loudness does not count). Times are window-aligned.

    Args:
        samples: mono PCM.
        rate: sample rate in Hz.
        freq: tone frequency in Hz.
        window_ms: window length; resolution of the result.
        threshold_db: minimum tone level in dBFS.
        min_share: minimum share of the window's energy in the tone's band.
        max_gap_ms: join segments separated by at most this much.

    Returns:
        Segments in order; empty if the tone never appears.
    """
    levels, share = tone_levels(samples, rate, freq, window_ms=window_ms)
    mask = (levels >= threshold_db) & (share >= min_share)
    present = [bool(v) for v in mask]
    window_s = _window_len(rate, window_ms) / rate
    segments: list[tuple[float, float]] = []
    start: int | None = None
    for index, on in enumerate([*present, False]):
        if on and start is None:
            start = index
        elif not on and start is not None:
            segments.append((start * window_s, index * window_s))
            start = None
    merged: list[tuple[float, float]] = []
    for segment in segments:
        if merged and segment[0] - merged[-1][1] <= max_gap_ms / 1000 + 1e-9:
            merged[-1] = (merged[-1][0], segment[1])
        else:
            merged.append(segment)
    return merged


def tone_seconds(
    samples: ArrayLike, rate: int, freq: float, *, max_gap_ms: float = 60.0
) -> float:
    """Return how many seconds of a tone at `freq` were heard, in all its segments."""
    segments = tone_segments(samples, rate, freq, max_gap_ms=max_gap_ms)
    return sum(end - begin for begin, end in segments)


def first_onset(
    samples: ArrayLike, rate: int, threshold_dbfs: float, *, window_ms: float = 5.0
) -> float | None:
    """Return the start time in seconds of the first window at or above a level.

    Args:
        samples: mono PCM.
        rate: sample rate in Hz.
        threshold_dbfs: RMS level that counts as sound.
        window_ms: window length; resolution of the result.

    Returns:
        Seconds from the first sample, or None if no window reaches the level.
    """
    levels = rms_windows(samples, rate, window_ms)
    loud = np.flatnonzero(levels >= threshold_dbfs)
    if loud.size == 0:
        return None
    return float(loud[0]) * _window_len(rate, window_ms) / rate


def arrival_gaps(
    arrivals: Sequence[tuple[float, int]], threshold_s: float
) -> list[float]:
    """Return the pauses between consecutive chunk arrivals longer than threshold_s.

    Args:
        arrivals: (monotonic time, cumulative samples) per chunk.
        threshold_s: seconds.

    Returns:
        The long gaps in seconds, in order.
    """
    times = np.array([t for t, _ in arrivals], dtype=np.float64)
    gaps = np.diff(times)
    return [float(g) for g in gaps[gaps > threshold_s]]


@dataclass(frozen=True)
class Continuity:
    """How the received audio kept up with the wall clock.

    Attributes:
        wall_s: seconds between the first and the last arrival considered.
        audio_s: seconds of audio that arrived in that time (after the first chunk).
        ratio: audio_s / wall_s; 1.0 is real time.
        slope_ratio: least-squares slope of samples over time, divided by the rate;
            less sensitive to the jitter of the first and last chunk than `ratio`.
        drift_s: audio_s - wall_s (negative: the stream fell behind).
        max_gap_s: longest pause between two arrivals.
        chunks: number of arrivals considered.
    """

    wall_s: float
    audio_s: float
    ratio: float
    slope_ratio: float
    drift_s: float
    max_gap_s: float
    chunks: int


def continuity(
    arrivals: Sequence[tuple[float, int]],
    rate: int,
    *,
    skip_s: float = 0.0,
    until_s: float | None = None,
) -> Continuity:
    """Compare the samples received with the wall time they took to arrive.

    With AAC over RTSP a chunk is one packet (~40 ms), so `ratio` over 5 s carries
    about +-1 % of end-point jitter; `slope_ratio` stays within ~0.1 % of 1.0 for a
    real-time stream.

    Args:
        arrivals: (monotonic time, cumulative samples) per chunk.
        rate: sample rate of the samples in Hz.
        skip_s: ignore arrivals in the first skip_s seconds (start-up bursts).
        until_s: ignore arrivals later than this many seconds after the first.

    Returns:
        The statistics.

    Raises:
        ValueError: with fewer than two arrivals in the span.
    """
    data = np.array(arrivals, dtype=np.float64).reshape(-1, 2)
    if data.shape[0] == 0:
        msg = "no arrivals"
        raise ValueError(msg)
    elapsed = data[:, 0] - data[0, 0]
    keep = elapsed >= skip_s
    if until_s is not None:
        keep &= elapsed <= until_s
    span = data[keep]
    if span.shape[0] < 2:
        msg = f"need two arrivals in the span, got {span.shape[0]}"
        raise ValueError(msg)
    times, counts = span[:, 0], span[:, 1]
    wall = float(times[-1] - times[0])
    audio = float(counts[-1] - counts[0]) / rate
    slope = float(np.polyfit(times - times[0], counts, 1)[0]) / rate
    return Continuity(
        wall_s=wall,
        audio_s=audio,
        ratio=audio / wall if wall > 0 else math.inf,
        slope_ratio=slope,
        drift_s=audio - wall,
        max_gap_s=float(np.diff(times).max()),
        chunks=int(span.shape[0]),
    )


def sine_snr(pcm: bytes, freq: float, rate: int) -> float:
    """SNR in dB of a sine: least-squares fit, everything else is noise."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    # The ends hold the filter's start-up and tail.
    edge = rate // 20
    samples = samples[edge:-edge]
    t = (np.arange(len(samples)) + edge) / rate
    basis = np.stack(
        [np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t), np.ones_like(t)],
        axis=1,
    )
    coef, *_ = np.linalg.lstsq(basis, samples, rcond=None)
    fit = basis @ coef
    noise = samples - fit
    return float(10 * np.log10(np.sum(fit**2) / np.sum(noise**2)))
