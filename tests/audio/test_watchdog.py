"""The watchdog timer with a simulated time source: when it wakes the loop."""

from __future__ import annotations

from collections.abc import Callable

from custom_components.rtsp_announcer.audio.watchdog import Watchdog

from .fakes import FakeScheduler

STALL = 5.0
PERIOD = 0.5
TICK = 0.1


class Stalls:
    """The publisher's check, reduced to progress and a stall timeout."""

    def __init__(self, scheduler: FakeScheduler) -> None:
        self.scheduler = scheduler
        self.last_progress = scheduler.now
        self.stalled_at: float | None = None
        self.checks = 0

    def progress(self) -> None:
        self.last_progress = self.scheduler.now

    def check(self, now: float) -> float | None:
        self.checks += 1
        deadline = self.last_progress + STALL
        if now < deadline:
            return deadline
        self.stalled_at = now
        return None


def every(scheduler: FakeScheduler, period: float, action: Callable[[], None]) -> None:
    """Run `action` every `period` seconds for as long as the test advances."""

    def run() -> None:
        action()
        scheduler.call_at(scheduler.now + period, run)

    scheduler.call_at(scheduler.now + period, run)


def test_fires_once_at_the_deadline_when_nothing_moves_it() -> None:
    scheduler = FakeScheduler()
    stalls = Stalls(scheduler)
    watchdog = Watchdog(scheduler, stalls.check)
    start = scheduler.now
    watchdog.arm(start + STALL)
    scheduler.advance(60)
    assert stalls.stalled_at == start + STALL
    assert scheduler.wakeups == 1
    assert watchdog.when is None
    assert scheduler.pending == 0


def test_progress_moves_the_deadline_at_one_wakeup_per_stall_timeout() -> None:
    scheduler = FakeScheduler()
    stalls = Stalls(scheduler)
    watchdog = Watchdog(scheduler, stalls.check)
    watchdog.arm(scheduler.now + STALL)
    every(scheduler, PERIOD, stalls.progress)
    before = scheduler.wakeups
    scheduler.advance(60)
    timer_wakeups = scheduler.wakeups - before - int(60 / PERIOD)
    # Not one per progress block, not one a second: one per stall timeout (the
    # timer moves to the last progress, up to a period before it fired).
    assert 60 / STALL <= timer_wakeups <= 60 / (STALL - PERIOD) + 1
    assert stalls.stalled_at is None
    assert watchdog.when is not None
    assert watchdog.when - scheduler.now <= STALL


def test_ticks_move_the_timer_before_it_wakes_the_loop() -> None:
    scheduler = FakeScheduler()
    stalls = Stalls(scheduler)
    watchdog = Watchdog(scheduler, stalls.check)
    watchdog.arm(scheduler.now + STALL)

    def tick() -> None:
        # The clock's tick: progress read from the pipe, then the nudge.
        if round(scheduler.now / TICK) % round(PERIOD / TICK) == 0:
            stalls.progress()
        watchdog.nudge(scheduler.now, within=1.0)

    every(scheduler, TICK, tick)
    before = scheduler.wakeups
    scheduler.advance(60)
    # Every wake-up was a tick: the watchdog's own timer never fired.
    assert scheduler.wakeups - before == round(60 / TICK)
    assert stalls.stalled_at is None
    # The check ran only near the deadlines, not at every tick.
    assert stalls.checks < 60 / TICK / 4


def test_a_stall_is_caught_at_its_deadline_with_ticks_going_on() -> None:
    scheduler = FakeScheduler()
    stalls = Stalls(scheduler)
    watchdog = Watchdog(scheduler, stalls.check)
    watchdog.arm(scheduler.now + STALL)
    progressing = True

    def tick() -> None:
        if progressing:
            stalls.progress()
        watchdog.nudge(scheduler.now, within=1.0)

    every(scheduler, TICK, tick)
    scheduler.advance(10)
    progressing = False
    last = stalls.last_progress
    scheduler.advance(10)
    assert stalls.stalled_at is not None
    # Never before the stall timeout; no later than the next tick after it.
    assert last + STALL <= stalls.stalled_at <= last + STALL + TICK + 1e-9
    assert watchdog.when is None


def test_a_nudge_far_from_the_deadline_does_not_check() -> None:
    scheduler = FakeScheduler()
    stalls = Stalls(scheduler)
    watchdog = Watchdog(scheduler, stalls.check)
    watchdog.arm(scheduler.now + STALL)
    watchdog.nudge(scheduler.now, within=1.0)
    assert stalls.checks == 0


def test_the_check_may_arm_a_new_phase_itself() -> None:
    scheduler = FakeScheduler()
    fired: list[float] = []
    watchdog: Watchdog

    def check(now: float) -> float | None:
        fired.append(now)
        if len(fired) == 1:
            # A new phase began (the first progress block): another deadline.
            watchdog.arm(now + 2.0)
            return now + 2.0
        return None

    watchdog = Watchdog(scheduler, check)
    start = scheduler.now
    watchdog.arm(start + 1.0)
    scheduler.advance(10)
    assert fired == [start + 1.0, start + 3.0]
    assert scheduler.pending == 0


def test_arming_earlier_and_cancelling_leave_one_timer_or_none() -> None:
    scheduler = FakeScheduler()
    stalls = Stalls(scheduler)
    watchdog = Watchdog(scheduler, stalls.check)
    watchdog.arm(scheduler.now + 15.0)
    watchdog.arm(scheduler.now + STALL)
    assert scheduler.pending == 1
    assert watchdog.when == scheduler.now + STALL
    watchdog.cancel()
    watchdog.cancel()
    assert scheduler.pending == 0
    watchdog.nudge(scheduler.now, within=100.0)
    scheduler.advance(60)
    assert stalls.checks == 0
    assert scheduler.wakeups == 0
