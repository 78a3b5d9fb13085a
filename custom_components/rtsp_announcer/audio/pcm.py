"""Small operations on s16le mono PCM."""

from __future__ import annotations

import numpy as np

from .models import BYTES_PER_SAMPLE

_INT16_MIN = -32768
_INT16_MAX = 32767


def silence(samples: int) -> bytes:
    """Return `samples` of digital silence."""
    return bytes(samples * BYTES_PER_SAMPLE)


def apply_gain(frame: bytes, gain: float) -> bytes:
    """Scale a frame by `gain`, clipping instead of wrapping around."""
    if gain == 1.0:
        return frame
    if gain <= 0.0:
        return bytes(len(frame))
    scaled = np.frombuffer(frame, dtype="<i2").astype(np.float32) * gain
    return np.clip(scaled, _INT16_MIN, _INT16_MAX).astype("<i2").tobytes()


def volume_to_gain(volume: float) -> float:
    """Map a 0..1 volume level to a linear gain with a perceptual curve.

    A squared curve keeps the low half of a slider useful, as loudness is
    perceived roughly logarithmically.
    """
    level = min(max(volume, 0.0), 1.0)
    return level * level
