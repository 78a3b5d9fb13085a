"""Long fault runs of the audio core against real RTSP servers; prints figures.

    .venv/bin/python -m benchmarks.faults kills [--kills 100]
    .venv/bin/python -m benchmarks.faults outage [--seconds 60]
    .venv/bin/python -m benchmarks.faults streams [--streams 20] [--minutes 2]
    .venv/bin/python -m benchmarks.faults hangs [--runs 3]
    .venv/bin/python -m benchmarks.faults all [--quick]

`kills`: SIGKILL the publishing ffmpeg at random moments, half of them in the
middle of an announcement (a 3 s tone fed as PCM). Printed: time until the
stream is seen down, until it publishes again and until the receiver gets audio
again; that every announcement finished (none lost); the clock's drift. The
supervisor's `stable_after` is 2 s here, so each kill meets the initial back-off
as an isolated crash in the field does.

`outage`: the RTSP server goes away for `--seconds`. Printed: the back-off
delays and number of attempts, how soon the stream publishes once the server is
back, and that an announcement queued during the outage is played.

`streams`: `--streams` streams publish at once, each to its own ffmpeg listener,
for `--minutes`, each playing a tone every few seconds. Printed: per-stream
drift, underruns, late and dropped frames; event-loop lag p50/p99 (a 10 ms
timer); CPU of this process and of all ffmpeg processes.

`hangs`: Home Assistant in-process, one stream publishing to an ffmpeg listener
(the reader). An announcement whose source hangs is called, and 0.2 s later a
short tone (a WAV file) is queued behind it. Three sources that hang: a TTS
entity whose audio stream never yields (the call's `tts_entity_id`), an HTTP
`media_id` that sends its headers and then trickles 16 bytes every 0.5 s, and
an HTTP `media_id` on a server that accepts TCP and never answers. Printed per
source, `--runs` times: the limits in force, call -> the tone's onset at the
reader (p50/max), how long the hung call took to fail, and its outcome (the
translation key of the error raised and the announcement events seen) against
the expected one. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import signal
import statistics
import sys
import tempfile
import time
import wave
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from homeassistant.components.tts import TextToSpeechEntity, TtsAudioType
from homeassistant.components.tts.entity import TTSAudioRequest, TTSAudioResponse
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError

from benchmarks.announce import heard_at, home_assistant, leftovers, settle
from benchmarks.clock import loop_lag, percentile
from custom_components.rtsp_announcer.audio import options as opt
from custom_components.rtsp_announcer.audio.models import (
    PublisherState,
    StreamSettings,
)
from custom_components.rtsp_announcer.audio.playback import ItemState, PlaybackItem
from custom_components.rtsp_announcer.audio.publisher import Supervision
from custom_components.rtsp_announcer.audio.stream import AudioStream
from custom_components.rtsp_announcer.const import (
    DOMAIN,
    EVENT_ANNOUNCEMENT,
    SERVICE_ANNOUNCE,
)
from tests.common import add_entry, add_voice
from tests.helpers.analysis import arrival_gaps, continuity, tone_segments
from tests.helpers.http import HttpServer, Reply, SilentServer
from tests.helpers.rtsp import ListenReceiver, Session, free_port

RATE = 24000


def spread(values: list[float], unit: str = "s", scale: float = 1.0) -> str:
    if not values:
        return "n/a"
    scaled = [v * scale for v in values]
    return (
        f"p50 {percentile(scaled, 50):.2f} {unit}, p95 {percentile(scaled, 95):.2f}"
        f" {unit}, max {max(scaled):.2f} {unit} (n={len(values)})"
    )


def tone(seconds: float, freq: float = 440.0) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    return (np.sin(2 * np.pi * freq * t) * 8000).astype("<i2").tobytes()


async def play_tone(stream: AudioStream, seconds: float) -> PlaybackItem:
    """Queue a tone as an announcement; its producer feeds it like speech."""
    item = stream.new_item(title=f"tone {seconds:.1f} s")
    stream.queue.add(item)
    pcm = tone(seconds)

    async def produce() -> None:
        step = RATE // 2 * 2
        for start in range(0, len(pcm), step):
            if not await item.feed(pcm[start : start + step]):
                return
        item.end()

    stream.run_producer(produce(), item)
    return item


async def until(
    predicate: Callable[[], bool],
    timeout: float,  # noqa: ASYNC109
) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not predicate():
        if loop.time() - start > timeout:
            msg = f"condition not met within {timeout} s"
            raise TimeoutError(msg)
        await asyncio.sleep(0.005)
    return loop.time() - start


def new_session(receiver: ListenReceiver, seen: int) -> Callable[[], bool]:
    return lambda: len(receiver.sessions) > seen


TONE_HZ = 440.0
GAP_S = 0.1
# The first second of a session is ffmpeg starting up (a burst of buffered audio).
SETTLE_S = 1.0


def tones_heard(receiver: ListenReceiver, seconds: float) -> int:
    """Tones of `seconds` heard whole at the receiver (a 60 ms margin)."""
    segments = tone_segments(receiver.samples(), RATE, TONE_HZ, max_gap_ms=20)
    return sum(1 for start, end in segments if end - start >= seconds - 0.06)


@dataclass
class Heard:
    """What sessions at a receiver say about the stream's timing."""

    drift_ms: list[float] = field(default_factory=list)
    ppm: list[float] = field(default_factory=list)
    shortest_s: float = math.inf
    gaps: int = 0
    longest_gap_ms: float = 0.0


# Below this a session's rate says more about the packets at its ends.
PPM_MIN_S = 30.0


def heard(sessions: list[Session], min_s: float = 3.0) -> Heard:
    """Drift (samples received against the receiver's wall clock) and gaps.

    Sessions shorter than `min_s` after their first second are left out of the
    drift; gaps are counted within every session after its first second (the
    time between sessions is the fault itself).
    """
    figures = Heard()
    for session in sessions:
        arrivals = session.arrivals
        if not arrivals:
            continue
        settled = [a for a in arrivals if a[0] - arrivals[0][0] >= SETTLE_S]
        if len(settled) >= 2:
            figures.gaps += len(arrival_gaps(settled, GAP_S))
            longest = float(np.diff([t for t, _ in settled]).max())
            figures.longest_gap_ms = max(figures.longest_gap_ms, longest * 1000)
        if arrivals[-1][0] - arrivals[0][0] < SETTLE_S + min_s:
            continue
        kept = continuity(arrivals, RATE, skip_s=SETTLE_S)
        figures.drift_ms.append(kept.drift_s * 1000)
        figures.ppm.append((kept.slope_ratio - 1) * 1e6)
        figures.shortest_s = min(figures.shortest_s, kept.wall_s)
    return figures


def describe(figures: Heard) -> str:
    gaps = (
        f"stretches over {GAP_S * 1000:.0f} ms without data {figures.gaps}"
        f" (longest pause {figures.longest_gap_ms:.0f} ms)"
    )
    if not figures.drift_ms:
        return f"no session long enough to measure drift; {gaps}"
    rate = (
        f" ({min(figures.ppm):+.0f} to {max(figures.ppm):+.0f} ppm)"
        if figures.shortest_s >= PPM_MIN_S
        else ""
    )
    return (
        f"drift at the receiver {min(figures.drift_ms):+.1f} to"
        f" {max(figures.drift_ms):+.1f} ms per session{rate} (one AAC packet is"
        f" ~43 ms); {gaps}"
    )


# --------------------------------------------------------------------------- kills


async def kills(count: int, seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible kill moments
    timing = Supervision(stable_after=2.0)
    async with ListenReceiver(rate=RATE) as receiver:
        stream = AudioStream(StreamSettings(url=receiver.url), supervision=timing)
        await stream.start()
        try:
            async with asyncio.timeout(30):
                await stream.wait_available()
            publisher = stream.publisher
            assert publisher is not None
            down: list[float] = []
            back: list[float] = []
            audio_again: list[float] = []
            items: list[PlaybackItem] = []
            mid = 0
            for n in range(count):
                await asyncio.sleep(rng.uniform(2.2, 3.5))
                if n % 2 == 0:
                    items.append(await play_tone(stream, 3.0))
                    await until(lambda: stream.queue.playing, 10)
                    await asyncio.sleep(rng.uniform(0.1, 2.5))
                mid += stream.queue.playing
                pid = publisher.pid
                assert pid is not None
                restarted = new_session(receiver, len(receiver.sessions))
                killed = time.monotonic()
                os.kill(pid, signal.SIGKILL)
                await until(lambda: not stream.available, 5)
                down.append(time.monotonic() - killed)
                await until(lambda: stream.available, 60)
                back.append(time.monotonic() - killed)
                await until(restarted, 10)
                audio_again.append(receiver.sessions[-1].started_at - killed)
                if (n + 1) % 10 == 0:
                    print(f"  {n + 1} kills, back in {spread(back)}")
            await asyncio.gather(*(item.wait() for item in items))
            await settle(receiver)
            states = [item.state for item in items]
            whole = tones_heard(receiver, 3.0)
            print(f"SIGKILL x{count} ({mid} during an announcement):")
            print(f"  seen down after {spread(down, 'ms', 1000)}")
            print(f"  publishing again after {spread(back)}")
            print(f"  audio at the receiver again after {spread(audio_again)}")
            print(
                f"  announcements heard whole at the receiver: {whole}/{len(items)}"
                f" (the queue reports {states.count(ItemState.FINISHED)} finished;"
                f" replays {stream.source.replays}, restarts {publisher.restarts})"
            )
            print(f"  {describe(heard(receiver.sessions))}")
        finally:
            await stream.stop()


# --------------------------------------------------------------------------- outage


async def outage(seconds: float) -> None:
    port = free_port()
    receiver = ListenReceiver(port, rate=RATE)
    await receiver.start()
    stream = AudioStream(StreamSettings(url=receiver.url))
    delays: list[float] = []
    attempts: list[float] = []

    def on_change() -> None:
        publisher = stream.publisher
        if publisher is None:
            return
        if publisher.state is PublisherState.BACKOFF and publisher.retry_delay:
            if len(delays) <= publisher.restarts:
                delays.append(publisher.retry_delay)
        elif publisher.state is PublisherState.STARTING:
            attempts.append(time.monotonic())

    stream.add_listener(on_change)
    await stream.start()
    try:
        async with asyncio.timeout(30):
            await stream.wait_available()
        gone = time.monotonic()
        await receiver.stop()
        await until(lambda: not stream.available, 5)
        print(
            f"server gone: stream down after {(time.monotonic() - gone) * 1000:.0f} ms"
        )
        await asyncio.sleep(seconds / 2)
        queued = await play_tone(stream, 1.0)
        await asyncio.sleep(seconds / 2)
        tries = len(attempts)
        back = time.monotonic()
        sessions = len(receiver.sessions)
        await receiver.start()
        took = await until(lambda: stream.available, 60)
        state = await asyncio.wait_for(queued.wait(), 30)
        await settle(receiver)
        tone_s = 0.0
        for session in receiver.sessions[sessions:]:
            segments = tone_segments(
                receiver.session_samples(session), RATE, TONE_HZ, max_gap_ms=20
            )
            tone_s += sum(end - start for start, end in segments)
        print(f"server gone for {seconds:.0f} s: {tries} attempts, back-off {delays}")
        print(
            f"server back: publishing {took:.2f} s later"
            f" (listening after {receiver.ready_times[-1] - back:.2f} s);"
            f" announcement queued during the outage: {tone_s:.2f} s of its 1.00 s"
            f" tone heard at the receiver (the queue reports {state})"
        )
    finally:
        await stream.stop()
        await receiver.stop()


# --------------------------------------------------------------------------- streams


def ffmpeg_cpu_seconds() -> float:
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.name() == "ffmpeg":
                times = child.cpu_times()
                total += times.user + times.system
    return total


async def streams(count: int, minutes: float) -> None:
    receivers = [ListenReceiver(rate=RATE) for _ in range(count)]
    for receiver in receivers:
        await receiver.start()
    all_streams = [AudioStream(StreamSettings(url=r.url)) for r in receivers]
    baseline = await loop_lag(5.0)
    try:
        for stream in all_streams:
            await stream.start()
        async with asyncio.timeout(60):
            await asyncio.gather(*(s.wait_available() for s in all_streams))
        print(f"{count} streams publishing; running {minutes:g} min")
        me = psutil.Process()
        cpu_me = sum(me.cpu_times()[:2])
        cpu_ff = ffmpeg_cpu_seconds()
        wall = time.monotonic()

        async def talk(stream: AudioStream) -> None:
            while True:
                await asyncio.sleep(random.uniform(2.0, 6.0))  # noqa: S311
                item = await play_tone(stream, random.uniform(0.5, 2.0))  # noqa: S311
                await item.wait()

        talkers = [asyncio.create_task(talk(stream)) for stream in all_streams]
        lags = await loop_lag(minutes * 60)
        for task in talkers:
            task.cancel()
        await asyncio.gather(*talkers, return_exceptions=True)
        wall = time.monotonic() - wall
        me_cpu = (sum(me.cpu_times()[:2]) - cpu_me) / wall * 100
        ff_cpu = (ffmpeg_cpu_seconds() - cpu_ff) / wall * 100
        restarts = [s.publisher.restarts for s in all_streams if s.publisher]
        figures = Heard()
        for receiver in receivers:
            one = heard(receiver.sessions)
            figures.drift_ms += one.drift_ms
            figures.ppm += one.ppm
            figures.shortest_s = min(figures.shortest_s, one.shortest_s)
            figures.gaps += one.gaps
            figures.longest_gap_ms = max(figures.longest_gap_ms, one.longest_gap_ms)
        sessions = sum(len(r.sessions) for r in receivers)
        print(f"{describe(figures)}; sessions {sessions}")
        stats = [s.clock.stats for s in all_streams]
        print(
            f"the writers' own counters, for comparison: underruns"
            f" {sum(s.underruns for s in stats)}, dropped"
            f" {sum(s.frames_dropped for s in stats)}, max tick lag"
            f" {max(s.max_tick_lag for s in stats) * 1000:.1f} ms, publisher restarts"
            f" {sum(restarts)}"
        )
        print(
            f"loop lag p50 {percentile(lags, 50):.2f} ms, p99"
            f" {percentile(lags, 99):.2f} ms, max {max(lags):.1f} ms (without streams:"
            f" p50 {percentile(baseline, 50):.2f}, p99 {percentile(baseline, 99):.2f});"
            f" mean {statistics.fmean(lags):.2f} ms"
        )
        print(
            f"CPU: this process (the streams and the receivers' PCM) {me_cpu:.1f} %"
            f" of one core, {count} publishers + {count} receivers {ff_cpu:.1f} %"
            " (benchmarks.scale measures the streams alone)"
        )
    finally:
        for stream in all_streams:
            await stream.stop()
        for receiver in receivers:
            await receiver.stop()


# --------------------------------------------------------------------------- hangs

HANG_ENTITY = "media_player.bench_hangs"
HANGING_VOICE = "tts.hanging_voice"
# The limits: the call's own and the stream's options (small on purpose).
CALL_TIMEOUT = 3.0
HANG_OPTIONS: dict[str, float] = {
    opt.FIRST_AUDIO_TIMEOUT.key: 2.0,
    opt.NETWORK_TIMEOUT.key: 2.0,
    opt.SOURCE_TIMEOUT.key: 10.0,
}
NEXT_AFTER_S = 0.2
NEXT_TONE_S = 0.5
NEXT_TONE_HZ = 660.0
HANG_HEARD_TIMEOUT = 20.0
EXPECTED_KEY = "announcement_failed"
EXPECTED_EVENT = "failed"


class HangingVoice(TextToSpeechEntity):
    """Another integration's TTS entity whose audio never comes."""

    _attr_name = "Hanging voice"
    _attr_default_language = "en"
    _attr_supported_languages = ["en"]  # noqa: RUF012

    async def async_get_tts_audio(
        self, message: str, language: str, options: dict[str, Any]
    ) -> TtsAudioType:
        await asyncio.Event().wait()
        return None, None

    async def async_stream_tts_audio(
        self, request: TTSAudioRequest
    ) -> TTSAudioResponse:
        async def never() -> AsyncIterator[bytes]:
            async for _ in request.message_gen:
                pass
            await asyncio.Event().wait()
            yield b""

        return TTSAudioResponse("mp3", never())  # type: ignore[arg-type]


@dataclass
class HangFigures:
    heard: list[float] = field(default_factory=list)
    failed_after: list[float] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    right: int = 0
    not_heard: int = 0


def write_tone(path: Path) -> str:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(tone(NEXT_TONE_S, NEXT_TONE_HZ))
    return str(path)


async def announce(hass: HomeAssistant, **data: Any) -> Any:
    data = {"entity_id": HANG_ENTITY, "preannounce": False, **data}
    return await hass.services.async_call(
        DOMAIN, SERVICE_ANNOUNCE, data, blocking=True, return_response=True
    )


async def hang_once(
    hass: HomeAssistant,
    receiver: ListenReceiver,
    hung: dict[str, Any],
    next_media: str,
    events: list[dict[str, Any]],
    figures: HangFigures,
) -> None:
    await settle(receiver)
    base = receiver.total_samples
    seen = len(events)
    called = time.monotonic()
    hung_call = asyncio.ensure_future(announce(hass, timeout=CALL_TIMEOUT, **hung))
    returned: list[float] = []
    hung_call.add_done_callback(lambda _: returned.append(time.monotonic()))
    await asyncio.sleep(NEXT_AFTER_S)
    next_call = asyncio.ensure_future(announce(hass, media_id=next_media))
    heard = await heard_at(receiver, base, HANG_HEARD_TIMEOUT)
    key = "no error"
    try:
        await asyncio.wait_for(hung_call, HANG_HEARD_TIMEOUT)
    except HomeAssistantError as err:
        key = str(err.translation_key)
        error = (err.translation_placeholders or {}).get("error")
        if error:
            key += f" ({error})"
    except TimeoutError:
        key = "still hanging"
    failed_at = (returned[0] if returned else time.monotonic()) - called
    response = await asyncio.wait_for(next_call, HANG_HEARD_TIMEOUT)
    types = [str(event.get("type")) for event in events[seen:]]
    next_state = response[HANG_ENTITY]["state"]
    if heard is None:
        figures.not_heard += 1
    else:
        figures.heard.append(heard - called)
    figures.failed_after.append(failed_at)
    outcome = f"{key}; events {', '.join(types)}; next {next_state}"
    figures.outcomes.append(outcome)
    figures.right += (
        key.startswith(EXPECTED_KEY)
        and EXPECTED_EVENT in types
        and next_state == "finished"
        and heard is not None
    )


def hang_row(name: str, figures: HangFigures) -> None:
    heard = figures.heard
    n = len(figures.outcomes)
    print(f"{name}:")
    if heard:
        print(
            f"  call -> next announcement heard at the reader: p50"
            f" {statistics.median(heard):.2f} s, max {max(heard):.2f} s"
            f" (n={len(heard)}, not heard {figures.not_heard})"
        )
    else:
        print(f"  next announcement never heard (n={n})")
    failed = figures.failed_after
    print(
        f"  hung call returned after p50 {statistics.median(failed):.2f} s,"
        f" max {max(failed):.2f} s"
    )
    print(
        f"  outcome right {figures.right}/{n} (expected {EXPECTED_KEY},"
        f" event '{EXPECTED_EVENT}', next finished)"
    )
    for outcome in sorted(set(figures.outcomes)):
        print(f"    x{figures.outcomes.count(outcome)} {outcome}")


async def hangs(runs: int) -> None:
    limits = ", ".join(f"{name} {value:g} s" for name, value in HANG_OPTIONS.items())
    print(
        f"hung sources, {runs} runs each; limits: call timeout {CALL_TIMEOUT:g} s;"
        f" stream options {limits}; next announcement: a {NEXT_TONE_S:g} s tone"
        f" queued {NEXT_AFTER_S:g} s after the call"
    )
    async with contextlib.AsyncExitStack() as stack:
        hass = await stack.enter_async_context(home_assistant())
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        server = await stack.enter_async_context(HttpServer())
        silent = await stack.enter_async_context(SilentServer())
        receiver = await stack.enter_async_context(ListenReceiver(rate=RATE))
        await add_voice(hass, HangingVoice())
        events: list[dict[str, Any]] = []

        @callback
        def on_event(event: Event) -> None:
            events.append(dict(event.data))

        stack.callback(hass.bus.async_listen(EVENT_ANNOUNCEMENT, on_event))
        hass.config.allowlist_external_dirs = {str(directory)}
        silent_url = f"http://127.0.0.1:{silent.port}/never.wav"
        hass.config.allowlist_external_urls = {server.url("/"), silent_url}
        trickle = server.route(
            "/trickle.wav",
            Reply(body=b"\0" * 1_000_000, send_first=0, trickle=16, every=0.5),
        )
        next_media = write_tone(directory / "next.wav")
        entry = add_entry(
            hass,
            receiver.url,
            name="Bench hangs",
            **{opt.SAMPLE_RATE.key: RATE, **HANG_OPTIONS},
        )
        if not await hass.config_entries.async_setup(entry.entry_id):
            msg = f"the config entry did not load: {entry.state}"
            raise RuntimeError(msg)
        try:
            await asyncio.wait_for(entry.runtime_data.stream.wait_available(), 30)
            await receiver.wait_for_session(1, timeout=30)
            scenarios: dict[str, dict[str, Any]] = {
                "TTS entity whose stream never yields": {
                    "message": "Never spoken.",
                    "tts_entity_id": HANGING_VOICE,
                },
                "HTTP media_id: headers, then 16 bytes per 0.5 s": {
                    "media_id": trickle
                },
                "HTTP media_id: TCP accepted, never answered": {"media_id": silent_url},
            }
            for name, hung in scenarios.items():
                figures = HangFigures()
                for _ in range(runs):
                    await hang_once(hass, receiver, hung, next_media, events, figures)
                hang_row(name, figures)
        finally:
            await hass.config_entries.async_unload(entry.entry_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=["kills", "outage", "streams", "hangs", "all"])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=3, help="runs per hung source")
    parser.add_argument(
        "--quick", action="store_true", help="10 kills, 10 s outage, 5 streams 20 s"
    )
    args = parser.parse_args()
    if args.quick:
        args.kills, args.seconds, args.streams, args.minutes = 10, 10.0, 5, 1 / 3
    runs: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
        "kills": lambda: kills(args.kills, args.seed),
        "outage": lambda: outage(args.seconds),
        "streams": lambda: streams(args.streams, args.minutes),
        "hangs": lambda: hangs(args.runs),
    }
    for name, run in runs.items():
        if args.what in {name, "all"}:
            asyncio.run(run())
    if args.what == "hangs":
        print(f"clean-up: {leftovers()}", file=sys.stderr)


if __name__ == "__main__":
    main()
