"""Speech onset at an RTSP reader against the codec's floor, and streaming speech.

    .venv/bin/python -m benchmarks.onset [--runs 15] [--quick]

One run prints:

(a) the codec floor: a perfect real-time writer (sample count = wall clock, 10 ms
    frames, no lead) feeding ffmpeg started with the project's own publisher
    arguments (`publisher_args`: AAC 64k, -muxdelay 0, no probing) a tone after
    silence; the figure is the tone's onset decoded at the receiver minus the
    time its first sample was written;
(b) call -> speech onset at the receiver through Home Assistant's real
    `rtsp_announcer.announce` action, with the local voice (cold: the PCM cache
    emptied before each call) and with another TTS entity that returns MP3
    (its audio decoded by ffmpeg as it comes; a new message each call, so
    Home Assistant's TTS cache never answers);
(c) onset - floor at the same rate, against the target of 20 ms;
(d) streaming speech: from the moment the piece of text that completes the
    first sentence is handed over in `message_gen` to the first audio chunk
    out of the local voice's `async_stream_tts_audio`, and, announced (a TTS
    result stream given to the stream's media player, text following), to the
    first sample of speech written to the stream and to its onset at the
    receiver; the target is 50 ms to the first sample.

The receiver is ffmpeg's RTSP listener (tests/helpers/rtsp/listener.py): a real RTSP
session that decodes what arrives and records arrival times. Onsets use the
rule of benchmarks/measure/onset.py (first 5 ms window at -40 dBFS, counted when
its last sample has arrived); Home Assistant runs in-process as there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import sys
import time
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any
from unittest.mock import patch

import numpy as np
from homeassistant.components import tts
from homeassistant.components.tts.const import DATA_COMPONENT
from homeassistant.components.tts.entity import TTSAudioRequest
from homeassistant.const import __version__ as ha_version
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from numpy.typing import NDArray

from benchmarks.measure import FFMPEG, LANGUAGE, SHORT
from benchmarks.measure.harness import (
    cancel_on_sigterm,
    check_clocks,
    home_assistant,
    machine,
    run_main,
)
from benchmarks.measure.onset import heard_at, settle
from benchmarks.measure.stats import HEADER, Series
from benchmarks.measure.targets import (
    HEARD_TIMEOUT,
    STARTED_TIMEOUT,
    HaTarget,
    StartWatch,
    Target,
    ha_target,
    heard_ms,
)
from custom_components.rtsp_announcer.audio import decoder
from custom_components.rtsp_announcer.audio.ffmpeg import decoder_args, publisher_args
from custom_components.rtsp_announcer.audio.models import StreamSettings
from custom_components.rtsp_announcer.audio.playback import PlaybackItem
from custom_components.rtsp_announcer.audio.speech import NATIVE_RATE, SpeechEngine
from custom_components.rtsp_announcer.tts import LocalVoiceEntity, wav_stream_header
from tests.common import add_voice
from tests.helpers.rtsp import ListenReceiver, dies_with_parent
from tests.voices import ToneVoice

RATES = (48000, 24000)
FRAME_S = 0.010
TONE_HZ = 1000.0
TONE_S = 0.25
TONE_AMPLITUDE = 0.3
WARM_UP = 2
TARGET_OVER_FLOOR_MS = 20.0
TARGET_FIRST_SENTENCE_MS = 50.0
# An LLM's reply: the first sentence ends in the second piece ("morning. "),
# the rest follows a piece every PIECE_S.
PIECES = ("Good", " morning. ", "The kitchen lights are on", ", and the coffee ",
          "is ready. ", "It is sunny outside.")  # fmt: skip
FIRST_SENTENCE_PIECE = 1
PIECE_S = 0.02
# How long the announced variant "thinks" before its first sentence: the
# result stream is already being played (its decoder running) by then. The
# rest of its reply follows HOLD_REST_S later: a decoder that waits for more
# input or for the end shows it.
THINK_S = 0.3
HOLD_REST_S = 1.0
# (label, result stream options, the decoder as it is): the stream's media
# player plays a TTS result stream given its id, as Assist does.
ANNOUNCED: tuple[tuple[str, dict[str, Any] | None, bool], ...] = (
    ("wav", {"preferred_format": "wav"}, True),
    ("mp3", None, True),
    ("wav, no probing", {"preferred_format": "wav"}, False),
    ("mp3, no probing", None, False),
)
SEED = 20261204
MP3_VOICE = "tts.recorded_voice"
HAS_MESSAGE_STREAMS = hasattr(tts.ResultStream, "async_set_message_stream")


# --------------------------------------------------------------------------- (a) floor


class RealTimeWriter:
    """Feeds ffmpeg's stdin so that the sample count follows the wall clock."""

    def __init__(self, stdin: asyncio.StreamWriter, rate: int) -> None:
        self._stdin = stdin
        self._rate = rate
        self._pending: tuple[NDArray[np.int16], asyncio.Future[float]] | None = None
        self._tone: NDArray[np.int16] | None = None
        self._position = 0

    def play(self, tone: NDArray[np.int16]) -> asyncio.Future[float]:
        """Start `tone` with the next frame; the future gets its write time."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._pending = (tone, future)
        return future

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        written = 0
        tick = 0
        while True:
            now = loop.time()
            due = int((now - start) * self._rate)
            if due > written:
                chunk = np.zeros(due - written, dtype="<i2")
                started: asyncio.Future[float] | None = None
                if self._pending is not None:
                    (self._tone, started), self._pending = self._pending, None
                    self._position = 0
                if self._tone is not None:
                    part = self._tone[self._position : self._position + chunk.size]
                    chunk[: part.size] = part
                    self._position += part.size
                    if self._position >= self._tone.size:
                        self._tone = None
                self._stdin.write(chunk.tobytes())
                if started is not None:
                    started.set_result(now)
                await self._stdin.drain()
                written = due
            tick += 1
            await asyncio.sleep(max(0.0, start + tick * FRAME_S - loop.time()))


def tone(rate: int) -> NDArray[np.int16]:
    t = np.arange(round(TONE_S * rate)) / rate
    return (TONE_AMPLITUDE * 32767 * np.sin(2 * np.pi * TONE_HZ * t)).astype("<i2")


async def codec_floor(rate: int, runs: int, rng: np.random.Generator) -> Series:
    """Tone written -> tone heard, through the project's publisher arguments."""
    series = Series()
    async with ListenReceiver(rate=rate) as receiver:
        settings = StreamSettings(url=receiver.url, sample_rate=rate)
        process = await asyncio.create_subprocess_exec(
            *dies_with_parent(publisher_args(FFMPEG, settings, "pipe:0")),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert process.stdin is not None
        writer = RealTimeWriter(process.stdin, rate)
        task = asyncio.create_task(writer.run())
        try:
            await receiver.wait_for_session(1, timeout=30)
            await receiver.wait_for_samples(receiver.total_samples + rate, 10)
            beep = tone(rate)
            for run in range(WARM_UP + runs):
                await asyncio.sleep(float(rng.uniform(0.03, 0.07)))
                base = receiver.total_samples
                written_at = await writer.play(beep)
                arrived = await heard_at(receiver, base, HEARD_TIMEOUT)
                await asyncio.sleep(TONE_S)
                await settle(receiver)
                if run < WARM_UP:
                    continue
                series.record(
                    None if arrived is None else (arrived - written_at) * 1000
                )
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
    return series


# --------------------------------------------------------------------------- (b) onset


async def encode_mp3(pcm: bytes, rate: int) -> bytes:
    process = await asyncio.create_subprocess_exec(
        FFMPEG, "-hide_banner", "-loglevel", "error", "-f", "s16le", "-ar",
        str(rate), "-ac", "1", "-i", "pipe:0", "-c:a", "libmp3lame", "-b:a", "64k",
        "-f", "mp3", "pipe:1",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate(pcm)
    if process.returncode != 0:
        raise RuntimeError(err.decode())
    return out


async def onsets(
    target: Target, receiver: ListenReceiver, runs: int, rng: np.random.Generator
) -> tuple[Series, Series]:
    """(call -> first sample written, call -> speech at the receiver)."""
    first, heard = Series(), Series()
    watch = StartWatch(target.stream)
    try:
        for run in range(WARM_UP + runs):
            target.cache.clear()
            written, arrived = await heard_ms(target, watch, receiver, SHORT, rng)
            if run < WARM_UP:
                continue
            first.values.append(written)
            heard.record(arrived)
    finally:
        watch.close()
    return first, heard


# ----------------------------------------------------------------------- (d) streaming


@contextlib.contextmanager
def no_probing() -> Iterator[None]:
    """Decode piped audio the way a player of streams could: without probing.

    With ffmpeg's default probing the decoder of a TTS result stream returns
    nothing before ~5 s of input or its end; `-probesize 32 -analyzeduration 0`
    (what the publisher already uses for its raw input) returns audio as it
    comes. Measured side by side with the decoder as it is.
    """
    original = decoder_args

    def args(
        binary: str, source: str | None, sample_rate: int, **kwargs: Any
    ) -> list[str]:
        argv = original(binary, source, sample_rate, **kwargs)
        if source is None:
            at = argv.index("-i")
            argv[at:at] = ["-probesize", "32", "-analyzeduration", "0"]
        return argv

    with patch.object(decoder, "decoder_args", args):
        yield


def local_voice(hass: HomeAssistant, target: HaTarget) -> LocalVoiceEntity:
    """The local voice entity of the target's config entry."""
    registry = er.async_get(hass)
    player = registry.async_get(target.entity_id)
    assert player is not None
    assert player.config_entry_id is not None
    for entry in er.async_entries_for_config_entry(registry, player.config_entry_id):
        if entry.domain == "tts":
            entity = hass.data[DATA_COMPONENT].get_entity(entry.entity_id)
            assert isinstance(entity, LocalVoiceEntity)
            return entity
    msg = "the stream's local voice is not there"
    raise RuntimeError(msg)


class LlmText:
    """Text in pieces; remembers when the first sentence was completed."""

    def __init__(
        self, gate: asyncio.Event | None = None, hold_rest: float = 0.0
    ) -> None:
        self.first_sentence_at: float | None = None
        self.done = asyncio.Event()
        self._gate = gate
        self._hold_rest = hold_rest

    async def pieces(self) -> AsyncGenerator[str]:
        loop = asyncio.get_running_loop()
        try:
            for index, piece in enumerate(PIECES):
                if index == FIRST_SENTENCE_PIECE:
                    if self._gate is not None:
                        await self._gate.wait()
                    self.first_sentence_at = loop.time()
                elif index == FIRST_SENTENCE_PIECE + 1:
                    await asyncio.sleep(max(PIECE_S, self._hold_rest))
                elif index:
                    await asyncio.sleep(PIECE_S)
                yield piece
        finally:
            self.done.set()


async def first_chunk_ms(entity: LocalVoiceEntity) -> float:
    """First sentence complete -> its first audio out of async_stream_tts_audio."""
    loop = asyncio.get_running_loop()
    text = LlmText()
    header = len(wav_stream_header(NATIVE_RATE))
    response = await entity.internal_async_stream_tts_audio(
        TTSAudioRequest(LANGUAGE, {}, text.pieces())
    )
    first: float | None = None
    received = 0
    async with aclosing(response.data_gen) as audio:
        async for chunk in audio:
            received += len(chunk)
            # Past the WAV header: audio.
            if first is None and received > header:
                first = loop.time()
    assert first is not None
    assert text.first_sentence_at is not None
    return (first - text.first_sentence_at) * 1000


@dataclass
class Announced:
    first: Series = field(default_factory=Series)
    heard: Series = field(default_factory=Series)


async def announced_first_sentence(
    hass: HomeAssistant,
    target: HaTarget,
    voice: str,
    receiver: ListenReceiver,
    options: dict[str, Any] | None,
) -> tuple[float, float | None]:
    """First sentence complete -> first sample written, and -> heard."""
    started: asyncio.Future[PlaybackItem] = hass.loop.create_future()

    def on_item(item: PlaybackItem) -> None:
        if item.started_at is not None and not started.done():
            started.set_result(item)

    remove = target.stream.add_item_listener(on_item)
    gate = asyncio.Event()
    text = LlmText(gate, hold_rest=HOLD_REST_S)
    try:
        result = tts.async_create_stream(
            hass, voice, language=LANGUAGE, options=options
        )
        result.async_set_message_stream(text.pieces())
        await hass.services.async_call(
            "media_player",
            "play_media",
            {
                "entity_id": target.entity_id,
                "media_content_id": result.media_source_id,
                "media_content_type": "music",
                "announce": True,
            },
            blocking=True,
        )
        await asyncio.sleep(THINK_S)
        base = receiver.total_samples
        gate.set()
        item = await asyncio.wait_for(started, STARTED_TIMEOUT)
        arrived = await heard_at(receiver, base, HEARD_TIMEOUT)
    finally:
        gate.set()
        remove()
        target.stream.stop_playback()
    await settle(receiver)
    # Home Assistant still renders the rest of the reply: let it end here,
    # not after the stream's entry has unloaded.
    await asyncio.wait_for(text.done.wait(), HEARD_TIMEOUT)
    assert item.started_at is not None
    assert text.first_sentence_at is not None
    at = text.first_sentence_at
    return (
        (item.started_at - at) * 1000,
        None if arrived is None else (arrived - at) * 1000,
    )


# --------------------------------------------------------------------------- run


@dataclass
class RateFigures:
    floor: Series = field(default_factory=Series)
    first: dict[str, Series] = field(default_factory=dict)
    heard: dict[str, Series] = field(default_factory=dict)
    chunk: Series = field(default_factory=Series)
    announced: dict[str, Announced] = field(default_factory=dict)


async def measure_rate(
    hass: HomeAssistant, rate: int, runs: int, rng: np.random.Generator, mp3: bytes
) -> RateFigures:
    figures = RateFigures()
    print(f"  {rate} Hz: codec floor ...", file=sys.stderr, flush=True)
    figures.floor = await codec_floor(rate, runs, rng)
    async with contextlib.AsyncExitStack() as stack:
        receiver = await stack.enter_async_context(ListenReceiver(rate=rate))
        target = await stack.enter_async_context(ha_target(hass, receiver.url, rate))
        assert isinstance(target, HaTarget)
        await asyncio.wait_for(target.stream.wait_available(), 30)
        await receiver.wait_for_session(1, timeout=30)
        await receiver.wait_for_samples(receiver.total_samples + rate, 10)
        print(f"  {rate} Hz: onsets ...", file=sys.stderr, flush=True)
        voices: dict[str, Target] = {"local voice": target}
        if mp3:
            voices["MP3 entity"] = target.speaking_with(MP3_VOICE)
        for name, voice_target in voices.items():
            figures.first[name], figures.heard[name] = await onsets(
                voice_target, receiver, runs, rng
            )
        print(f"  {rate} Hz: streaming ...", file=sys.stderr, flush=True)
        entity = local_voice(hass, target)
        for _ in range(WARM_UP):
            await first_chunk_ms(entity)
        for _ in range(runs):
            figures.chunk.values.append(await first_chunk_ms(entity))
        if HAS_MESSAGE_STREAMS:
            assert entity.entity_id is not None
            for name, options, probing in ANNOUNCED:
                announced = figures.announced[name] = Announced()
                for run in range(WARM_UP + runs):
                    with contextlib.nullcontext() if probing else no_probing():
                        first, heard = await announced_first_sentence(
                            hass, target, entity.entity_id, receiver, options
                        )
                    if run < WARM_UP:
                        continue
                    announced.first.values.append(first)
                    announced.heard.record(heard)
    return figures


def verdict(value: float, target: float) -> str:
    if math.isnan(value):
        return "-"
    return "meets" if value <= target else "misses"


def report(figures: dict[int, RateFigures]) -> None:
    label = 44
    print()
    print("(a) codec floor: real-time writer -> tone heard (project publisher args)")
    print(f"{'':<{label}} {HEADER}")
    for rate, fig in figures.items():
        print(f"{f'AAC {rate // 1000} kHz':<{label}} {fig.floor.row()}")
    print()
    print("(b) call -> speech (cold), Home Assistant's announce action")
    print(f"{'':<{label}} {HEADER}")
    for rate, fig in figures.items():
        for name in fig.heard:
            row = f"{rate // 1000} kHz {name}: first sample written"
            print(f"{row:<{label}} {fig.first[name].row()}")
            row = f"{rate // 1000} kHz {name}: onset at the reader"
            print(f"{row:<{label}} {fig.heard[name].row()}")
    print()
    print(f"(c) onset - floor (target <= floor + {TARGET_OVER_FLOOR_MS:.0f} ms)")
    for rate, fig in figures.items():
        for name, heard in fig.heard.items():
            p50 = heard.p50 - fig.floor.p50
            p95 = heard.p95 - fig.floor.p95
            print(
                f"{f'{rate // 1000} kHz {name}':<{label}} p50 {p50:+7.1f} ms"
                f"  p95 {p95:+7.1f} ms  ({verdict(p50, TARGET_OVER_FLOOR_MS)}"
                " the target at p50)"
            )
    print()
    print(
        "(d) streaming: first sentence complete in message_gen -> "
        f"(target {TARGET_FIRST_SENTENCE_MS:.0f} ms to the first sample)"
    )
    print(f"{'':<{label}} {HEADER}")
    for rate, fig in figures.items():
        row = f"{rate // 1000} kHz: first audio chunk out"
        print(f"{row:<{label}} {fig.chunk.row()}")
        for name, announced in fig.announced.items():
            row = f"{rate // 1000} kHz result stream ({name}): 1st sample"
            print(f"{row:<{label}} {announced.first.row()}")
            row = f"{rate // 1000} kHz result stream ({name}): onset"
            print(f"{row:<{label}} {announced.heard.row()}")
    if not HAS_MESSAGE_STREAMS:
        print("  (no message streams in this Home Assistant: announced figures n/a)")


async def run(args: argparse.Namespace) -> None:
    cancel_on_sigterm()
    check_clocks()
    print("Speech onset at an RTSP reader, against the codec floor; streaming speech")
    print(f"{machine()}; Home Assistant {ha_version}")
    print(f'{args.runs} runs per series after {WARM_UP} untimed; text = "{SHORT}"')
    rng = np.random.default_rng(SEED)
    figures: dict[int, RateFigures] = {}
    async with home_assistant() as hass:
        mp3 = await recorded_mp3()
        # Another TTS entity: it returns the same recorded speech as MP3.
        await add_voice(hass, ToneVoice("Recorded voice", mp3))
        for rate in RATES:
            figures[rate] = await measure_rate(hass, rate, args.runs, rng, mp3)
    report(figures)


async def recorded_mp3() -> bytes:
    """The short text spoken by espeak-ng and encoded as MP3."""
    engine = SpeechEngine()
    await engine.async_start()
    try:
        pcm = await engine.synthesize(SHORT, language=LANGUAGE)
        return await encode_mp3(pcm, engine.native_rate)
    finally:
        await engine.async_stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, help="runs per series (default 15)")
    parser.add_argument("--quick", action="store_true", help="5 runs per series")
    args = parser.parse_args()
    args.runs = args.runs or (5 if args.quick else 15)
    began = time.monotonic()
    run_main(lambda: run(args))
    print(f"total {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
