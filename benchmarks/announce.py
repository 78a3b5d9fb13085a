"""Call-to-speech latency of an announcement, against a naive pyttsx3 pipeline.

    .venv/bin/python -m benchmarks.announce [--runs 50] [--heard-runs 20]
                                            [--quick] [--via ha|core]

Ours runs in this process. By default it goes through Home Assistant's real
`rtsp_announcer.announce` action: a real `HomeAssistant` instance started
in-process the way pytest-homeassistant-custom-component's
`async_test_home_assistant` does, with one config entry per sample rate. With
`--via core` it uses the audio core alone, wired like announce.py
(`SpeechEngine`, `AudioStream`, `PcmCache`). Streams publish AAC to a real RTSP
server (ffmpeg's listener from tests/helpers/rtsp/) that decodes what arrives.

The naive pipeline runs in a child process of its own (pyttsx3 re-initialises
libespeak-ng in another output mode, so it must never share a process with our
engine): pyttsx3 `save_to_file` + `runAndWait` to a temporary WAV, one ffmpeg
per utterance converting it to s16le at the stream rate, and, for what a reader
hears, one more ffmpeg per utterance publishing that PCM with `-re` and
ffmpeg's defaults to a fresh session of the same kind of receiver.

The parts it measures with are in benchmarks/measure/ (statistics, onsets, the
stream under test, the naive baseline, the report); benchmarks/onset.py uses them
too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass, field

import numpy as np
from homeassistant.core import HomeAssistant

from benchmarks.measure import LANGUAGE, LONG, RATES, SEED, SHORT, STREAM_RATE, TEXTS
from benchmarks.measure.harness import (
    cancel_on_sigterm,
    check_clocks,
    home_assistant,
    leftovers,
    machine,
    run_main,
)
from benchmarks.measure.naive import run_naive
from benchmarks.measure.onset import heard_at, lead_ms, settle
from benchmarks.measure.report import OursResult, report
from benchmarks.measure.stats import Rtf, Series, real_time_factor
from benchmarks.measure.targets import (
    StartWatch,
    Target,
    core_target,
    first_sample_ms,
    ha_target,
    heard_ms,
    speech_key,
)
from custom_components.rtsp_announcer.audio.models import BYTES_PER_SAMPLE
from custom_components.rtsp_announcer.audio.speech import SpeechEngine
from tests.helpers.rtsp import ListenReceiver

# benchmarks/faults.py takes heard_at, home_assistant, leftovers and settle from here.
__all__ = ["heard_at", "home_assistant", "leftovers", "main", "settle"]


async def prefill(
    target: Target, text: str, rate: int
) -> tuple[tuple[object, ...], bytes]:
    """Render `text` into the cache under announce.py's key."""
    voice, spoken, key = await speech_key(target.engine, text, rate)
    pcm = await target.engine.synthesize(
        spoken, sample_rate=rate, voice=voice.identifier
    )
    target.cache.put(key, pcm)
    return key, pcm


async def synthesis_rtf(engine: SpeechEngine, text: str, rate: int | None) -> Rtf:
    """Audio seconds per synthesis second; `rate` None is espeak's own rate."""
    repeats = 50 if len(text) < 200 else 5
    audio = 0.0
    times: list[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        pcm = await engine.synthesize(text, sample_rate=rate, language=LANGUAGE)
        times.append(time.perf_counter() - start)
        audio = len(pcm) / BYTES_PER_SAMPLE / (rate or engine.native_rate)
    return real_time_factor(audio, times)


async def measure_ours(args: argparse.Namespace) -> OursResult:
    result = OursResult()
    rng = np.random.default_rng(SEED)
    async with contextlib.AsyncExitStack() as stack:
        hass: HomeAssistant | None = None
        if args.via == "ha":
            hass = await stack.enter_async_context(home_assistant())
        for rate in RATES:
            async with contextlib.AsyncExitStack() as per_rate:
                receiver = await per_rate.enter_async_context(ListenReceiver(rate=rate))
                started = time.monotonic()
                target = await per_rate.enter_async_context(
                    ha_target(hass, receiver.url, rate)
                    if hass is not None
                    else core_target(receiver.url, rate)
                )
                await asyncio.wait_for(target.stream.wait_available(), 30)
                session = await receiver.wait_for_session(1, timeout=30)
                result.publish_s[rate] = session.started_at - started
                # Let the start-up burst pass before anything is timed.
                await receiver.wait_for_samples(receiver.total_samples + rate, 10)
                watch = StartWatch(target.stream)
                per_rate.callback(watch.close)
                bench = RateBench(target, watch, receiver, rng)
                await bench.prepare(result)
                if rate == STREAM_RATE:
                    await bench.first_samples(result, args.runs)
                    for name, text in TEXTS.items():
                        result.rtf[name] = await synthesis_rtf(
                            target.engine, text, rate
                        )
                        result.rtf_native[name] = await synthesis_rtf(
                            target.engine, text, None
                        )
                    await settle(receiver)
                await bench.heard(result, args.heard_runs)
    return result


@dataclass
class RateBench:
    """The measurements on one stream (one sample rate)."""

    target: Target
    watch: StartWatch
    receiver: ListenReceiver
    rng: np.random.Generator
    rendered: dict[str, tuple[tuple[object, ...], bytes]] = field(default_factory=dict)

    async def prepare(self, result: OursResult) -> None:
        rate = self.receiver.rate
        for name, text in TEXTS.items():
            self.rendered[name] = key_pcm = await prefill(self.target, text, rate)
            if rate == STREAM_RATE:
                result.audio_s[name] = len(key_pcm[1]) / BYTES_PER_SAMPLE / rate
                result.lead_ms[name] = lead_ms(key_pcm[1], rate)
            # Untimed: the first calls pay for imports and caches of their own.
            for _ in range(2):
                self.target.cache.clear()
                await first_sample_ms(self.target, self.watch, text, self.rng)
        await settle(self.receiver)

    def restore_cache(self) -> None:
        # A stopped announcement never completes its rendering, so nothing
        # else puts the long text back after a cold run.
        for key, pcm in self.rendered.values():
            self.target.cache.put(key, pcm)

    async def first_samples(self, result: OursResult, runs: int) -> None:
        combos = [(name, cache) for name in TEXTS for cache in ("cold", "cached")]
        for combo in combos:
            result.first[combo] = Series()
        hits = dict.fromkeys(TEXTS, 0)
        cache = self.target.cache
        for _ in range(runs):
            # Shuffled each round, so that slow stretches of a noisy machine
            # fall on every series alike.
            for index in self.rng.permutation(len(combos)):
                name, kind = combos[index]
                if kind == "cold":
                    cache.clear()
                else:
                    self.restore_cache()
                before = cache.hits
                result.first[name, kind].values.append(
                    await first_sample_ms(
                        self.target, self.watch, TEXTS[name], self.rng
                    )
                )
                if kind == "cached":
                    hits[name] += cache.hits - before
        for name in TEXTS:
            result.hits[name] = (hits[name], runs)
        await settle(self.receiver)

    async def heard(self, result: OursResult, runs: int) -> None:
        rate = self.receiver.rate
        names = list(TEXTS)
        for name in names:
            result.heard[rate, name] = Series()
            result.heard_first[rate, name] = Series()
        for _ in range(runs):
            for index in self.rng.permutation(len(names)):
                name = names[index]
                self.target.cache.clear()
                first, heard = await heard_ms(
                    self.target, self.watch, self.receiver, TEXTS[name], self.rng
                )
                result.heard_first[rate, name].values.append(first)
                result.heard[rate, name].record(heard)


async def run(args: argparse.Namespace, began: float) -> float:
    """Measure and report; returns how long ours took, in seconds."""
    cancel_on_sigterm()
    check_clocks()
    via = (
        "through Home Assistant's real rtsp_announcer.announce action in an"
        " in-process HomeAssistant\n  (preannounce: false, wait: false; call time"
        " taken just before hass.services.async_call)"
        if args.via == "ha"
        else "on the audio core in-process, without Home Assistant (SpeechEngine,"
        " AudioStream,\n  PcmCache, wired like announce.py)"
    )
    print("Announcement latency: ours vs a naive pyttsx3 pipeline")
    print(f"ours measured {via}")
    print(machine())
    print(
        f"{args.runs} runs per call -> first sample series,"
        f" {args.heard_runs} per call -> heard series"
    )
    print(
        f'short = "{SHORT}"; long = the {len(LONG.split())}-word text of'
        " benchmarks/speech.py"
    )
    print("measuring ours ...", file=sys.stderr, flush=True)
    ours = await measure_ours(args)
    ours_s = time.monotonic() - began
    print(
        f"measuring the naive pipeline (ours took {ours_s:.0f} s) ...",
        file=sys.stderr,
        flush=True,
    )
    naive = await run_naive(args.runs, args.heard_runs, args.naive_rates)
    report(ours, naive)
    return ours_s


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, help="call -> first sample (default 50)")
    parser.add_argument("--heard-runs", type=int, help="call -> heard (default 20)")
    parser.add_argument("--quick", action="store_true", help="a short run (< 40 s)")
    parser.add_argument("--via", choices=["ha", "core"], default="ha")
    args = parser.parse_args()
    args.runs = args.runs or (10 if args.quick else 50)
    args.heard_runs = args.heard_runs or (5 if args.quick else 20)
    args.naive_rates = [STREAM_RATE] if args.quick else list(RATES)
    began = time.monotonic()
    ours_s = run_main(lambda: run(args, began))
    print(f"total {time.monotonic() - began:.0f} s (ours {ours_s:.0f} s)")


if __name__ == "__main__":
    main()
