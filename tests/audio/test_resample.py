"""The streaming resampler: quality, streaming behaviour, identity."""

from __future__ import annotations

import math
import random

import numpy as np
import numpy.typing as npt
import pytest

from custom_components.rtsp_announcer.audio import resample as resample_module
from custom_components.rtsp_announcer.audio.exceptions import InvalidOptionError
from custom_components.rtsp_announcer.audio.resample import StreamResampler, resample
from tests.helpers.analysis import sine_snr

IN_RATE = 22050
# espeak's chunk at a 60 ms buffer.
CHUNK = 1323
AMPLITUDE = 0.5 * 32767
# Every rate a stream or espeak uses, and pairs too odd to tabulate exactly.
RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)
ODD_PAIRS = [(44101, 48000), (8001, 8000)]


def tone(freq: float, seconds: float, rate: int = IN_RATE) -> npt.NDArray[np.int16]:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * AMPLITUDE).astype("<i2")


def noise(samples: int, seed: int = 7) -> bytes:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(samples) * 4000).astype("<i2").tobytes()


def samples_of(pcm: bytes) -> npt.NDArray[np.int16]:
    return np.frombuffer(pcm, dtype="<i2")


def stream_through(resampler: StreamResampler, pcm: bytes, sizes: list[int]) -> bytes:
    out = bytearray()
    position = 0
    for size in sizes:
        out += resampler.process(pcm[position : position + size])
        position += size
    out += resampler.process(pcm[position:])
    out += resampler.flush()
    return bytes(out)


def random_sizes(seed: int, count: int, largest: int = 3000) -> list[int]:
    chooser = random.Random(seed)
    # Odd sizes split samples across chunks; ones and twos give empty results.
    return [
        chooser.choice((1, 2, 3, chooser.randint(1, largest))) for _ in range(count)
    ]


def spectrum_db(
    samples: npt.NDArray[np.int16], rate: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Amplitude spectrum in dB relative to the test tone's amplitude."""
    # Leave out the filter's start-up and tail.
    x = samples.astype(np.float64)[rate // 20 : -rate // 20]
    # Kaiser 16: side lobes far below anything measured here.
    window = np.kaiser(x.size, 16)
    amplitude = np.abs(np.fft.rfft(x * window)) * 2 / window.sum()
    freqs = np.fft.rfftfreq(x.size, 1 / rate).astype(np.float64)
    levels: npt.NDArray[np.float64] = 20 * np.log10(
        np.maximum(amplitude, 1e-9) / AMPLITUDE
    )
    return freqs, levels


@pytest.mark.parametrize("out_rate", [24000, 48000])
@pytest.mark.parametrize("freq", [3000, 9000])
def test_snr_far_above_linear_interpolation(out_rate: int, freq: int) -> None:
    pcm = tone(freq, 1.0).tobytes()
    resampler = StreamResampler(IN_RATE, out_rate)
    out = stream_through(resampler, pcm, [CHUNK * 2] * (len(pcm) // (CHUNK * 2)))
    # Linear interpolation manages ~31 dB at 3 kHz and ~6 dB at 9 kHz; int16
    # rounding of a -9 dBFS tone caps this at ~88 dB.
    assert sine_snr(out, freq, out_rate) > 70


def test_images_of_a_high_tone_are_rejected() -> None:
    out = samples_of(resample(tone(10000, 1.0).tobytes(), IN_RATE, 48000))
    freqs, levels = spectrum_db(out, 48000)

    def level_near(freq: float) -> float:
        return float(levels[np.abs(freqs - freq) <= 20].max())

    # 10 kHz is inside the pass band.
    assert level_near(10000) == pytest.approx(0, abs=0.1)
    # The images at 22050 k +- 10000 Hz, folded into the output band.
    images = {12050, 15950, 13900, 6100, 8150, 19850}
    assert max(level_near(freq) for freq in images) < -60
    # And nothing else anywhere: no image, alias or distortion.
    assert levels[np.abs(freqs - 10000) > 50].max() < -60


def test_band_limited_below_output_nyquist() -> None:
    # 9 kHz cannot exist at 8 kHz; without a low-pass it would alias to 1 kHz.
    out = resample(tone(9000, 1.0).tobytes(), IN_RATE, 8000)
    samples = np.frombuffer(out, dtype="<i2").astype(np.float64)[800:-800]
    rms = max(float(np.sqrt(np.mean(samples**2))), 1e-9)
    level = 20 * np.log10(rms / (0.5 * 32767 / np.sqrt(2)))
    assert level < -50
    # While a tone inside the band survives.
    assert sine_snr(resample(tone(3000, 1.0).tobytes(), IN_RATE, 8000), 3000, 8000) > 60


@pytest.mark.parametrize(
    ("in_rate", "out_rate"),
    [(IN_RATE, rate) for rate in RATES if rate != IN_RATE]
    + [(48000, 8000), (8000, 48000), (192000, 44100), (191996, 8188), *ODD_PAIRS],
)
@pytest.mark.parametrize("seed", [3, 11])
def test_streaming_equals_one_shot(in_rate: int, out_rate: int, seed: int) -> None:
    # Not "within 1 LSB": the sums are exact, so chunking cannot change a bit.
    pcm = noise(in_rate // 2 + seed, seed)
    whole = resample(pcm, in_rate, out_rate)
    streamed = stream_through(
        StreamResampler(in_rate, out_rate), pcm, random_sizes(seed, 60)
    )
    assert streamed == whole


@pytest.mark.parametrize(("in_rate", "out_rate"), [(IN_RATE, 24000), *ODD_PAIRS])
def test_interpolated_and_exact_tables_agree_on_quality(
    in_rate: int, out_rate: int
) -> None:
    freq = 3000
    out = resample(tone(freq, 1.0, in_rate).tobytes(), in_rate, out_rate)
    assert sine_snr(out, freq, out_rate) > 70


@pytest.mark.parametrize("out_rate", [8000, 24000, 44100, 48000])
@pytest.mark.parametrize("inputs", [1, 2, 147, 1000, 22050, 22051, 31337])
def test_output_length_follows_the_ratio(out_rate: int, inputs: int) -> None:
    pcm = noise(inputs)
    streamed = stream_through(
        StreamResampler(IN_RATE, out_rate), pcm, random_sizes(inputs, 30)
    )
    produced = len(streamed) // 2
    assert produced == math.ceil(inputs * out_rate / IN_RATE)
    assert abs(produced - inputs * out_rate / IN_RATE) < 1


@pytest.mark.parametrize("out_rate", [24000, 48000])
def test_bounded_delay(out_rate: int) -> None:
    resampler = StreamResampler(IN_RATE, out_rate)
    fed = produced = 0
    pcm = tone(1000, 1.0).tobytes()
    for start in range(0, len(pcm), CHUNK * 2):
        chunk = pcm[start : start + CHUNK * 2]
        fed += len(chunk) // 2
        produced += len(resampler.process(chunk)) // 2
        held_ms = (fed * out_rate / IN_RATE - produced) / (out_rate / 1000)
        # The look-ahead: 32 inputs, 1.45 ms, plus a fraction of an output.
        assert held_ms < 1.5
    produced += len(resampler.flush()) // 2
    assert produced == pytest.approx(fed * out_rate / IN_RATE, abs=1)


@pytest.mark.parametrize("out_rate", [8000, 24000, 48000])
def test_output_is_not_shifted(out_rate: int) -> None:
    freq = 1000
    out = np.frombuffer(resample(tone(freq, 1.0).tobytes(), IN_RATE, out_rate), "<i2")
    t = np.arange(out.size) / out_rate
    inner = slice(out_rate // 20, -out_rate // 20)
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], 1)
    (sine, cosine), *_ = np.linalg.lstsq(
        basis[inner], out[inner].astype(np.float64), rcond=None
    )
    shift_s = -math.atan2(cosine, sine) / (2 * np.pi * freq)
    assert abs(shift_s) < 1e-6


def test_full_scale_overshoot_saturates() -> None:
    # A full-scale square wave rings ~30 % past full scale after each edge.
    t = np.arange(IN_RATE) / IN_RATE
    square = np.where(np.sin(2 * np.pi * 1000 * t) >= 0, 32767, -32768).astype("<i2")
    out = samples_of(resample(square.tobytes(), IN_RATE, 48000)).astype(np.int32)
    assert out.max() == 32767
    assert out.min() == -32768
    # Edges fall every 24 output samples; away from them, a wrapped-around
    # overshoot would show as the wrong sign.
    phase = np.arange(out.size) % 24
    away = (phase > 3) & (phase < 21)
    expected = np.where(np.arange(out.size) % 48 < 24, 1, -1)
    assert np.array_equal(np.sign(out[away]), expected[away])


@pytest.mark.parametrize("level", [32767, -32768])
def test_full_scale_level_survives(level: int) -> None:
    pcm = np.full(IN_RATE // 10, level, dtype="<i2").tobytes()
    out = samples_of(resample(pcm, IN_RATE, 48000))
    # The first and last outputs see the silence around the stream.
    assert np.all(out[200:-200] == level)


def test_identity_passes_bytes_through() -> None:
    pcm = tone(440, 0.1).tobytes()
    resampler = StreamResampler(IN_RATE, IN_RATE)
    assert resampler.identity
    assert resampler.process(pcm[:101]) + resampler.process(pcm[101:]) == pcm
    assert resampler.flush() == b""
    assert resample(pcm, 16000, 16000) == pcm


def test_reusable_after_flush() -> None:
    pcm = tone(1000, 0.2).tobytes()
    resampler = StreamResampler(IN_RATE, 16000)
    first = resampler.process(pcm) + resampler.flush()
    second = resampler.process(pcm) + resampler.flush()
    assert first == second
    assert resampler.flush() == b""


def test_empty_stream_and_lone_byte() -> None:
    resampler = StreamResampler(IN_RATE, 48000)
    assert resampler.flush() == b""
    assert resampler.process(b"") == b""
    assert resampler.process(b"\x01") == b""
    # Half a sample is dropped at the end of a stream.
    assert resampler.flush() == b""
    pcm = tone(1000, 0.1).tobytes()
    assert resample(pcm + b"\x7f", IN_RATE, 48000) == resample(pcm, IN_RATE, 48000)


def test_tables_are_built_once_per_rate_pair() -> None:
    first = StreamResampler(IN_RATE, 48000)
    second = StreamResampler(IN_RATE, 48000)
    assert first._kernel is second._kernel
    assert StreamResampler(IN_RATE, 24000)._kernel is not first._kernel


@pytest.mark.parametrize(
    ("in_rate", "out_rate"),
    [(a, b) for a in RATES for b in RATES if a != b]
    + [(192000, 8000), (192000, 48000), (191996, 8188), (96001, 48000), *ODD_PAIRS],
)
def test_tables_are_bounded_and_sums_exact(in_rate: int, out_rate: int) -> None:
    # What makes streamed output equal one-shot output bit for bit: taps on a
    # 2**-COEF_BITS grid, and no partial sum of int16 products that float64
    # cannot hold exactly.
    kernel = resample_module._kernel(in_rate, out_rate)
    scale = 2.0**resample_module._COEF_BITS
    if isinstance(kernel, resample_module._PeriodicKernel):
        assert kernel.up * kernel.width <= resample_module._MAX_TAPS
        tables = [group.matrix.T for group in kernel.groups]
    else:
        assert isinstance(kernel, resample_module._InterpolatedKernel)
        assert kernel.table.shape == (kernel.phases + 1, kernel.width)
        tables = [kernel.table]
    # A few MB at most, however odd the pair.
    assert sum(table.size for table in tables) <= 3 * resample_module._MAX_TAPS
    for table in tables:
        assert np.array_equal(np.rint(table * scale), table * scale)
        assert np.abs(table).sum(axis=1).max() * 2.0**15 * scale < 2.0**53


@pytest.mark.parametrize(
    ("in_rate", "out_rate"),
    [(22050, 7999), (22050, 48001), (0, 24000), (22050, True), (22050, 24000.0)],
)
def test_rejects_bad_rates(in_rate: object, out_rate: object) -> None:
    with pytest.raises(InvalidOptionError):
        StreamResampler(in_rate, out_rate)  # type: ignore[arg-type]
