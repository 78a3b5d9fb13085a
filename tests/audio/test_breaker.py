"""The circuit breaker: closed, open after failures, half-open after a cool-down."""

from __future__ import annotations

import pytest

from custom_components.rtsp_announcer.audio.breaker import (
    BreakerState,
    CircuitBreaker,
)
from custom_components.rtsp_announcer.audio.exceptions import InvalidOptionError


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def state(breaker: CircuitBreaker) -> BreakerState:
    return breaker.state


def wait_out_the_cool_down(breaker: CircuitBreaker, clock: FakeClock) -> None:
    """Calls stay refused until the 30 s cool-down is over; then one may try."""
    clock.now += 29
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()


def test_opens_after_consecutive_failures_only() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, cool_down=30, clock=clock)
    assert state(breaker) is BreakerState.CLOSED
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    assert breaker.failures == 0
    for _ in range(2):
        breaker.record_failure()
        assert breaker.allow()
    breaker.record_failure()
    assert state(breaker) is BreakerState.OPEN
    assert breaker.failures == 3
    assert not breaker.allow()
    assert breaker.retry_in() == 30


def test_one_trial_after_the_cool_down_then_closes() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, cool_down=30, clock=clock)
    breaker.record_failure()
    clock.now += 29.9
    assert not breaker.allow()
    clock.now += 0.1
    assert state(breaker) is BreakerState.HALF_OPEN
    assert breaker.retry_in() is None
    assert breaker.allow()
    # Only one trial at a time.
    assert not breaker.allow()
    breaker.record_success()
    assert state(breaker) is BreakerState.CLOSED
    assert breaker.allow()


def test_a_failed_trial_opens_for_another_cool_down() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, cool_down=30, clock=clock)
    for _ in range(3):
        breaker.record_failure()
    clock.now += 30
    assert breaker.allow()
    breaker.record_failure()
    assert state(breaker) is BreakerState.OPEN
    assert breaker.failures == 4
    wait_out_the_cool_down(breaker, clock)


def test_a_trial_that_never_reports_is_given_up() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, cool_down=30, clock=clock)
    breaker.record_failure()
    clock.now += 30
    assert breaker.allow()
    wait_out_the_cool_down(breaker, clock)


def test_defaults() -> None:
    breaker = CircuitBreaker()
    assert breaker.failure_threshold == 3
    assert breaker.cool_down == 30.0


@pytest.mark.parametrize(("threshold", "cool_down"), [(0, 30.0), (3, -1.0)])
def test_bad_parameters_are_refused(threshold: int, cool_down: float) -> None:
    with pytest.raises(InvalidOptionError):
        CircuitBreaker(failure_threshold=threshold, cool_down=cool_down)
