"""Volume, gain and the limiter: the one place where loudness is converted.

"Volume" means the same everywhere (the announce action's `volume`, the media
player's volume level, the local voice's `volume` option): a perceptual 0..1
scale whose amplitude gain is volume squared. So 0.5 is -12 dB, 1.0 is unity
and 0 is silence. Everything else works in linear amplitude gain, converted
here at the edge.

Gains above unity (a default gain in dB on a stream, a loud source) would
clip full-scale audio; `Limiter` sits after every gain and brings the peaks
under a ceiling instead, without look-ahead beyond the frame it is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

# Peaks are held 1 dB under full scale: lossy encoders (AAC, Opus) overshoot a
# little on decoding, and a reader must not hear the clipping we avoided here.
DEFAULT_CEILING_DBFS = -1.0
# How fast the gain comes back after a peak: 12 dB of reduction is gone after
# 200 ms. Slower keeps quiet words after a loud chime quiet for too long;
# faster makes the gain follow the waveform of low notes (distortion).
DEFAULT_RELEASE_DB_PER_S = 60.0
# How far ahead inside one frame the gain starts to fall before a peak, so the
# reduction is a short ramp rather than a step.
DEFAULT_ATTACK_MS = 2.0

_FULL_SCALE = 32767.0
_INT16_MAX = 32767


def volume_to_gain(volume: float) -> float:
    """Map a 0..1 volume to a linear amplitude gain: volume squared.

    Loudness is perceived roughly logarithmically; the squared curve keeps the
    low half of a slider useful (0.5 = -12 dB, 0.1 = -40 dB). Out of range
    values are clamped.
    """
    level = min(max(volume, 0.0), 1.0)
    return level * level


def db_to_gain(db: float) -> float:
    """Map a gain in dB to a linear amplitude gain (-inf dB is silence)."""
    if db == -math.inf:
        return 0.0
    return float(10 ** (db / 20))


def gain_to_db(gain: float) -> float:
    """Map a linear amplitude gain to dB (silence is -inf)."""
    return 20 * math.log10(gain) if gain > 0 else -math.inf


@dataclass(slots=True)
class LimiterStats:
    """What the limiter did, for diagnostics, tests and benchmarks.

    Attributes:
        peak: Largest absolute sample written, 0..1 of full scale.
        max_reduction_db: Deepest gain reduction applied (<= 0).
        limited_samples: Samples written with some reduction.
        clipped_samples: Samples written at full scale (should stay 0).
    """

    peak: float = 0.0
    max_reduction_db: float = 0.0
    limited_samples: int = 0
    clipped_samples: int = 0


class Limiter:
    """Apply a gain to s16le mono frames and keep every sample under a ceiling.

    Per sample, the gain reduction needed to keep it under the ceiling is
    computed; the applied reduction falls at once (with a ramp of up to
    `attack_ms` before a peak within the frame) and comes back at
    `release_db_per_s`. The reduction is never less than needed, so no sample
    exceeds the ceiling whatever the gain. Frames at unity gain or below pass
    with a plain multiplication once no reduction is pending: int16 audio
    cannot exceed full scale there.
    """

    def __init__(
        self,
        sample_rate: int,
        *,
        ceiling_dbfs: float = DEFAULT_CEILING_DBFS,
        release_db_per_s: float = DEFAULT_RELEASE_DB_PER_S,
        attack_ms: float = DEFAULT_ATTACK_MS,
    ) -> None:
        """Limit PCM at `sample_rate` Hz to `ceiling_dbfs`."""
        if sample_rate <= 0 or release_db_per_s <= 0 or attack_ms <= 0:
            msg = "sample_rate, release_db_per_s and attack_ms must be positive"
            raise ValueError(msg)
        if ceiling_dbfs > 0:
            msg = "the ceiling cannot be above full scale"
            raise ValueError(msg)
        self.sample_rate = sample_rate
        self._ceiling = _FULL_SCALE * db_to_gain(ceiling_dbfs)
        self._release = release_db_per_s / sample_rate
        # dB per sample of the attack ramp: a full 24 dB reduction in attack_ms.
        self._attack = 24.0 / (attack_ms / 1000 * sample_rate)
        self._reduction_db = 0.0
        self.stats = LimiterStats()

    @property
    def reduction_db(self) -> float:
        """The gain reduction in force after the last frame (<= 0 dB)."""
        return self._reduction_db

    def process(self, frame: bytes, gain: float) -> bytes:
        """Return `frame` scaled by `gain`, limited under the ceiling."""
        if gain <= 0.0:
            self._reduction_db = 0.0
            return bytes(len(frame))
        if gain <= 1.0 and self._reduction_db == 0.0:
            if gain == 1.0:
                return frame
            samples = np.frombuffer(frame, dtype="<i2").astype(np.float32) * gain
            return samples.astype("<i2").tobytes()
        scaled = np.frombuffer(frame, dtype="<i2").astype(np.float64) * gain
        if not scaled.size:
            return frame
        envelope = self._envelope(scaled)
        limited = scaled * (10 ** (envelope / 20))
        # Rounding in the dB arithmetic must not push a peak over: the ceiling
        # is a promise.
        np.clip(limited, -self._ceiling, self._ceiling, out=limited)
        out = np.rint(limited).astype("<i2")
        self._account(out, envelope)
        return out.tobytes()

    def _envelope(self, scaled: NDArray[np.float64]) -> NDArray[np.float64]:
        """The reduction in dB (<= 0) for each sample of the frame."""
        magnitude = np.abs(scaled)
        needed = np.zeros_like(scaled)
        over = magnitude > self._ceiling
        needed[over] = 20 * np.log10(self._ceiling / magnitude[over])
        index = np.arange(scaled.size, dtype=np.float64)
        # Release: r[n] = min(needed[n], r[n-1] + release), unrolled as a
        # running minimum of needed[k] - k * release, the state before the
        # frame counting as sample -1.
        start = self._reduction_db + self._release
        release = np.minimum.accumulate(needed - index * self._release)
        release = np.minimum(release, start) + index * self._release
        # Attack: the gain starts falling before a peak later in the frame,
        # at most `attack` dB per sample ahead of it.
        ahead = needed + index * self._attack
        attack = np.minimum.accumulate(ahead[::-1])[::-1] - index * self._attack
        envelope: NDArray[np.float64] = np.minimum(np.minimum(release, attack), 0.0)
        self._reduction_db = float(envelope[-1])
        return envelope

    def _account(self, out: NDArray[np.int16], envelope: NDArray[np.float64]) -> None:
        stats = self.stats
        wide = np.abs(out.astype(np.int32))
        stats.peak = max(stats.peak, float(wide.max()) / _FULL_SCALE)
        stats.clipped_samples += int(np.count_nonzero(wide >= _INT16_MAX))
        stats.max_reduction_db = min(stats.max_reduction_db, float(envelope.min()))
        stats.limited_samples += int(np.count_nonzero(envelope < 0))
