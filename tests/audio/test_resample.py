"""The streaming resampler: quality, streaming behaviour, identity."""

from __future__ import annotations

import random

import numpy as np
import numpy.typing as npt
import pytest

from custom_components.rtsp_announcer.audio.exceptions import InvalidOptionError
from custom_components.rtsp_announcer.audio.resample import StreamResampler, resample
from tests.helpers.analysis import sine_snr

IN_RATE = 22050
# espeak's chunk at a 60 ms buffer.
CHUNK = 1323


def tone(freq: float, seconds: float, rate: int = IN_RATE) -> npt.NDArray[np.int16]:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * 0.5 * 32767).astype("<i2")


def stream_through(resampler: StreamResampler, pcm: bytes, sizes: list[int]) -> bytes:
    out = bytearray()
    position = 0
    for size in sizes:
        out += resampler.process(pcm[position : position + size])
        position += size
    out += resampler.process(pcm[position:])
    out += resampler.flush()
    return bytes(out)


@pytest.mark.parametrize("out_rate", [24000, 48000])
@pytest.mark.parametrize("freq", [3000, 9000])
def test_snr_far_above_linear_interpolation(out_rate: int, freq: int) -> None:
    pcm = tone(freq, 1.0).tobytes()
    resampler = StreamResampler(IN_RATE, out_rate)
    out = stream_through(resampler, pcm, [CHUNK * 2] * (len(pcm) // (CHUNK * 2)))
    # Linear interpolation manages ~31 dB at 3 kHz and ~6 dB at 9 kHz.
    assert sine_snr(out, freq, out_rate) > 70


def test_band_limited_below_output_nyquist() -> None:
    # 9 kHz cannot exist at 8 kHz; without a low-pass it would alias to 1 kHz.
    out = resample(tone(9000, 1.0).tobytes(), IN_RATE, 8000)
    samples = np.frombuffer(out, dtype="<i2").astype(np.float64)[800:-800]
    rms = max(float(np.sqrt(np.mean(samples**2))), 1e-9)
    level = 20 * np.log10(rms / (0.5 * 32767 / np.sqrt(2)))
    assert level < -50
    # While a tone inside the band survives.
    assert sine_snr(resample(tone(3000, 1.0).tobytes(), IN_RATE, 8000), 3000, 8000) > 60


@pytest.mark.parametrize("out_rate", [8000, 16000, 24000, 44100, 48000])
def test_streaming_equals_one_shot(out_rate: int) -> None:
    rng = np.random.default_rng(7)
    pcm = (rng.standard_normal(IN_RATE) * 4000).astype("<i2").tobytes()
    chooser = random.Random(3)
    # Odd sizes split samples across chunks.
    sizes = [chooser.randint(1, 3000) for _ in range(40)]
    streamed = stream_through(StreamResampler(IN_RATE, out_rate), pcm, sizes)
    whole = resample(pcm, IN_RATE, out_rate)
    assert len(streamed) == len(whole)
    diff = np.abs(
        np.frombuffer(streamed, dtype="<i2").astype(np.int32)
        - np.frombuffer(whole, dtype="<i2").astype(np.int32)
    )
    assert diff.max() <= 1
    assert len(whole) // 2 == pytest.approx(IN_RATE * out_rate / IN_RATE, abs=2)


def test_bounded_delay() -> None:
    resampler = StreamResampler(IN_RATE, 48000)
    fed = produced = 0
    pcm = tone(1000, 1.0).tobytes()
    for start in range(0, len(pcm), CHUNK * 2):
        chunk = pcm[start : start + CHUNK * 2]
        fed += len(chunk) // 2
        produced += len(resampler.process(chunk)) // 2
        held_ms = (fed * 48000 / IN_RATE - produced) / 48
        assert held_ms < 2.0
    produced += len(resampler.flush()) // 2
    assert produced == pytest.approx(fed * 48000 / IN_RATE, abs=2)


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


@pytest.mark.parametrize(
    ("in_rate", "out_rate"),
    [(22050, 7999), (22050, 48001), (0, 24000), (22050, True), (22050, 24000.0)],
)
def test_rejects_bad_rates(in_rate: object, out_rate: object) -> None:
    with pytest.raises(InvalidOptionError):
        StreamResampler(in_rate, out_rate)  # type: ignore[arg-type]
