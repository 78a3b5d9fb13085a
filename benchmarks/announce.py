"""Call-to-speech latency of an announcement, against a naive pyttsx3 pipeline.

    .venv/bin/python -m benchmarks.announce [--runs 50] [--heard-runs 20]
                                            [--quick] [--via ha|core]

Ours runs in this process. By default it goes through Home Assistant's real
`rtsp_announcer.announce` action: a real `HomeAssistant` instance started
in-process the way pytest-homeassistant-custom-component's
`async_test_home_assistant` does, with one config entry per sample rate. With
`--via core` it uses the audio core alone, wired like announce.py
(`SpeechEngine`, `AudioStream`, `PcmCache`). Streams publish AAC to a real RTSP
server (ffmpeg's listener from tests/helpers/rtsp.py) that decodes what arrives.

The naive pipeline runs in a child process of its own (pyttsx3 re-initialises
libespeak-ng in another output mode, so it must never share a process with our
engine): pyttsx3 `save_to_file` + `runAndWait` to a temporary WAV, one ffmpeg
per utterance converting it to s16le at the stream rate, and, for what a reader
hears, one more ffmpeg per utterance publishing that PCM with `-re` and
ffmpeg's defaults to a fresh session of the same kind of receiver.

benchmarks/onset.py uses the helpers here to set the onset at the reader
against the codec's own floor, and to time streaming speech.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import logging
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import psutil
import pyttsx3
from homeassistant import loader
from homeassistant.core import HomeAssistant
from homeassistant.helpers import frame
from numpy.typing import NDArray
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_test_home_assistant,
)

from benchmarks.speech import LONG, SHORT
from custom_components.rtsp_announcer.audio.cache import PcmCache
from custom_components.rtsp_announcer.audio.exceptions import AnnouncerError
from custom_components.rtsp_announcer.audio.models import (
    BYTES_PER_SAMPLE,
    StreamSettings,
)
from custom_components.rtsp_announcer.audio.playback import PlaybackItem
from custom_components.rtsp_announcer.audio.speech import (
    SpeechEngine,
    SpeechOptions,
    VoiceInfo,
)
from custom_components.rtsp_announcer.audio.stream import AudioStream
from custom_components.rtsp_announcer.audio.text import clean_text, normalize_text
from custom_components.rtsp_announcer.const import (
    CONF_NAME,
    CONF_SAMPLE_RATE,
    CONF_URL,
    DOMAIN,
    SERVICE_ANNOUNCE,
)
from custom_components.rtsp_announcer.data import RtspAnnouncerData
from tests.helpers.analysis import rms_windows
from tests.helpers.rtsp import ListenReceiver, dies_with_parent

TEXTS = {"short": SHORT, "long": LONG}
LANGUAGE = "en"
RATES = (24000, 48000)
STREAM_RATE = 24000
# Speech is where a 5 ms window reaches -40 dBFS: the silence padding decodes
# to exact zeros and espeak's windows have a median near -25 dBFS, so the
# threshold sits far from both and another one would move the onset by a
# window or two.
ONSET_DBFS = -40.0
WINDOW_MS = 5.0
# What one cached slice of announce.py holds; the core path copies it.
FEED_SECONDS = 0.5
# After playback stops, speech already handed to ffmpeg keeps arriving for the
# pipeline delay (~0.2 s at 24 kHz, less at 48 kHz); the next call waits that
# out so its onset cannot be the previous call's tail.
SETTLE_S = 0.35
QUIET_S = 0.15
STARTED_TIMEOUT = 10.0
HEARD_TIMEOUT = 10.0
NAIVE_HEARD_TIMEOUT = 20.0
WORKER_TIMEOUT = 900.0
FFMPEG = "ffmpeg"
SEED = 20250504


# --------------------------------------------------------------------------- figures


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile: always one of the measured values."""
    ordered = sorted(values)
    rank = max(math.ceil(pct / 100 * len(ordered)), 1)
    return ordered[rank - 1]


@dataclass
class Series:
    """Milliseconds per run, and how many runs gave no figure."""

    values: list[float] = field(default_factory=list)
    failures: int = 0

    @property
    def p50(self) -> float:
        return percentile(self.values, 50) if self.values else math.nan

    @property
    def p95(self) -> float:
        return percentile(self.values, 95) if self.values else math.nan

    def row(self) -> str:
        failed = f"  ({self.failures} without a figure)" if self.failures else ""
        if not self.values:
            return f"{'-':>8} {'-':>8} {'-':>8} {'-':>8} {0:>4}{failed}"
        return (
            f"{self.p50:8.1f} {self.p95:8.1f} {min(self.values):8.1f} "
            f"{max(self.values):8.1f} {len(self.values):4d}{failed}"
        )

    def to_json(self) -> dict[str, Any]:
        return {"values": self.values, "failures": self.failures}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Series:
        return cls(
            values=[float(v) for v in data["values"]], failures=int(data["failures"])
        )


class Rtf(NamedTuple):
    """A real-time factor from the median synthesis time, and from the best."""

    median: float
    best: float

    def __str__(self) -> str:
        return f"{self.median:5.0f}x ({self.best:.0f}x)"


def real_time_factor(audio_s: float, seconds: Sequence[float]) -> Rtf:
    return Rtf(audio_s / percentile(seconds, 50), audio_s / min(seconds))


HEADER = f"{'p50 ms':>8} {'p95 ms':>8} {'min':>8} {'max':>8} {'n':>4}"


def ratio(naive: Series, ours: Series) -> str:
    if not naive.values or not ours.values:
        return "-"
    return f"{naive.p50 / ours.p50:6.1f}x (p50)  {naive.p95 / ours.p95:6.1f}x (p95)"


# --------------------------------------------------------------------------- onsets


def window_samples(rate: int) -> int:
    return round(rate * WINDOW_MS / 1000)


def onset_index(samples: NDArray[np.int16], rate: int) -> int | None:
    """First sample of the first window loud enough to be speech."""
    levels = rms_windows(samples, rate, WINDOW_MS)
    loud = np.flatnonzero(levels >= ONSET_DBFS)
    if loud.size == 0:
        return None
    return int(loud[0]) * window_samples(rate)


def lead_ms(pcm: bytes, rate: int) -> float:
    """Silence at the start of synthesised audio, by the same onset rule."""
    start = onset_index(np.frombuffer(pcm, dtype="<i2").astype(np.int16), rate)
    return math.nan if start is None else start / rate * 1000


def arrival_time(receiver: ListenReceiver, sample: int) -> float:
    """When the chunk holding `sample` (an index into all samples) was read."""
    arrivals = receiver.arrivals
    index = bisect.bisect_left(arrivals, sample + 1, key=lambda arrival: arrival[1])
    return arrivals[index][0]


async def heard_at(
    receiver: ListenReceiver,
    base: int,
    timeout: float,  # noqa: ASYNC109
) -> float | None:
    """Monotonic time the first speech after sample `base` reached the receiver."""
    loop = asyncio.get_running_loop()
    rate = receiver.rate
    deadline = loop.time() + timeout
    # One AAC packet is 40 ms; checking every 20 ms of audio adds no delay to
    # the figure (arrival times are recorded by the receiver, not here).
    step = rate // 50
    seen = base
    while (remaining := deadline - loop.time()) > 0:
        try:
            await receiver.wait_for_samples(seen + step, timeout=remaining)
        except TimeoutError:
            return None
        seen = receiver.total_samples
        start = onset_index(receiver.samples()[base:seen], rate)
        if start is not None:
            # The loud window is complete once its last sample has arrived.
            return arrival_time(receiver, base + start + window_samples(rate) - 1)
    return None


async def settle(receiver: ListenReceiver) -> None:
    """Wait until what ffmpeg still held has arrived and the tail is quiet."""
    rate = receiver.rate
    await receiver.wait_for_samples(
        receiver.total_samples + int(rate * SETTLE_S), timeout=10
    )
    for _ in range(100):
        tail = receiver.samples()[-int(rate * QUIET_S) :]
        if onset_index(tail, rate) is None:
            return
        await receiver.wait_for_samples(receiver.total_samples + rate // 20, timeout=10)


# --------------------------------------------------------------------------- ours


class Target(Protocol):
    """One stream that takes announcements, and the engine and cache behind it."""

    stream: AudioStream
    engine: SpeechEngine
    cache: PcmCache

    async def announce(self, text: str) -> str:
        """Make the call; return the announcement's id once it is queued."""
        ...


class StartWatch:
    """Catches items as they start playing, also before anyone asks for them."""

    def __init__(self, stream: AudioStream) -> None:
        self._started: dict[str, PlaybackItem] = {}
        self._changed = asyncio.Event()
        self._remove = stream.add_item_listener(self._on_item)

    def _on_item(self, item: PlaybackItem) -> None:
        if item.started_at is not None and item.id not in self._started:
            self._started[item.id] = item
            self._changed.set()

    async def started(self, item_id: str) -> PlaybackItem:
        async with asyncio.timeout(STARTED_TIMEOUT):
            while (item := self._started.pop(item_id, None)) is None:
                self._changed.clear()
                await self._changed.wait()
        return item

    def close(self) -> None:
        self._remove()


class HaTarget:
    """The stream of one config entry, driven through the announce action."""

    def __init__(self, hass: HomeAssistant, data: RtspAnnouncerData) -> None:
        self._hass = hass
        self.stream = data.stream
        self.engine = data.speech.engine
        self.cache = data.speech.cache
        entity_id = data.announcer.entity_id
        assert entity_id is not None
        self.entity_id = entity_id

    async def announce(self, text: str) -> str:
        response = await self._hass.services.async_call(
            DOMAIN,
            SERVICE_ANNOUNCE,
            {
                "entity_id": self.entity_id,
                "message": text,
                "language": LANGUAGE,
                "preannounce": False,
                # The long text plays for 1.5 minutes: return once it is queued.
                "wait": False,
            },
            blocking=True,
            return_response=True,
        )
        assert response is not None
        result = response[self.entity_id]
        assert isinstance(result, dict)
        return str(result["announcement_id"])


class CoreTarget:
    """The audio core wired the way announce.py wires it, without Home Assistant."""

    def __init__(
        self, stream: AudioStream, engine: SpeechEngine, cache: PcmCache
    ) -> None:
        self.stream = stream
        self.engine = engine
        self.cache = cache

    async def announce(self, text: str) -> str:
        voice, spoken, key = await speech_key(
            self.engine, text, self.stream.settings.sample_rate
        )
        item = self.stream.new_item(title=spoken)
        self.stream.queue.add(item)
        self.stream.run_producer(self._produce(item, spoken, voice, key), item)
        return item.id

    async def _produce(
        self, item: PlaybackItem, text: str, voice: VoiceInfo, key: tuple[object, ...]
    ) -> None:
        try:
            if await self._speak(item, text, voice, key):
                item.end()
        except AnnouncerError as err:
            item.fail(err)

    async def _speak(
        self, item: PlaybackItem, text: str, voice: VoiceInfo, key: tuple[object, ...]
    ) -> bool:
        rate = self.stream.settings.sample_rate
        cached = self.cache.get(key)
        if cached is not None:
            step = int(rate * FEED_SECONDS) * BYTES_PER_SAMPLE
            for start in range(0, len(cached), step):
                if not await item.feed(cached[start : start + step]):
                    return False
            return True
        rendered = bytearray()
        audio = self.engine.stream(text, sample_rate=rate, voice=voice.identifier)
        async with aclosing(audio) as chunks:
            async for pcm in chunks:
                rendered += pcm
                if not await item.feed(pcm):
                    return False
        self.cache.put(key, bytes(rendered))
        return True


async def speech_key(
    engine: SpeechEngine, text: str, rate: int
) -> tuple[VoiceInfo, str, tuple[object, ...]]:
    """The voice, spoken text and cache key announce.py uses for `text`."""
    voice = await engine.resolve_voice(LANGUAGE)
    spoken = normalize_text(clean_text(text), voice.language)
    return (
        voice,
        spoken,
        ("speech", spoken, voice.identifier, SpeechOptions.create(), rate),
    )


@contextlib.asynccontextmanager
async def home_assistant() -> AsyncIterator[HomeAssistant]:
    with tempfile.TemporaryDirectory(prefix="bench-announce-ha-") as config_dir:
        async with async_test_home_assistant(config_dir=config_dir) as hass:
            frame.async_setup(hass)
            # What the test plugin's enable_custom_integrations does: without
            # it only built-in integrations load.
            hass.data.pop(loader.DATA_CUSTOM_COMPONENTS)
            try:
                yield hass
            finally:
                await hass.async_stop(force=True)


@contextlib.asynccontextmanager
async def ha_target(hass: HomeAssistant, url: str, rate: int) -> AsyncIterator[Target]:
    name = f"Bench {rate}"
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=name,
        data={CONF_NAME: name, CONF_URL: url},
        options={CONF_SAMPLE_RATE: rate},
        unique_id=f"benchmark-{rate}",
    )
    entry.add_to_hass(hass)
    if not await hass.config_entries.async_setup(entry.entry_id):
        msg = f"the config entry did not load: {entry.state}"
        raise RuntimeError(msg)
    try:
        data: RtspAnnouncerData = entry.runtime_data
        yield HaTarget(hass, data)
    finally:
        await hass.config_entries.async_unload(entry.entry_id)
        await hass.config_entries.async_remove(entry.entry_id)


@contextlib.asynccontextmanager
async def core_target(url: str, rate: int) -> AsyncIterator[Target]:
    engine = SpeechEngine()
    stream = AudioStream(StreamSettings(url=url, sample_rate=rate))
    try:
        await engine.async_start()
        await stream.start()
        yield CoreTarget(stream, engine, PcmCache())
    finally:
        await stream.stop()
        await engine.async_stop()


@dataclass
class OursResult:
    first: dict[tuple[str, str], Series] = field(default_factory=dict)
    hits: dict[str, tuple[int, int]] = field(default_factory=dict)
    heard: dict[tuple[int, str], Series] = field(default_factory=dict)
    heard_first: dict[tuple[int, str], Series] = field(default_factory=dict)
    audio_s: dict[str, float] = field(default_factory=dict)
    lead_ms: dict[str, float] = field(default_factory=dict)
    rtf: dict[str, Rtf] = field(default_factory=dict)
    rtf_native: dict[str, Rtf] = field(default_factory=dict)
    publish_s: dict[int, float] = field(default_factory=dict)


async def first_sample_ms(
    target: Target, watch: StartWatch, text: str, rng: np.random.Generator
) -> float:
    # A random pause keeps the calls from locking onto the 20 ms clock phase.
    await asyncio.sleep(float(rng.uniform(0.03, 0.07)))
    loop = asyncio.get_running_loop()
    called = loop.time()
    item = await watch.started(await target.announce(text))
    target.stream.stop_playback()
    assert item.started_at is not None
    return (item.started_at - called) * 1000


async def heard_ms(
    target: Target,
    watch: StartWatch,
    receiver: ListenReceiver,
    text: str,
    rng: np.random.Generator,
) -> tuple[float, float | None]:
    await asyncio.sleep(float(rng.uniform(0.0, 0.02)))
    loop = asyncio.get_running_loop()
    base = receiver.total_samples
    called = loop.time()
    item = await watch.started(await target.announce(text))
    try:
        arrived = await heard_at(receiver, base, HEARD_TIMEOUT)
    finally:
        target.stream.stop_playback()
    await settle(receiver)
    assert item.started_at is not None
    first = (item.started_at - called) * 1000
    return first, None if arrived is None else (arrived - called) * 1000


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
                if heard is None:
                    result.heard[rate, name].failures += 1
                else:
                    result.heard[rate, name].values.append(heard)


# --------------------------------------------------------------------------- naive


@dataclass
class NaiveRender:
    called: float
    wav_at: float
    first_at: float
    done_at: float
    pcm: bytes
    audio_s: float


class NaiveTts:
    """pyttsx3 the way a naive integration uses it; touched from one thread only."""

    def __init__(self, workdir: Path) -> None:
        # init() caches engines in a WeakValueDictionary: without this strong
        # reference every call builds a new engine, whose first runAndWait()
        # returns before the file is written.
        self._engine = pyttsx3.init()
        self._done = threading.Event()
        self._engine.connect("finished-utterance", self._finished)
        self._workdir = workdir
        self._count = 0

    def _finished(self, **_: object) -> None:
        self._done.set()

    def to_wav(self, text: str) -> Path:
        self._count += 1
        path = self._workdir / f"utterance-{self._count}.wav"
        engine = pyttsx3.init()
        self._done.clear()
        engine.save_to_file(text, str(path))
        for _ in range(3):
            engine.runAndWait()
            # Only the callback says the file is complete.
            if self._done.wait(2.0):
                return path
        msg = "pyttsx3 never finished the utterance"
        raise RuntimeError(msg)

    def render(self, text: str, rate: int) -> NaiveRender:
        called = time.monotonic()
        path = self.to_wav(text)
        wav_at = time.monotonic()
        try:
            with subprocess.Popen(
                [FFMPEG, "-hide_banner", "-loglevel", "error", "-i", str(path),
                 "-f", "s16le", "-ac", "1", "-ar", str(rate), "pipe:1"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                bufsize=0,
            ) as proc:  # fmt: skip
                assert proc.stdout is not None
                # Unbuffered, so the first read returns with the first bytes:
                # what a streaming writer could send on before ffmpeg is done.
                first = proc.stdout.read(65536)
                first_at = time.monotonic()
                rest = proc.stdout.read()
                done_at = time.monotonic()
            if proc.returncode != 0 or not first:
                msg = f"ffmpeg could not convert {path} (status {proc.returncode})"
                raise RuntimeError(msg)
            with wave.open(str(path), "rb") as wav:
                audio_s = wav.getnframes() / wav.getframerate()
        finally:
            path.unlink(missing_ok=True)
        return NaiveRender(
            called=called,
            wav_at=wav_at,
            first_at=first_at,
            done_at=done_at,
            pcm=first + rest,
            audio_s=audio_s,
        )


def naive_publisher_args(url: str, rate: int) -> list[str]:
    # What a naive script runs: real-time pacing, everything else default
    # (input probing, the 0.7 s mux delay, the encoder's default bit rate).
    return [FFMPEG, "-hide_banner", "-loglevel", "error", "-re",
            "-f", "s16le", "-ar", str(rate), "-ac", "1", "-i", "pipe:0",
            "-c:a", "aac", "-f", "rtsp", "-rtsp_transport", "tcp", url]  # fmt: skip


async def naive_heard_ms(
    pool: ThreadPoolExecutor, tts: NaiveTts, receiver: ListenReceiver, text: str
) -> float | None:
    loop = asyncio.get_running_loop()
    # The previous publisher's session must be over and a listener up again.
    await receiver.wait_ready(timeout=15)
    base = receiver.total_samples
    called = time.monotonic()
    render = await loop.run_in_executor(pool, tts.render, text, receiver.rate)
    publisher = await asyncio.create_subprocess_exec(
        *dies_with_parent(naive_publisher_args(receiver.url, receiver.rate)),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert publisher.stdin is not None
    try:
        # Buffered by the transport: ffmpeg takes it at real-time pace. The
        # end of input matters: probing waits for 5 s of audio or the end.
        publisher.stdin.write(render.pcm)
        publisher.stdin.write_eof()
        arrived = await heard_at(receiver, base, NAIVE_HEARD_TIMEOUT)
    finally:
        with contextlib.suppress(ProcessLookupError):
            publisher.terminate()
        if not publisher.stdin.transport.is_closing():
            publisher.stdin.transport.abort()
        try:
            await asyncio.wait_for(publisher.wait(), 3)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                publisher.kill()
            await publisher.wait()
    return None if arrived is None else (arrived - called) * 1000


async def measure_naive(config: dict[str, Any]) -> dict[str, Any]:
    cancel_on_sigterm()
    loop = asyncio.get_running_loop()
    rng = np.random.default_rng(SEED + 1)
    names = list(TEXTS)
    first = {name: Series() for name in names}
    wav = {name: Series() for name in names}
    synth_s: dict[str, list[float]] = {name: [] for name in names}
    pcm_s: dict[str, list[float]] = {name: [] for name in names}
    audio_s: dict[str, float] = {}
    leads: dict[str, float] = {}
    heard: dict[str, Series] = {}
    workdir = Path(config["workdir"])
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="naive-tts") as pool:
        tts = await loop.run_in_executor(pool, NaiveTts, workdir)
        for text in TEXTS.values():
            for _ in range(2):
                await loop.run_in_executor(pool, tts.render, text, STREAM_RATE)
        for _ in range(config["runs"]):
            for index in rng.permutation(len(names)):
                name = names[index]
                render = await loop.run_in_executor(
                    pool, tts.render, TEXTS[name], STREAM_RATE
                )
                first[name].values.append((render.first_at - render.called) * 1000)
                wav[name].values.append((render.wav_at - render.called) * 1000)
                synth_s[name].append(render.wav_at - render.called)
                pcm_s[name].append(render.done_at - render.called)
                audio_s[name] = render.audio_s
                leads[name] = lead_ms(render.pcm, STREAM_RATE)
        for rate in config["heard_rates"]:
            async with ListenReceiver(rate=rate) as receiver:
                for name in names:
                    heard[f"{rate}/{name}"] = Series()
                for _ in range(config["heard_runs"]):
                    for index in rng.permutation(len(names)):
                        name = names[index]
                        value = await naive_heard_ms(pool, tts, receiver, TEXTS[name])
                        series = heard[f"{rate}/{name}"]
                        if value is None:
                            series.failures += 1
                        else:
                            series.values.append(value)
    return {
        "first": {name: s.to_json() for name, s in first.items()},
        "wav": {name: s.to_json() for name, s in wav.items()},
        "heard": {key: s.to_json() for key, s in heard.items()},
        "audio_s": audio_s,
        "lead_ms": leads,
        "rtf": {name: real_time_factor(audio_s[name], synth_s[name]) for name in names},
        "rtf_pcm": {
            name: real_time_factor(audio_s[name], pcm_s[name]) for name in names
        },
    }


def naive_worker(config_path: Path, result_path: Path) -> None:
    config = json.loads(config_path.read_text(encoding="utf-8"))
    result = asyncio.run(measure_naive(config))
    result_path.write_text(json.dumps(result), encoding="utf-8")


@dataclass
class NaiveResult:
    first: dict[str, Series]
    wav: dict[str, Series]
    heard: dict[tuple[int, str], Series]
    audio_s: dict[str, float]
    lead_ms: dict[str, float]
    rtf: dict[str, Rtf]
    rtf_pcm: dict[str, Rtf]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NaiveResult:
        heard: dict[tuple[int, str], Series] = {}
        for key, value in data["heard"].items():
            rate, name = key.split("/")
            heard[int(rate), name] = Series.from_json(value)
        return cls(
            first={k: Series.from_json(v) for k, v in data["first"].items()},
            wav={k: Series.from_json(v) for k, v in data["wav"].items()},
            heard=heard,
            audio_s=data["audio_s"],
            lead_ms=data["lead_ms"],
            rtf={k: Rtf(*v) for k, v in data["rtf"].items()},
            rtf_pcm={k: Rtf(*v) for k, v in data["rtf_pcm"].items()},
        )


async def run_naive(runs: int, heard_runs: int, heard_rates: list[int]) -> NaiveResult:
    repo = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="bench-announce-") as tmp:
        workdir = Path(tmp, "wav")
        workdir.mkdir()
        config_path, result_path = Path(tmp, "config.json"), Path(tmp, "result.json")
        config = {
            "runs": runs,
            "heard_runs": heard_runs,
            "heard_rates": heard_rates,
            "workdir": str(workdir),
        }
        config_path.write_text(json.dumps(config), encoding="utf-8")
        worker = await asyncio.create_subprocess_exec(
            *dies_with_parent([
                sys.executable, "-m", "benchmarks.announce",
                "--naive-worker", str(config_path), str(result_path),
            ]),
            cwd=repo,
            stdin=asyncio.subprocess.DEVNULL,
            # pyttsx3 prints "Audio saved to ..." on every call.
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            async with asyncio.timeout(WORKER_TIMEOUT):
                _, errors = await worker.communicate()
        finally:
            if worker.returncode is None:
                # SIGTERM lets it run its own clean-up; SIGKILL if it does not.
                with contextlib.suppress(ProcessLookupError):
                    worker.terminate()
                try:
                    await asyncio.wait_for(worker.wait(), 5)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        worker.kill()
                    await worker.wait()
        if worker.returncode != 0:
            tail = errors.decode(errors="replace")[-4000:]
            msg = f"the naive worker failed (status {worker.returncode}):\n{tail}"
            raise RuntimeError(msg)
        return NaiveResult.from_json(json.loads(result_path.read_text("utf-8")))


# --------------------------------------------------------------------------- report


def ffmpeg_version() -> str:
    try:
        out = subprocess.run(
            [FFMPEG, "-version"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    words = out.split()
    return words[2] if len(words) > 2 else "unknown"


def leftovers() -> str:
    children = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.status() != psutil.STATUS_ZOMBIE:
                children.append(f"{child.name()}[{child.pid}]")
    threads = [
        t.name for t in threading.enumerate() if t is not threading.main_thread()
    ]
    temporary = sorted(
        path.name for path in Path(tempfile.gettempdir()).glob("bench-announce-*")
    )
    return (
        (
            f"child processes alive: {len(children)} {children or ''}; "
            f"other threads alive: {len(threads)} {threads or ''}; "
            f"temporary directories left: {len(temporary)} {temporary or ''}"
        )
        .replace(" ;", ";")
        .rstrip()
    )


def report(ours: OursResult, naive: NaiveResult) -> None:
    report_first(ours)
    report_heard(ours)
    report_rtf(ours, naive)
    report_naive(naive)
    report_ratios(ours, naive)


def report_first(ours: OursResult) -> None:
    print()
    print("1. Ours, call -> first speech sample written to ffmpeg")
    print(f"   (the item's started_at - the call time; {STREAM_RATE} Hz)")
    print(f"   {'text':<6} {'cache':<7} {HEADER}")
    for (name, cache), series in ours.first.items():
        print(f"   {name:<6} {cache:<7} {series.row()}")
    hits = ", ".join(f"{name} {h}/{n}" for name, (h, n) in ours.hits.items())
    print("   cold: the PCM cache emptied before the call, so the text is synthesised")
    print("   afresh (same text, so cold and cached compare like for like);")
    print(f"   cached: served from audio/cache.py's PcmCache (hits: {hits}).")
    print("   The clock takes a frame every 20 ms: up to 20 ms of every figure is")
    print("   the wait for its next tick, which the naive 'first PCM byte available'")
    print("   figure (4.) does not include.")


def report_heard(ours: OursResult) -> None:
    print()
    print("2. Call -> speech onset decoded at a real RTSP receiver, cold cache")
    print("   (ffmpeg listen-mode server decoding to PCM, arrival time of the onset;")
    print(
        f"   onset = first {WINDOW_MS:g} ms window >= {ONSET_DBFS:g} dBFS;"
        " the integration's AAC publisher over TCP)"
    )
    print(f"   {'rate':<6} {'text':<6} {HEADER}   first sample p50")
    for (rate, name), series in ours.heard.items():
        first = ours.heard_first[rate, name]
        print(f"   {rate:<6} {name:<6} {series.row()}   {first.p50:8.1f} ms")
    leads = ", ".join(f"{n} {v:.0f} ms" for n, v in ours.lead_ms.items())
    print(f"   espeak's leading silence before the onset: {leads}.")
    starts = ", ".join(f"{r} Hz {s:.2f} s" for r, s in ours.publish_s.items())
    print(f"   Stream start to first audio at the receiver: {starts}.")


def report_rtf(ours: OursResult, naive: NaiveResult) -> None:
    print()
    print("3. Synthesis real-time factor (audio seconds / synthesis seconds, from the")
    print("   median time, best time in brackets)")
    for name in TEXTS:
        print(
            f"   {name:<6} ours  {ours.audio_s[name]:6.2f} s of audio:"
            f" {ours.rtf_native[name]} at espeak's 22050 Hz,"
            f" {ours.rtf[name]} resampled to {STREAM_RATE} Hz"
        )
        print(
            f"   {name:<6} naive {naive.audio_s[name]:6.2f} s of audio:"
            f" {naive.rtf[name]} pyttsx3 to the WAV file,"
            f" {naive.rtf_pcm[name]} on to PCM with ffmpeg"
        )
    print("   ours: SpeechEngine.synthesize, in the benchmark's event loop while the")
    print("   stream publishes. pyttsx3 speaks at 200 words a minute, ours at 175.")


def report_naive(naive: NaiveResult) -> None:
    print()
    print("4. Naive pipeline, in a process of its own")
    print("   pyttsx3.init() (engine kept referenced) + save_to_file(text, tmp.wav) +")
    print("   runAndWait(), completion by the finished-utterance callback, then one")
    print(f"   ffmpeg per utterance converting the WAV to s16le at {STREAM_RATE} Hz.")
    print(f"   {'text':<6} {'to':<15} {HEADER}")
    for name in TEXTS:
        print(f"   {name:<6} {'WAV complete':<15} {naive.wav[name].row()}")
        print(f"   {name:<6} {'first PCM byte':<15} {naive.first[name].row()}")
    print("   Call -> speech onset at the receiver: the above, then one publishing")
    print("   ffmpeg per utterance (`-re`, defaults otherwise: input probing, 0.7 s")
    print("   mux delay) fed the whole converted PCM at once and then end of input,")
    print("   each to a fresh session of the same receiver. (Readers of a relay would")
    print("   also have to re-attach for every utterance; not measured.)")
    print(f"   {'rate':<6} {'text':<6} {HEADER}")
    for (rate, name), series in naive.heard.items():
        print(f"   {rate:<6} {name:<6} {series.row()}")
    leads = ", ".join(f"{n} {v:.0f} ms" for n, v in naive.lead_ms.items())
    print(f"   pyttsx3's leading silence before the onset: {leads}.")


def report_ratios(ours: OursResult, naive: NaiveResult) -> None:
    print()
    print("5. Ratios naive / ours (higher: ours is faster)")
    for name in TEXTS:
        naive_first = naive.first[name]
        for cache in ("cold", "cached"):
            print(
                f"   call -> first sample  {name:<6} vs ours {cache:<7}"
                f" {ratio(naive_first, ours.first[name, cache])}"
            )
    for (rate, name), series in naive.heard.items():
        print(
            f"   call -> heard {rate} Hz {name:<6} vs ours cold    "
            f" {ratio(series, ours.heard[rate, name])}"
        )


# --------------------------------------------------------------------------- main


def cancel_on_sigterm() -> None:
    """Let SIGTERM unwind like Ctrl-C, so that clean-up code runs."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


async def run(args: argparse.Namespace, began: float) -> float:
    """Measure and report; returns how long ours took, in seconds."""
    cancel_on_sigterm()
    loop = asyncio.get_running_loop()
    # Call times come from the loop, arrival times from time.monotonic().
    assert abs(loop.time() - time.monotonic()) < 0.01
    via = (
        "through Home Assistant's real rtsp_announcer.announce action in an"
        " in-process HomeAssistant\n  (preannounce: false, wait: false; call time"
        " taken just before hass.services.async_call)"
        if args.via == "ha"
        else "on the audio core in-process, without Home Assistant (SpeechEngine,"
        " AudioStream,\n  PcmCache, wired like announce.py)"
    )
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print("Announcement latency: ours vs a naive pyttsx3 pipeline")
    print(f"ours measured {via}")
    print(
        f"{os.cpu_count()} cores, load {load}; ffmpeg {ffmpeg_version()};"
        f" Python {sys.version.split()[0]}"
    )
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
    parser.add_argument("--naive-worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.naive_worker:
        naive_worker(Path(args.naive_worker[0]), Path(args.naive_worker[1]))
        return
    args.runs = args.runs or (10 if args.quick else 50)
    args.heard_runs = args.heard_runs or (5 if args.quick else 20)
    args.naive_rates = [STREAM_RATE] if args.quick else list(RATES)
    logging.basicConfig(level=logging.WARNING)
    # Start-up chatter of an in-process Home Assistant, not about the benchmark.
    for name in ("homeassistant.loader", "aiohttp_fast_zlib"):
        logging.getLogger(name).setLevel(logging.ERROR)
    began = time.monotonic()
    try:
        ours_s = asyncio.run(run(args, began))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(f"interrupted; clean-up: {leftovers()}", file=sys.stderr)
        sys.exit(1)
    # After asyncio.run: it joins the loop's executor threads on its way out.
    print()
    print(f"clean-up: {leftovers()}")
    print(f"total {time.monotonic() - began:.0f} s (ours {ours_s:.0f} s)")


if __name__ == "__main__":
    main()
