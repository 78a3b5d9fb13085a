"""A circuit breaker: stop asking a voice that keeps failing, for a while.

Closed, every request goes through. After `failure_threshold` failures in a
row the breaker opens: requests are refused without trying, for `cool_down`
seconds. Then it is half-open: one trial request goes through (others are
still refused while it runs); its success closes the breaker, its failure
opens it again for another cool-down. A trial that never reports (its
caller was cancelled) is given up after one more cool-down.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum
from typing import Final

from .exceptions import InvalidOptionError

DEFAULT_FAILURE_THRESHOLD: Final = 3
DEFAULT_COOL_DOWN: Final = 30.0


class BreakerState(StrEnum):
    """Whether requests go through."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Counts consecutive failures of one engine and decides who may try it."""

    def __init__(
        self,
        *,
        failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
        cool_down: float = DEFAULT_COOL_DOWN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Open after `failure_threshold` failures, retry after `cool_down` s.

        Args:
            failure_threshold: Consecutive failures that open the breaker.
            cool_down: Seconds an open breaker refuses every request.
            clock: Monotonic seconds; tests pass their own.
        """
        if failure_threshold < 1 or cool_down < 0:
            msg = "failure_threshold must be at least 1, cool_down not negative"
            raise InvalidOptionError(msg)
        self.failure_threshold = failure_threshold
        self.cool_down = cool_down
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._trial = False
        self._trial_at = 0.0
        self.failures = 0

    @property
    def state(self) -> BreakerState:
        """The state now: an open breaker whose cool-down is over is half-open."""
        if (
            self._state is BreakerState.OPEN
            and self._clock() - self._opened_at >= self.cool_down
        ):
            self._state = BreakerState.HALF_OPEN
            self._trial = False
        return self._state

    def allow(self) -> bool:
        """Whether a request may go to the engine now.

        Half-open, only the first caller gets True: it is the trial, and must
        report its outcome with `record_success` or `record_failure`.
        """
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and (
            not self._trial or self._clock() - self._trial_at >= self.cool_down
        ):
            self._trial = True
            self._trial_at = self._clock()
            return True
        return False

    def record_success(self) -> None:
        """The engine spoke: close the breaker and forget past failures."""
        self._state = BreakerState.CLOSED
        self._trial = False
        self.failures = 0

    def record_failure(self) -> None:
        """The engine failed: open after enough of them, or after a trial."""
        self.failures += 1
        if (
            self._state is BreakerState.HALF_OPEN
            or self.failures >= self.failure_threshold
        ):
            self._state = BreakerState.OPEN
            self._opened_at = self._clock()
            self._trial = False

    def retry_in(self) -> float | None:
        """Seconds until an open breaker lets a trial through; None if not open."""
        if self.state is not BreakerState.OPEN:
            return None
        return max(self.cool_down - (self._clock() - self._opened_at), 0.0)
