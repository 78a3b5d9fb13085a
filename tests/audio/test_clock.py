"""The clock's pacing with a simulated time source."""

from __future__ import annotations

import asyncio
import random

import pytest

from custom_components.rtsp_announcer.audio.clock import Clock
from custom_components.rtsp_announcer.audio.playback import PlaybackItem, PlaybackQueue
from custom_components.rtsp_announcer.audio.stream import LiveSource

from .fakes import CountingSink, FakeScheduler, ListSource

RATE = 24000
FRAME_MS = 20
LEAD_MS = 60
FRAME = RATE * FRAME_MS // 1000
LEAD = RATE * LEAD_MS // 1000


def make_clock(
    scheduler: FakeScheduler,
    sink: CountingSink | None = None,
    source: ListSource | None = None,
    **kwargs: int,
) -> tuple[Clock, CountingSink, ListSource]:
    sink = sink or CountingSink()
    # Busy: paced frame by frame, as while an item plays (idle pacing is
    # tested on its own below).
    source = source or ListSource(busy=True)
    clock = Clock(
        scheduler,
        sample_rate=kwargs.pop("sample_rate", RATE),
        frame_ms=kwargs.pop("frame_ms", FRAME_MS),
        lead_ms=kwargs.pop("lead_ms", LEAD_MS),
        source=source,
        sink=sink,
        **kwargs,
    )
    return clock, sink, source


def started(scheduler: FakeScheduler) -> tuple[Clock, CountingSink, float]:
    """A busy clock, started now; with the time it started at."""
    clock, sink, _ = make_clock(scheduler)
    start = scheduler.now
    clock.start()
    return clock, sink, start


def is_idle(part: Clock | LiveSource) -> bool:
    """Read the flag afresh (it changes behind mypy's narrowing)."""
    return part.idle


def written_samples(sink: CountingSink) -> int:
    return sink.bytes // 2


def ahead(sink: CountingSink, scheduler: FakeScheduler, start: float) -> float:
    """Samples written ahead of the wall clock."""
    return written_samples(sink) - (scheduler.now - start) * RATE


@pytest.mark.parametrize(("rate", "frame_ms"), [(24000, 20), (8000, 10), (44100, 60)])
def test_no_drift_over_an_hour(rate: int, frame_ms: int) -> None:
    """Samples written track the wall clock within one frame for a simulated hour."""
    rng = random.Random(7)
    # Callbacks run up to 15 ms late, as on a busy loop.
    scheduler = FakeScheduler(lag=lambda: rng.uniform(0, 0.015))
    clock, sink, _ = make_clock(scheduler, sample_rate=rate, frame_ms=frame_ms)
    frame = rate * frame_ms // 1000
    lead = rate * LEAD_MS // 1000
    start = scheduler.now
    clock.start()
    worst = 0
    for _ in range(60):
        scheduler.advance(60.0)
        expected = int((scheduler.now - start) * rate) + lead
        error = expected - written_samples(sink)
        worst = max(worst, abs(error))
        assert 0 <= error < frame + rate * 0.016
    # The lag never accumulates: an hour in, the error is still under a frame
    # plus the latest callback's lag.
    assert worst < frame + rate * 0.016
    assert clock.stats.underruns == 0
    assert clock.stats.frames_dropped == 0
    clock.stop()
    assert scheduler.pending == 0


def test_exact_when_callbacks_are_on_time() -> None:
    scheduler = FakeScheduler()
    clock, sink, start = started(scheduler)
    scheduler.advance(3600.0)
    assert ahead(sink, scheduler, start) == pytest.approx(LEAD, abs=FRAME)
    assert 0 <= clock.drift_samples() < FRAME
    assert clock.stats.frames_late == 0
    clock.stop()


def test_lead_is_bounded() -> None:
    """Production never runs more than the lead (plus one frame) ahead of time."""
    rng = random.Random(3)
    scheduler = FakeScheduler(lag=lambda: rng.uniform(0, 0.004))
    clock, sink, start = started(scheduler)
    for _ in range(5000):
        scheduler.advance(rng.uniform(0.001, 0.05))
        assert (
            LEAD - FRAME - RATE * 0.004 <= ahead(sink, scheduler, start) <= LEAD + FRAME
        )
    clock.stop()


def test_catches_up_after_a_stall() -> None:
    """A 500 ms stall is made good at once: no gap in the sample count."""
    scheduler = FakeScheduler()
    clock, sink, start = started(scheduler)
    scheduler.advance(1.0)
    scheduler.stall(0.5)
    # Right after the stall everything missed has been written.
    assert ahead(sink, scheduler, start) == pytest.approx(LEAD, abs=FRAME)
    assert clock.stats.underruns == 0
    assert clock.stats.frames_late >= 0.5 * 1000 / FRAME_MS - 1
    scheduler.advance(10.0)
    assert 0 <= clock.drift_samples() < FRAME
    clock.stop()


def test_resynchronises_after_a_long_stall() -> None:
    """Beyond the catch-up limit the missed time is skipped and counted."""
    scheduler = FakeScheduler()
    clock, sink, _ = make_clock(scheduler, max_catchup_ms=1000)
    clock.start()
    scheduler.advance(1.0)
    before = written_samples(sink)
    scheduler.stall(5.0)
    burst = written_samples(sink) - before
    # It did not dump five seconds of audio at the readers in one go.
    assert burst <= LEAD + 2 * FRAME
    assert clock.stats.underruns == 1
    assert clock.stats.samples_skipped == pytest.approx(5.0 * RATE, abs=LEAD + FRAME)
    # Accounting still matches the wall clock.
    assert 0 <= clock.drift_samples() < FRAME
    scheduler.advance(2.0)
    assert clock.stats.underruns == 1
    clock.stop()


def test_back_pressure_drops_frames_without_consuming_audio() -> None:
    scheduler = FakeScheduler()
    source = ListSource([b"\x01\x00" * FRAME] * 10)
    clock, sink, _ = make_clock(scheduler, source=source)
    sink.accepting = False
    clock.start()
    scheduler.advance(1.0)
    assert sink.bytes == 0
    assert clock.stats.frames_dropped == pytest.approx(1.0 * 1000 / FRAME_MS + 3, abs=1)
    # The announcement is still there for when ffmpeg reads again.
    assert len(source.frames) == 10
    sink.accepting = True
    scheduler.advance(1.0)
    assert source.frames == []
    clock.stop()


def test_offline_sink_keeps_time_and_the_queue() -> None:
    scheduler = FakeScheduler()
    source = ListSource([b"\x01\x00" * FRAME] * 3, busy=True)
    clock, sink, _ = make_clock(scheduler, source=source)
    sink.connected = False
    clock.start()
    scheduler.advance(2.0)
    assert clock.stats.frames_offline > 0
    assert source.reads == 0
    sink.connected = True
    scheduler.advance(0.1)
    assert source.frames == []
    assert 0 <= clock.drift_samples() < FRAME
    clock.stop()


def test_failures_never_stop_the_clock(caplog: pytest.LogCaptureFixture) -> None:
    scheduler = FakeScheduler()
    source = ListSource()
    clock, sink, _ = make_clock(scheduler, source=source)
    sink.keep = True
    source.fail = True
    clock.start()
    scheduler.advance(0.2)
    assert clock.stats.errors > 0
    # Silence was written in place of the broken source.
    assert sink.frames
    assert all(frame == bytes(FRAME * 2) for frame in sink.frames)
    source.fail = False
    sink.fail_writes = True
    scheduler.advance(0.2)
    sink.fail_writes = False
    errors = clock.stats.errors
    scheduler.advance(0.2)
    assert clock.stats.errors == errors
    assert clock.running
    assert "Audio source failed" in caplog.text
    clock.stop()
    assert scheduler.pending == 0


def test_stop_from_inside_a_tick_leaves_nothing_scheduled() -> None:
    scheduler = FakeScheduler()
    clock: Clock | None = None

    class StoppingSource(ListSource):
        def read(self, samples: int) -> bytes | None:
            assert clock is not None
            clock.stop()
            return None

    clock, _, _ = make_clock(scheduler, source=StoppingSource(busy=True))
    clock.start()
    scheduler.advance(1.0)
    assert not clock.running
    assert scheduler.pending == 0


def test_start_twice_is_harmless() -> None:
    scheduler = FakeScheduler()
    clock, sink, _ = make_clock(scheduler)
    clock.start()
    clock.start()
    scheduler.advance(1.0)
    assert written_samples(sink) == pytest.approx(RATE + LEAD, abs=FRAME)
    clock.stop()


# --------------------------------------------------------------------------- idle

IDLE_BLOCK_MS = 200
IDLE_BLOCK = RATE * IDLE_BLOCK_MS // 1000


def idle_clock(scheduler: FakeScheduler) -> tuple[Clock, CountingSink]:
    """A clock with nothing to play, writing silence in blocks of IDLE_BLOCK_MS."""
    clock, sink, _ = make_clock(
        scheduler, source=ListSource(), idle_block_ms=IDLE_BLOCK_MS
    )
    return clock, sink


def test_tick_listeners_ride_on_every_tick(caplog: pytest.LogCaptureFixture) -> None:
    """Others' periodic work rides on the ticks: no wake-up of its own."""
    scheduler = FakeScheduler()
    clock, sink = idle_clock(scheduler)
    heard: list[float] = []

    def broken(now: float) -> None:
        msg = "listener broke"
        raise RuntimeError(msg)

    remove = clock.add_tick_listener(heard.append)
    remove_broken = clock.add_tick_listener(broken)
    clock.start()
    scheduler.advance(1.0)
    # Once per tick, with the tick's time, after its writing.
    assert len(heard) == clock.stats.ticks
    assert heard == sorted(heard)
    assert heard[-1] <= scheduler.now
    assert sink.bytes > 0
    # A broken listener is counted and logged; the clock goes on.
    assert clock.stats.errors == clock.stats.ticks
    assert "Clock tick listener failed" in caplog.text
    remove()
    remove()
    remove_broken()
    ticks = clock.stats.ticks
    scheduler.advance(1.0)
    assert clock.stats.ticks > ticks
    assert len(heard) == ticks
    clock.stop()
    assert scheduler.pending == 0


def test_a_wake_from_a_tick_listener_keeps_one_tick_scheduled() -> None:
    scheduler = FakeScheduler()
    source = ListSource()
    clock, sink, _ = make_clock(scheduler, source=source, idle_block_ms=200)
    sink.keep = True
    woken: list[float] = []

    def queue_once(now: float) -> None:
        if not woken:
            woken.append(now)
            source.frames.append(b"\x01\x00" * FRAME)
            clock.wake()

    clock.start()
    clock.add_tick_listener(queue_once)
    scheduler.advance(0.5)
    audio = [index for index, frame in enumerate(sink.frames) if any(frame)]
    assert len(audio) == 1
    assert scheduler.pending == 1
    clock.stop()


def test_idle_writes_silence_in_blocks() -> None:
    """Idle, the clock wakes once per block, and the lead stays bounded."""
    scheduler = FakeScheduler()
    clock, sink = idle_clock(scheduler)
    sink.keep = True
    start = scheduler.now
    clock.start()
    assert is_idle(clock)
    for _ in range(200):
        scheduler.advance(0.05)
        assert (
            LEAD - FRAME <= ahead(sink, scheduler, start) <= LEAD - FRAME + IDLE_BLOCK
        )
    # Ten seconds, five blocks a second (plus the first one).
    assert clock.stats.ticks == pytest.approx(10 * 1000 / IDLE_BLOCK_MS, abs=2)
    assert {len(frame) for frame in sink.frames[1:]} == {IDLE_BLOCK * 2}
    assert all(not any(frame) for frame in sink.frames)
    assert clock.stats.frames_late == 0
    clock.stop()
    assert scheduler.pending == 0


def test_idle_does_not_drift_over_an_hour() -> None:
    rng = random.Random(11)
    scheduler = FakeScheduler(lag=lambda: rng.uniform(0, 0.015))
    clock, sink = idle_clock(scheduler)
    start = scheduler.now
    clock.start()
    for _ in range(60):
        scheduler.advance(60.0)
        lead = ahead(sink, scheduler, start)
        assert LEAD - FRAME - RATE * 0.016 <= lead <= LEAD - FRAME + IDLE_BLOCK
    assert clock.stats.underruns == 0
    assert clock.stats.ticks < 3600 * 1000 / IDLE_BLOCK_MS * 1.01
    clock.stop()


def test_wake_writes_the_first_frame_at_once() -> None:
    """An item queued while idle is written at the call, after the silence."""
    scheduler = FakeScheduler()
    source = ListSource()
    clock, sink, _ = make_clock(scheduler, source=source, idle_block_ms=IDLE_BLOCK_MS)
    sink.keep = True
    clock.start()
    scheduler.advance(1.03)
    assert is_idle(clock)
    voice = [b"\x01\x00" * FRAME] * 10
    source.frames.extend(voice)
    called = scheduler.now
    clock.wake()
    scheduler.run_until(called)
    assert scheduler.now == called
    assert sink.frames[-1] == voice[0]
    assert not is_idle(clock)
    # The rest follows frame by frame, in time, and then the clock idles again.
    scheduler.advance(1.0)
    assert source.frames == []
    assert sink.frames.count(voice[0]) == len(voice)
    assert is_idle(clock)
    assert clock.stats.frames_dropped == 0
    scheduler.advance(10.0)
    assert -IDLE_BLOCK <= clock.drift_samples() < FRAME
    clock.stop()


def test_first_audio_that_comes_later_is_written_within_a_frame() -> None:
    """A producer that starts after the call: its first frame is not held back
    until the silence written ahead has played, and no silence is added."""
    scheduler = FakeScheduler()
    source = ListSource()
    clock, sink, _ = make_clock(scheduler, source=source, idle_block_ms=IDLE_BLOCK_MS)
    sink.keep = True
    clock.start()
    scheduler.advance(1.01)
    source.busy = True
    clock.wake()
    scheduler.advance(0.05)
    written = sink.bytes
    assert sink.frames[-1] == bytes(IDLE_BLOCK * 2)
    voice = b"\x01\x00" * FRAME
    source.frames.append(voice)
    arrived = scheduler.now
    scheduler.run_until(arrived + FRAME_MS / 1000)
    assert sink.frames[-1] == voice
    assert sink.bytes == written + len(voice)
    source.busy = False
    scheduler.advance(1.0)
    assert is_idle(clock)
    clock.stop()


def test_wake_while_active_changes_nothing() -> None:
    scheduler = FakeScheduler()
    clock, sink, _ = make_clock(scheduler)
    clock.start()
    scheduler.advance(1.0)
    ticks = clock.stats.ticks
    clock.wake()
    scheduler.run_until(scheduler.now)
    assert clock.stats.ticks == ticks
    clock.stop()
    clock.wake()
    assert scheduler.pending == 0


def test_wake_from_inside_a_tick_is_not_reentrant() -> None:
    """A wake-up from the clock's own callbacks runs as the next tick."""
    scheduler = FakeScheduler()
    clock: Clock | None = None
    depth = 0
    deepest = 0

    class WakingSink(CountingSink):
        def write(self, frame: bytes) -> None:
            nonlocal depth, deepest
            depth += 1
            deepest = max(deepest, depth)
            assert clock is not None
            clock.wake()
            super().write(frame)
            depth -= 1

    clock, _, source = make_clock(
        scheduler, sink=WakingSink(), source=ListSource(), idle_block_ms=IDLE_BLOCK_MS
    )
    clock.start()
    scheduler.advance(1.0)
    assert deepest == 1
    assert clock.running
    clock.stop()
    assert scheduler.pending == 0


def test_idle_catches_up_and_resynchronises() -> None:
    scheduler = FakeScheduler()
    clock, sink = idle_clock(scheduler)
    start = scheduler.now
    clock.start()
    scheduler.advance(1.0)
    scheduler.stall(0.5)
    assert ahead(sink, scheduler, start) >= LEAD - FRAME
    assert clock.stats.underruns == 0
    before = written_samples(sink)
    scheduler.stall(5.0)
    assert written_samples(sink) - before <= LEAD + IDLE_BLOCK + FRAME
    assert clock.stats.underruns == 1
    scheduler.advance(2.0)
    assert -IDLE_BLOCK <= clock.drift_samples() < FRAME
    clock.stop()


def test_a_source_that_cannot_say_whether_it_is_idle_is_paced_frame_by_frame(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(ListSource):
        @property
        def idle(self) -> bool:
            msg = "queue broke"
            raise RuntimeError(msg)

    scheduler = FakeScheduler()
    clock, sink, _ = make_clock(scheduler, source=Broken(), idle_block_ms=IDLE_BLOCK_MS)
    start = scheduler.now
    clock.start()
    scheduler.advance(1.0)
    assert clock.running
    assert not is_idle(clock)
    assert clock.stats.errors > 0
    assert written_samples(sink) == pytest.approx(
        (scheduler.now - start) * RATE + LEAD, abs=FRAME
    )
    assert "pacing frame by frame" in caplog.text
    clock.stop()


def test_back_pressure_while_idle_drops_blocks() -> None:
    scheduler = FakeScheduler()
    clock, sink = idle_clock(scheduler)
    sink.accepting = False
    clock.start()
    scheduler.advance(1.0)
    assert sink.bytes == 0
    assert clock.stats.frames_dropped > 0
    sink.accepting = True
    sink.connected = False
    scheduler.advance(1.0)
    assert clock.stats.frames_offline > 0
    sink.connected = True
    scheduler.advance(1.0)
    assert sink.bytes > 0
    assert -IDLE_BLOCK <= clock.drift_samples() < FRAME
    clock.stop()


async def test_an_item_queued_on_an_idle_stream_is_written_at_once() -> None:
    """On the real loop: queueing wakes the clock out of a long idle block."""
    loop = asyncio.get_running_loop()
    queue = PlaybackQueue()
    live = True
    source = LiveSource(queue, is_live=lambda: live, max_replay_bytes=1 << 20)
    written: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    class Sink(CountingSink):
        def write(self, frame: bytes) -> None:
            super().write(frame)
            written.put_nowait((loop.time(), frame))

    # Blocks of two seconds: only the wake-up writes the item before the next
    # block; the rest of it follows once the silence ahead has played.
    clock = Clock(
        loop,
        sample_rate=RATE,
        frame_ms=FRAME_MS,
        lead_ms=LEAD_MS,
        source=source,
        sink=Sink(),
        idle_block_ms=2000,
    )
    queue.on_added = clock.wake
    clock.start()
    try:
        await written.get()
        assert is_idle(clock)
        assert is_idle(source)
        item = PlaybackItem(sample_rate=RATE)
        await item.feed(b"\x01\x00" * FRAME * 3)
        item.end()
        called = loop.time()
        queue.add(item)
        assert not is_idle(source)
        async with asyncio.timeout(1):
            when, frame = await written.get()
        assert frame == b"\x01\x00" * FRAME
        assert when - called < 1.0
        async with asyncio.timeout(10):
            await item.wait()
        assert is_idle(source)
    finally:
        clock.stop()
