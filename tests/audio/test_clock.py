"""The clock's pacing with a simulated time source."""

from __future__ import annotations

import random

import pytest

from custom_components.rtsp_announcer.audio.clock import Clock

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
    source = source or ListSource()
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


def written_samples(sink: CountingSink) -> int:
    return sink.bytes // 2


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
    clock, sink, _ = make_clock(scheduler)
    start = scheduler.now
    clock.start()
    scheduler.advance(3600.0)
    elapsed = scheduler.now - start
    assert written_samples(sink) == pytest.approx(elapsed * RATE + LEAD, abs=FRAME)
    assert 0 <= clock.drift_samples() < FRAME
    assert clock.stats.frames_late == 0
    clock.stop()


def test_lead_is_bounded() -> None:
    """Production never runs more than the lead (plus one frame) ahead of time."""
    rng = random.Random(3)
    scheduler = FakeScheduler(lag=lambda: rng.uniform(0, 0.004))
    clock, sink, _ = make_clock(scheduler)
    start = scheduler.now
    clock.start()
    for _ in range(5000):
        scheduler.advance(rng.uniform(0.001, 0.05))
        ahead = written_samples(sink) - (scheduler.now - start) * RATE
        assert ahead <= LEAD + FRAME
        assert ahead >= LEAD - FRAME - RATE * 0.004
    clock.stop()


def test_catches_up_after_a_stall() -> None:
    """A 500 ms stall is made good at once: no gap in the sample count."""
    scheduler = FakeScheduler()
    clock, sink, _ = make_clock(scheduler)
    start = scheduler.now
    clock.start()
    scheduler.advance(1.0)
    scheduler.stall(0.5)
    # Right after the stall everything missed has been written.
    assert written_samples(sink) == pytest.approx(
        (scheduler.now - start) * RATE + LEAD, abs=FRAME
    )
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
    source = ListSource([b"\x01\x00" * FRAME] * 3)
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

    clock, _, _ = make_clock(scheduler, source=StoppingSource())
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
