"""Streaming, band-limited resampling of s16le mono PCM.

espeak-ng always produces 22050 Hz; streams run at 8-48 kHz. Linear
interpolation (audioop, numpy.interp) aliases badly above a few kHz, so this
uses libswresample through PyAV, which Home Assistant already ships for its
`stream` integration. Fed chunk by chunk it holds back less than a millisecond
of audio and its output equals a one-shot conversion sample for sample.
"""

from __future__ import annotations

import av
import numpy as np

from .exceptions import InvalidOptionError
from .models import BYTES_PER_SAMPLE

MIN_RATE = 8000
MAX_RATE = 48000

_FORMAT = "s16"
_LAYOUT = "mono"


def _check_rate(name: str, rate: int, low: int, high: int) -> None:
    if isinstance(rate, bool) or not isinstance(rate, int) or not low <= rate <= high:
        msg = f"{name} must be an integer from {low} to {high} Hz, got {rate!r}"
        raise InvalidOptionError(msg)


class StreamResampler:
    """Converts a PCM stream from one rate to another, chunk by chunk.

    Feed chunks of any size with `process`, then call `flush` once at the end
    of the stream for the tail that the filter still holds. After `flush` the
    resampler starts afresh, ready for another stream.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        """Prepare a conversion from `in_rate` to `out_rate` (both in Hz).

        Raises:
            InvalidOptionError: a rate is outside 8000..192000 (input) or
                8000..48000 (output).
        """
        _check_rate("in_rate", in_rate, MIN_RATE, 192000)
        _check_rate("out_rate", out_rate, MIN_RATE, MAX_RATE)
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._resampler: av.AudioResampler | None = None
        # An odd byte split across chunks must wait for its other half.
        self._carry = b""

    @property
    def identity(self) -> bool:
        """Whether the rates are equal and audio passes through untouched."""
        return self.in_rate == self.out_rate

    def process(self, pcm: bytes) -> bytes:
        """Convert one chunk; returns what is ready (may be empty)."""
        if self._carry:
            pcm = self._carry + pcm
            self._carry = b""
        if len(pcm) % BYTES_PER_SAMPLE:
            pcm, self._carry = pcm[:-1], pcm[-1:]
        if not pcm or self.identity:
            return pcm
        if self._resampler is None:
            self._resampler = av.AudioResampler(
                format=_FORMAT, layout=_LAYOUT, rate=self.out_rate
            )
        samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format=_FORMAT, layout=_LAYOUT)
        frame.sample_rate = self.in_rate
        return self._collect(self._resampler.resample(frame))

    def flush(self) -> bytes:
        """Return the tail of the stream and reset for the next one."""
        # A lone trailing byte is half a sample: nothing can be made of it.
        self._carry = b""
        resampler, self._resampler = self._resampler, None
        if resampler is None:
            return b""
        return self._collect(resampler.resample(None))

    @staticmethod
    def _collect(frames: list[av.AudioFrame]) -> bytes:
        return b"".join(
            frame.to_ndarray().astype("<i2", copy=False).tobytes() for frame in frames
        )


def resample(pcm: bytes, in_rate: int, out_rate: int) -> bytes:
    """Convert a whole s16le mono buffer from `in_rate` to `out_rate`."""
    resampler = StreamResampler(in_rate, out_rate)
    return resampler.process(pcm) + resampler.flush()
