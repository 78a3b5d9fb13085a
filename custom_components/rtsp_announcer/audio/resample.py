"""Streaming, band-limited resampling of s16le mono PCM.

espeak-ng always produces 22050 Hz; streams run at 8-48 kHz. Linear
interpolation (audioop, numpy.interp) aliases badly above a few kHz, so this is
a polyphase windowed-sinc resampler. It needs numpy alone, which Home Assistant
itself depends on: an integration must not pin the versions of libraries that
Home Assistant pins and changes from release to release.

The filter is a Kaiser-windowed sinc (beta 9, ~90 dB down in the stop band) that
reaches 32 samples of the lower of the two rates either side of each output
instant, with the middle of its transition band on the lower rate's Nyquist
frequency: from 22050 Hz it passes 10 kHz untouched and rejects the images of
10 kHz by ~90 dB. Output sample n is the band-limited input at time
n / out_rate, so the output is not shifted; what a stream waits for is the
filter's look-ahead, 32 input samples (1.45 ms) from 22050 Hz to any higher rate.

Every coefficient is a multiple of 2**-32 and every sample an integer of at
most 2**15 in magnitude, so each sum of products is exact in float64 whatever
order BLAS adds it in. A stream fed chunk by chunk therefore gives the same
bytes as a one-shot conversion, sample for sample.
"""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .exceptions import InvalidOptionError
from .models import BYTES_PER_SAMPLE

MIN_RATE = 8000
MAX_RATE = 48000
_MAX_IN_RATE = 192000

# Reach of the filter either side of an output instant, in samples of the lower
# rate: 64 taps give a transition band ~9 % of that rate wide.
_HALF_WIDTH = 32
# Stop band ~90 dB down: below the int16 noise floor of speech-level audio.
_BETA = 9.0
# Up to this many taps (2048 phases of 64; 11025 -> 32000 has 1280 phases) the
# table is exact. Beyond it (odd pairs such as 44101 -> 48000) outputs are
# interpolated between tabulated phases, `_INTERPOLATED_PHASES` per input
# period, fewer when downsampling stretches the filter: error below -120 dB.
_MAX_TAPS = 1 << 17
_INTERPOLATED_PHASES = 1024
# Coefficients are multiples of 2**-_COEF_BITS. A phase's taps sum in magnitude
# to about 1.2, far below 2**(53 - 15 - _COEF_BITS), so no partial sum of
# products of int16 samples needs more than float64's 53 bits.
_COEF_BITS = 32
# A period shorter than this many outputs is widened to a multiple of itself,
# so that each matrix product covers enough outputs to keep BLAS efficient
# (22050 -> 44100 has a period of 2).
_MIN_PERIOD = 64
# Multiply-adds per matrix product. Small products stay in the CPU cache, and
# OpenBLAS runs products this small on the calling thread: larger ones wake its
# thread pool, which on a busy two-core machine made a conversion several times
# slower (and would spin on the cores Home Assistant's event loop needs).
_SMALL_PRODUCT = 1 << 18
# Gathered inputs and taps per step of the interpolated kernel (512 KiB each).
_BLOCK_ELEMENTS = 1 << 16
_INT16_MIN = -32768
_INT16_MAX = 32767

type _Floats = npt.NDArray[np.float64]


def _check_rate(name: str, rate: int, low: int, high: int) -> None:
    if isinstance(rate, bool) or not isinstance(rate, int) or not low <= rate <= high:
        msg = f"{name} must be an integer from {low} to {high} Hz, got {rate!r}"
        raise InvalidOptionError(msg)


def _taps(fractions: _Floats, reach: int, cutoff: float) -> _Floats:
    """Filter taps for outputs a fraction of an input period after an input.

    Args:
        fractions: where each output falls after the input at or before it,
            in input periods, from 0 to 1.
        reach: input samples either side of the output that the filter covers.
        cutoff: middle of the transition band, relative to the input Nyquist.

    Returns:
        One row of `2 * reach` taps per fraction, for the inputs from `reach - 1`
        before the one at or before the output to `reach` after it. Each row sums
        to 1 so that no phase changes the level of low frequencies, and is
        rounded to multiples of 2**-_COEF_BITS so that sums are exact.
    """
    offsets = fractions[:, np.newaxis] + (reach - 1 - np.arange(2 * reach))
    position = offsets / reach
    window = np.i0(_BETA * np.sqrt(np.clip(1.0 - position * position, 0.0, None)))
    taps: _Floats = np.sinc(cutoff * offsets) * window
    taps /= taps.sum(axis=1, keepdims=True)
    rounded: _Floats = np.ldexp(np.rint(np.ldexp(taps, _COEF_BITS)), -_COEF_BITS)
    rounded.flags.writeable = False
    return rounded


class _Kernel(ABC):
    """The filter of one rate pair: which outputs are ready, and computing them.

    Output n sits at input time n * down / up. Its taps start `reach - 1` inputs
    before the input at or before that time and end `reach` inputs after it.
    """

    def __init__(self, up: int, down: int, reach: int) -> None:
        self.up = up
        self.down = down
        self.reach = reach
        self.width = 2 * reach

    def ready(self, fed: int) -> int:
        """Return how many outputs have all their inputs once `fed` have come."""
        return max(0, -(-(fed - self.reach) * self.up // self.down))

    def total(self, fed: int) -> int:
        """Return how many outputs a stream of `fed` inputs makes."""
        return -(-fed * self.up // self.down)

    def first_input(self, output: int) -> int:
        """Return the first input that computing `output` and later ones reads."""
        return output * self.down // self.up - self.reach + 1

    @abstractmethod
    def run(self, pending: _Floats, start: int, first: int, stop: int) -> _Floats:
        """Compute outputs `first` to `stop` (exclusive) as a fresh array.

        `pending[0]` is input `start`, at most `first_input(first)`. Inputs past
        the end of `pending` count as silence.
        """


@dataclass(frozen=True, slots=True, eq=False)
class _Group:
    """Adjacent outputs of a period, computed by one matrix product."""

    first: int
    stop: int
    offset: int
    """First input the group reads, relative to the period's first input."""
    matrix: _Floats
    """Inputs x outputs; zero where an output's taps do not reach."""
    rows_per_product: int


class _PeriodicKernel(_Kernel):
    """Exact polyphase filter: outputs repeat their phases every `period` outputs.

    Period q reads the inputs from `q * period_in` on, so a run of whole periods
    is the product of a strided view of the input (a row per period) with a
    table of taps. The table is split into groups of adjacent outputs so that
    each product reads only the inputs its outputs reach.
    """

    def __init__(self, up: int, down: int, reach: int, cutoff: float) -> None:
        super().__init__(up, down, reach)
        widen = -(-_MIN_PERIOD // up)
        self.period = up * widen
        self.period_in = down * widen
        outputs = np.arange(self.period)
        bases = outputs * down // up
        table = _taps(np.arange(up) / up, reach, cutoff)[outputs * down % up]
        # A group whose outputs spread over about one filter width of inputs
        # costs about two filter widths of multiply-adds per output, while a
        # handful of products still cover a whole period.
        count = -(-self.period // max(1, self.width * up // down))
        size = -(-self.period // count)
        spread = np.arange(self.width)
        groups = []
        for first in range(0, self.period, size):
            stop = min(first + size, self.period)
            rows = (bases[first:stop] - bases[first])[:, np.newaxis] + spread
            columns = np.broadcast_to(
                np.arange(stop - first)[:, np.newaxis], rows.shape
            )
            matrix = np.zeros((int(rows[-1, -1]) + 1, stop - first))
            matrix[rows, columns] = table[first:stop]
            matrix.flags.writeable = False
            per_product = max(1, _SMALL_PRODUCT // matrix.size)
            groups.append(_Group(first, stop, int(bases[first]), matrix, per_product))
        self.groups = tuple(groups)
        self.extent = int(bases[-1]) + self.width

    def first_input(self, output: int) -> int:
        """Return the first input that computing `output` and later ones reads."""
        # Runs start at a whole period: keep the inputs of all of it.
        return output // self.period * self.period_in - self.reach + 1

    def run(self, pending: _Floats, start: int, first: int, stop: int) -> _Floats:
        """Compute outputs `first` to `stop` (exclusive) as a fresh array."""
        period, period_in = self.period, self.period_in
        row_first = first // period
        rows = -(-stop // period) - row_first
        origin = row_first * period_in - self.reach + 1 - start
        needed = origin + (rows - 1) * period_in + self.extent
        if len(pending) < needed:
            pending = np.concatenate((pending, np.zeros(needed - len(pending))))
        step = pending.itemsize
        # Row q is the inputs period q reads: rows overlap, nothing is copied.
        frames: _Floats = np.ndarray(
            (rows, self.extent),
            dtype=np.float64,
            buffer=pending,
            offset=origin * step,
            strides=(period_in * step, step),
        )
        out = np.empty((rows, period))
        for group in self.groups:
            inputs = frames[:, group.offset : group.offset + group.matrix.shape[0]]
            block = group.rows_per_product
            for row in range(0, rows, block):
                np.matmul(
                    inputs[row : row + block],
                    group.matrix,
                    out=out[row : row + block, group.first : group.stop],
                )
        skip = first - row_first * period
        return out.reshape(-1)[skip : skip + stop - first]


class _InterpolatedKernel(_Kernel):
    """Polyphase filter for pairs with too many phases to tabulate.

    Each output is computed with the two tabulated phases around it and
    interpolated linearly between them. Both sums are exact and the blend is
    elementwise, so chunking cannot change the result.
    """

    def __init__(self, up: int, down: int, reach: int, cutoff: float) -> None:
        super().__init__(up, down, reach)
        # A filter stretched over n times the inputs is n times smoother in
        # input periods: n times fewer phases interpolate it as well, which
        # keeps the table near 64 K taps.
        self.phases = -(-_INTERPOLATED_PHASES * min(up, down) // down)
        self.table = _taps(np.arange(self.phases + 1) / self.phases, reach, cutoff)
        self.outputs_per_step = max(1, _BLOCK_ELEMENTS // self.width)

    def run(self, pending: _Floats, start: int, first: int, stop: int) -> _Floats:
        """Compute outputs `first` to `stop` (exclusive) as a fresh array."""
        needed = (stop - 1) * self.down // self.up + self.reach + 1 - start
        if len(pending) < needed:
            pending = np.concatenate((pending, np.zeros(needed - len(pending))))
        out = np.empty(stop - first)
        spread = np.arange(self.width)
        for step in range(first, stop, self.outputs_per_step):
            outputs = np.arange(step, min(step + self.outputs_per_step, stop))
            times = outputs.astype(np.int64) * self.down
            bases = times // self.up
            position = (times - bases * self.up) * self.phases / self.up
            below = position.astype(np.intp)
            frames = pending[(bases - self.reach + 1 - start)[:, np.newaxis] + spread]
            low = np.einsum("ij,ij->i", frames, self.table[below])
            high = np.einsum("ij,ij->i", frames, self.table[below + 1])
            out[step - first : step - first + len(outputs)] = low + (
                position - below
            ) * (high - low)
        return out


@functools.lru_cache(maxsize=16)
def _kernel(in_rate: int, out_rate: int) -> _Kernel:
    """Build the filter of a rate pair once: a resampler is made per utterance."""
    common = math.gcd(in_rate, out_rate)
    up, down = out_rate // common, in_rate // common
    # Downsampling stretches the filter over more inputs, to keep its band
    # relative to the output rate.
    reach = -(-_HALF_WIDTH * max(up, down) // up)
    cutoff = min(1.0, up / down)
    if up * 2 * reach <= _MAX_TAPS:
        return _PeriodicKernel(up, down, reach, cutoff)
    return _InterpolatedKernel(up, down, reach, cutoff)


def _to_pcm(samples: _Floats) -> bytes:
    """Round and saturate in place (the kernels return fresh arrays)."""
    np.rint(samples, out=samples)
    # Gibbs overshoot of a full-scale input must saturate, not wrap around.
    np.maximum(samples, _INT16_MIN, out=samples)
    np.minimum(samples, _INT16_MAX, out=samples)
    return samples.astype("<i2").tobytes()


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
        _check_rate("in_rate", in_rate, MIN_RATE, _MAX_IN_RATE)
        _check_rate("out_rate", out_rate, MIN_RATE, MAX_RATE)
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._kernel = None if self.identity else _kernel(in_rate, out_rate)
        # An odd byte split across chunks must wait for its other half.
        self._carry = b""
        self._pending: _Floats = np.zeros(0)
        self._start = 0
        self._fed = 0
        self._produced = 0
        self._reset()

    @property
    def identity(self) -> bool:
        """Whether the rates are equal and audio passes through untouched."""
        return self.in_rate == self.out_rate

    def _reset(self) -> None:
        self._carry = b""
        self._fed = 0
        self._produced = 0
        if self._kernel is not None:
            # Silence before the stream's first sample, for the taps of the
            # first outputs that reach back past it.
            self._start = self._kernel.first_input(0)
            self._pending = np.zeros(-self._start)

    def process(self, pcm: bytes) -> bytes:
        """Convert one chunk; returns what is ready (may be empty)."""
        if self._carry:
            pcm = self._carry + pcm
            self._carry = b""
        if len(pcm) % BYTES_PER_SAMPLE:
            pcm, self._carry = pcm[:-1], pcm[-1:]
        kernel = self._kernel
        if not pcm or kernel is None:
            return pcm
        samples = np.frombuffer(pcm, dtype="<i2")
        held = len(self._pending)
        pending = np.empty(held + len(samples))
        pending[:held] = self._pending
        pending[held:] = samples
        self._fed += len(samples)
        ready = kernel.ready(self._fed)
        if ready <= self._produced:
            self._pending = pending
            return b""
        out = kernel.run(pending, self._start, self._produced, ready)
        self._produced = ready
        keep = kernel.first_input(ready)
        self._pending = pending[keep - self._start :]
        self._start = keep
        return _to_pcm(out)

    def flush(self) -> bytes:
        """Return the tail of the stream and reset for the next one."""
        # A lone trailing byte is half a sample: nothing can be made of it.
        kernel = self._kernel
        total = kernel.total(self._fed) if kernel is not None else 0
        if kernel is None or total <= self._produced:
            self._reset()
            return b""
        out = kernel.run(self._pending, self._start, self._produced, total)
        self._reset()
        return _to_pcm(out)


def resample(pcm: bytes, in_rate: int, out_rate: int) -> bytes:
    """Convert a whole s16le mono buffer from `in_rate` to `out_rate`."""
    resampler = StreamResampler(in_rate, out_rate)
    return resampler.process(pcm) + resampler.flush()
