"""A watchdog timer that wakes the event loop only when its deadline comes.

The publisher waits for one of two deadlines: the start timeout while ffmpeg
starts, the stall timeout after the last progress while it publishes. Looking
every second woke the loop once a second per stream for nothing; this timer
sits at the deadline instead. Progress moves the deadline later without
touching the timer (no new timer per progress block): when the timer fires
and the check finds the deadline has moved, it is armed again at the new one,
one wake-up per stall timeout.

A wake-up the loop makes anyway (the clock's tick) may run that check shortly
before the timer is due (`nudge`) and move the timer then. asyncio drops a
cancelled timer from its heap without waking, so a healthy stream's watchdog
then costs no wake-up of its own.
"""

from __future__ import annotations

from collections.abc import Callable

from .clock import Cancellable, Scheduler

# Given the time, the check acts on a deadline that has passed and returns
# None (nothing left to watch), or returns the deadline now in force.
type Check = Callable[[float], float | None]


class Watchdog:
    """One timer at the next deadline; the check decides what is due."""

    def __init__(self, scheduler: Scheduler, check: Check) -> None:
        """Prepare a disarmed watchdog."""
        self._scheduler = scheduler
        self._check = check
        self._when: float | None = None
        self._handle: Cancellable | None = None

    @property
    def when(self) -> float | None:
        """When the timer fires; None while disarmed."""
        return self._when

    def arm(self, when: float) -> None:
        """Fire at `when`, earlier or later than before."""
        if self._handle is not None:
            self._handle.cancel()
        self._when = when
        self._handle = self._scheduler.call_at(when, self._fire)

    def cancel(self) -> None:
        """Disarm; nothing stays scheduled."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._when = None

    def nudge(self, now: float, within: float) -> None:
        """Run the check now if the timer would fire within `within` seconds.

        When the deadline has moved meanwhile, the timer moves with it before
        it wakes the loop; when it has not, the timer stays for its deadline.
        """
        when = self._when
        if when is None or when - now > within:
            return
        self._follow(self._check(now))

    def _fire(self) -> None:
        when = self._when
        self._handle = None
        if when is None:
            return
        # The timer fired, so its deadline has come: a loop may run a timer a
        # hair before the float it was given.
        self._follow(self._check(max(self._scheduler.time(), when)))

    def _follow(self, deadline: float | None) -> None:
        if deadline is None:
            self.cancel()
        elif deadline != self._when or self._handle is None:
            # The check may have armed the timer itself (a new phase began).
            self.arm(deadline)
