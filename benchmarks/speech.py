"""Figures of the local speech engine and the resampler.

Run from the repository root: `.venv/bin/python -m benchmarks.speech`. The
resampler is compared with numpy.interp, and with PyAV (libswresample) when `av`
happens to be installed; the integration itself does not use it.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import statistics
import time
from collections.abc import Callable
from contextlib import aclosing
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from benchmarks.measure import LONG, SHORT
from benchmarks.measure.stats import percentile
from custom_components.rtsp_announcer.audio import resample as resample_module
from custom_components.rtsp_announcer.audio.resample import StreamResampler, resample
from custom_components.rtsp_announcer.audio.speech import SpeechEngine
from tests.helpers.analysis import sine_snr

RUNS = 50
_COMMA = "\uff0c"  # full-width comma
CHINESE = (
    f"请打开厨房的灯。今天天气很好{_COMMA}我们下午去公园散步吧。"
    f"晚饭准备好了{_COMMA}请大家到餐厅来。"
)
TEXTS = (("short", SHORT, None), ("long", LONG, None), ("zh", CHINESE, "zh"))
IN_RATE = 22050
CHUNK = 1323  # espeak's 60 ms buffer
SNR_RATES = (24000, 48000)
SNR_FREQS = (3000, 9000)
TIMING_RUNS = 5


async def first_chunk_ms(
    engine: SpeechEngine, text: str, sample_rate: int, language: str | None
) -> list[float]:
    times: list[float] = []
    for _ in range(RUNS):
        start = time.perf_counter()
        audio = engine.stream(text, sample_rate=sample_rate, language=language)
        async with aclosing(audio) as chunks:
            await anext(chunks)
            times.append((time.perf_counter() - start) * 1000)
    return times


async def full_synthesis(
    engine: SpeechEngine, text: str, sample_rate: int | None, language: str | None
) -> tuple[float, float]:
    times: list[float] = []
    seconds = 0.0
    for _ in range(5):
        start = time.perf_counter()
        pcm = await engine.synthesize(text, sample_rate=sample_rate, language=language)
        times.append(time.perf_counter() - start)
        seconds = len(pcm) / 2 / (sample_rate or engine.native_rate)
    return statistics.median(times), seconds


def tone(freq: float, seconds: float, rate: int = IN_RATE) -> npt.NDArray[np.int16]:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * 0.5 * 32767).astype("<i2")


def linear(pcm: bytes, out_rate: int) -> bytes:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    positions = np.arange(int(len(samples) * out_rate / IN_RATE)) * IN_RATE / out_rate
    return (
        np.interp(positions, np.arange(len(samples)), samples).astype("<i2").tobytes()
    )


class Stream(Protocol):
    """What the figures need of a streaming resampler."""

    def process(self, pcm: bytes, /) -> bytes: ...

    def flush(self) -> bytes: ...


type StreamFactory = Callable[[int], Stream]


class PyAvStream:
    """libswresample through PyAV, the way the integration once used it."""

    def __init__(self, av: Any, out_rate: int) -> None:
        self._av = av
        self._out_rate = out_rate
        self._resampler: Any = None
        self._carry = b""

    def process(self, pcm: bytes, /) -> bytes:
        pcm, self._carry = self._carry + pcm, b""
        if len(pcm) % 2:
            pcm, self._carry = pcm[:-1], pcm[-1:]
        if not pcm:
            return b""
        if self._resampler is None:
            self._resampler = self._av.AudioResampler(
                format="s16", layout="mono", rate=self._out_rate
            )
        frame = self._av.AudioFrame.from_ndarray(
            np.frombuffer(pcm, dtype="<i2").reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = IN_RATE
        return self._collect(self._resampler.resample(frame))

    def flush(self) -> bytes:
        resampler, self._resampler, self._carry = self._resampler, None, b""
        return b"" if resampler is None else self._collect(resampler.resample(None))

    @staticmethod
    def _collect(frames: list[Any]) -> bytes:
        return b"".join(frame.to_ndarray().astype("<i2").tobytes() for frame in frames)


def ours(out_rate: int) -> Stream:
    return StreamResampler(IN_RATE, out_rate)


def pyav() -> StreamFactory | None:
    """PyAV for comparison, when it happens to be installed (it is not required)."""
    try:
        av = importlib.import_module("av")
    except ImportError:
        return None
    return functools.partial(PyAvStream, av)


def one_shot(factory: StreamFactory, pcm: bytes, out_rate: int) -> bytes:
    stream = factory(out_rate)
    return stream.process(pcm) + stream.flush()


def streamed(factory: StreamFactory, pcm: bytes, out_rate: int) -> tuple[bytes, float]:
    """Resample in espeak-sized chunks; returns output and the most held back."""
    stream = factory(out_rate)
    out = bytearray()
    fed = 0
    held = 0.0
    for start in range(0, len(pcm), CHUNK * 2):
        chunk = pcm[start : start + CHUNK * 2]
        fed += len(chunk) // 2
        out += stream.process(chunk)
        held = max(held, fed / IN_RATE - len(out) / 2 / out_rate)
    out += stream.flush()
    return bytes(out), held


def first_chunk(pcm: bytes, out_rate: int) -> bytes:
    return StreamResampler(IN_RATE, out_rate).process(pcm[: CHUNK * 2])


def median_ms(run: Callable[[], object], runs: int = TIMING_RUNS) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def agreement(chunked: bytes, whole: bytes) -> str:
    if chunked == whole:
        return "identical"
    if len(chunked) != len(whole):
        return f"{len(chunked) // 2} vs {len(whole) // 2} samples"
    diff = np.abs(
        np.frombuffer(chunked, dtype="<i2").astype(np.int32)
        - np.frombuffer(whole, dtype="<i2").astype(np.int32)
    )
    return f"differ by up to {diff.max()} LSB"


def stream_row(name: str, factory: StreamFactory, noise: bytes, out_rate: int) -> str:
    whole_ms = median_ms(lambda: one_shot(factory, noise, out_rate))
    chunked_ms = median_ms(lambda: streamed(factory, noise, out_rate))
    whole = one_shot(factory, noise, out_rate)
    chunked, held = streamed(factory, noise, out_rate)
    snrs = []
    for freq in SNR_FREQS:
        out, _ = streamed(factory, tone(freq, 2.0).tobytes(), out_rate)
        snrs.append(f"{sine_snr(out, freq, out_rate):5.1f}")
    return (
        f"  {name:13} {out_rate:5}  {whole_ms:6.1f} {chunked_ms:7.1f}   "
        f"{snrs[0]} {snrs[1]}  {held * 1000:5.2f}  {agreement(chunked, whole)}"
    )


def resampler_figures() -> None:
    noise = (np.random.default_rng(0).standard_normal(60 * IN_RATE) * 3000).astype(
        "<i2"
    )
    pcm = noise.tobytes()
    print(
        f"\nResamplers, 22050 Hz in: 60 s of noise one-shot and in 60 ms chunks "
        f"(ms, median of {TIMING_RUNS});\nSNR (dB) of 2 s tones at 3 and 9 kHz "
        "streamed; delay = most audio held back (ms)"
    )
    print(
        "  method         rate  one-shot chunked  3 kHz 9 kHz  delay  "
        "chunked vs one-shot"
    )
    methods: list[tuple[str, StreamFactory | None]] = [
        ("windowed sinc", ours),
        ("PyAV", pyav()),
    ]
    for name, factory in methods:
        if factory is None:
            print(f"  {name:13} (not installed: skipped)")
            continue
        for out_rate in SNR_RATES:
            print(stream_row(name, factory, pcm, out_rate))
    for out_rate in SNR_RATES:
        took = median_ms(functools.partial(linear, pcm, out_rate))
        snrs = []
        for freq in SNR_FREQS:
            out = linear(tone(freq, 2.0).tobytes(), out_rate)
            snrs.append(f"{sine_snr(out, freq, out_rate):5.1f}")
        print(
            f"  {'numpy.interp':13} {out_rate:5}  {took:6.1f}       -   "
            f"{snrs[0]} {snrs[1]}      -  (one-shot only)"
        )
    print("\nWindowed sinc at other rates (22050 Hz in)")
    for out_rate in (8000, 16000, 24000, 32000, 44100, 48000):
        whole = median_ms(functools.partial(resample, pcm, IN_RATE, out_rate))
        _, held = streamed(ours, pcm, out_rate)
        # The filter table of a rate pair is built once, then cached.
        resample_module._kernel.cache_clear()  # noqa: SLF001
        cold = median_ms(functools.partial(StreamResampler, IN_RATE, out_rate), 1)
        setup = median_ms(functools.partial(first_chunk, pcm, out_rate), 10)
        print(
            f"  -> {out_rate}: 60 s in {whole:5.1f} ms one-shot; delay "
            f"{held * 1000:.2f} ms; table {cold:.2f} ms once, then set-up + "
            f"first chunk {setup:.2f} ms"
        )


async def speech_figures() -> None:
    engine = SpeechEngine()
    start = time.perf_counter()
    await engine.async_start()
    took = (time.perf_counter() - start) * 1000
    print(f"Engine start (thread, library, voices): {took:.1f} ms")
    try:
        print(f"\nTime to first chunk over {RUNS} runs (p50 / p95, ms)")
        for label, text, language in TEXTS:
            for rate in (IN_RATE, 24000, 48000):
                times = await first_chunk_ms(engine, text, rate, language)
                print(
                    f"  {label:5} @ {rate:5} Hz: {statistics.median(times):6.2f} / "
                    f"{percentile(times, 95):6.2f}"
                )
        print("\nFull synthesis (median of 5)")
        for label, text, language in TEXTS:
            for out_rate in (None, 24000, 48000):
                took, seconds = await full_synthesis(engine, text, out_rate, language)
                print(
                    f"  {label:5} @ {out_rate or IN_RATE:5} Hz: {seconds:6.2f} s of "
                    f"audio in {took * 1000:7.2f} ms, {seconds / took:6.0f}x real time"
                )
    finally:
        await engine.async_stop()


def main() -> None:
    asyncio.run(speech_figures())
    resampler_figures()


if __name__ == "__main__":
    main()
