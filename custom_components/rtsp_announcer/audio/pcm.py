"""Small operations on s16le mono PCM."""

from __future__ import annotations

import numpy as np

from .models import BYTES_PER_SAMPLE

_INT16_MIN = -32768
_INT16_MAX = 32767

# Leading silence: what counts as sound, how much silence to keep before it,
# and the most a trimmer drops.
DEFAULT_TRIM_THRESHOLD_DBFS = -50.0
DEFAULT_TRIM_KEEP_MS = 5.0
DEFAULT_TRIM_MAX_MS = 1000.0


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


class LeadingSilenceTrimmer:
    """Drop the silence before the first audible sample of a stream of PCM.

    Voices start with silence of their own: espeak-ng leaves 12 ms before a
    vowel and ~50 ms before a plosive (its closure), other TTS services often
    more. Fed the chunks of one utterance in order, `process()` drops samples
    until the first one louder than `threshold_dbfs`, keeps `keep_ms` before
    it so the onset is not clipped, then passes everything through unchanged.

    The output is the input from sample `start` on, whatever the chunking:
    `start = min(max(0, onset - keep), limit)`, where `onset` is the index of
    the first loud sample (the input's length if there is none) and `limit`
    is `max_ms` worth of samples. So at most `max_ms` is dropped: a stream of
    silence, or a very quiet voice, is delayed by at most that, not swallowed.
    While trimming, at most `keep_ms` of audio (and an odd byte) is held back;
    `flush()` returns it when the stream ends before anything loud.

    Use one trimmer per utterance, or `reset()` it: pauses inside speech are
    natural and are not trimmed.
    """

    def __init__(
        self,
        sample_rate: int,
        *,
        threshold_dbfs: float = DEFAULT_TRIM_THRESHOLD_DBFS,
        keep_ms: float = DEFAULT_TRIM_KEEP_MS,
        max_ms: float = DEFAULT_TRIM_MAX_MS,
    ) -> None:
        """Trim s16le mono PCM at `sample_rate` Hz.

        Args:
            sample_rate: Samples per second of the PCM.
            threshold_dbfs: A sample louder than this (relative to full scale)
                is speech; the default -50 dBFS is well above dither and
                codec noise, well below any voice.
            keep_ms: Silence kept before the first loud sample.
            max_ms: Most audio dropped from the start of one stream.
        """
        if sample_rate <= 0 or keep_ms < 0 or max_ms < 0:
            msg = "sample_rate must be positive, keep_ms and max_ms not negative"
            raise ValueError(msg)
        self._threshold = _INT16_MAX * 10 ** (threshold_dbfs / 20)
        self._keep = round(sample_rate * keep_ms / 1000)
        self._limit = round(sample_rate * max_ms / 1000)
        self._held = b""
        self._dropped = 0
        self._trimming = True

    @property
    def trimming(self) -> bool:
        """Whether audio is still being dropped (nothing loud seen yet)."""
        return self._trimming

    @property
    def dropped_samples(self) -> int:
        """Samples dropped so far."""
        return self._dropped

    def reset(self) -> None:
        """Start over for a new utterance; audio held back is forgotten."""
        self._held = b""
        self._dropped = 0
        self._trimming = True

    def process(self, chunk: bytes) -> bytes:
        """Take the next chunk; return what of it (and of earlier ones) to play."""
        if not self._trimming:
            return chunk
        data = self._held + chunk
        count = len(data) // BYTES_PER_SAMPLE
        samples = np.frombuffer(data, dtype="<i2", count=count)
        loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > self._threshold)
        room = self._limit - self._dropped
        if loud.size:
            drop = min(max(0, int(loud[0]) - self._keep), room)
        else:
            drop = min(max(0, count - self._keep), room)
        self._dropped += drop
        rest = data[drop * BYTES_PER_SAMPLE :]
        if loud.size or drop == room:
            self._held = b""
            self._trimming = False
            return rest
        self._held = rest
        return b""

    def flush(self) -> bytes:
        """End of the stream: return the audio held back, if any."""
        held, self._held = self._held, b""
        self._trimming = False
        return held
