"""Figures of the local speech engine and the resampler.

Run from the repository root: `.venv/bin/python -m benchmarks.speech`.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from contextlib import aclosing

import numpy as np
import numpy.typing as npt

from custom_components.rtsp_announcer.audio.resample import StreamResampler, resample
from custom_components.rtsp_announcer.audio.speech import SpeechEngine
from tests.helpers.analysis import sine_snr

RUNS = 50
SHORT = "Turn on the kitchen lights."
_SENTENCES = (
    "The quick brown fox jumps over the lazy dog near the old river bank.",
    "Please remember to close the garage door before you leave the house today.",
    "The washing machine has finished and the laundry is ready to be dried.",
    "Someone is at the front door, and the parcel should be taken inside soon.",
)
# About 300 words, like the long text of the field notes.
LONG = " ".join(_SENTENCES * 6)
_COMMA = "\uff0c"  # full-width comma
CHINESE = (
    f"请打开厨房的灯。今天天气很好{_COMMA}我们下午去公园散步吧。"
    f"晚饭准备好了{_COMMA}请大家到餐厅来。"
)
TEXTS = (("short", SHORT, None), ("long", LONG, None), ("zh", CHINESE, "zh"))
IN_RATE = 22050
CHUNK = 1323  # espeak's 60 ms buffer


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


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


def streamed(pcm: bytes, out_rate: int) -> tuple[bytes, float]:
    """Resample in espeak-sized chunks; returns output and the most held back."""
    resampler = StreamResampler(IN_RATE, out_rate)
    out = bytearray()
    fed = 0
    held = 0.0
    for start in range(0, len(pcm), CHUNK * 2):
        chunk = pcm[start : start + CHUNK * 2]
        fed += len(chunk) // 2
        out += resampler.process(chunk)
        held = max(held, fed / IN_RATE - len(out) / 2 / out_rate)
    out += resampler.flush()
    return bytes(out), held


def resampler_figures() -> None:
    print("\nResampler (PyAV / libswresample), 22050 Hz in")
    for out_rate in (24000, 48000):
        snrs = []
        for freq in (3000, 9000):
            pcm = tone(freq, 2.0).tobytes()
            out, _ = streamed(pcm, out_rate)
            snrs.append(
                f"{freq // 1000} kHz {sine_snr(out, freq, out_rate):5.1f} dB "
                f"(linear {sine_snr(linear(pcm, out_rate), freq, out_rate):4.1f} dB)"
            )
        print(f"  -> {out_rate}: SNR " + ", ".join(snrs))
    noise = (np.random.default_rng(0).standard_normal(60 * IN_RATE) * 3000).astype(
        "<i2"
    )
    pcm = noise.tobytes()
    for out_rate in (8000, 16000, 24000, 44100, 48000):
        start = time.perf_counter()
        resample(pcm, IN_RATE, out_rate)
        whole = time.perf_counter() - start
        start = time.perf_counter()
        _, held = streamed(pcm, out_rate)
        chunked = time.perf_counter() - start
        setups = []
        for _ in range(10):
            start = time.perf_counter()
            resampler = StreamResampler(IN_RATE, out_rate)
            resampler.process(pcm[: CHUNK * 2])
            setups.append((time.perf_counter() - start) * 1000)
        print(
            f"  -> {out_rate}: 60 s of audio in {whole * 1000:5.1f} ms one-shot, "
            f"{chunked * 1000:5.1f} ms in 60 ms chunks; delay {held * 1000:.2f} ms; "
            f"set-up + first chunk p50 {statistics.median(setups):.2f} ms"
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
                    f"{percentile(times, 0.95):6.2f}"
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
