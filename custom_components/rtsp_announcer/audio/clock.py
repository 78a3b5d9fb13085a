"""The real-time clock that paces PCM into ffmpeg from the event loop.

The clock owns timing: every frame period it writes whole frames until the
number of samples produced equals the wall clock plus a small lead. It never
sleeps a fixed interval (that accumulates drift); it schedules itself at the
deadline of the next frame, computed from the origin, so the sample count
cannot drift however late each callback runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from .models import BYTES_PER_SAMPLE, ClockStats
from .pcm import silence

_LOGGER = logging.getLogger(__name__)

DEFAULT_MAX_CATCHUP_MS = 1000
LATE_THRESHOLD = 0.005
# A deadline computed in floats can land a hair before its sample boundary;
# a thousandth of a sample of tolerance keeps such a tick from writing nothing.
_EPSILON = 1e-3


class Cancellable(Protocol):
    """What a scheduler returns: something that can be cancelled."""

    def cancel(self) -> None:
        """Cancel the scheduled call."""


class Scheduler(Protocol):
    """A time source that can call back at an absolute time (an event loop)."""

    def time(self) -> float:
        """Return the scheduler's monotonic time in seconds."""
        ...

    def call_at(self, when: float, callback: Callable[[], object]) -> Cancellable:
        """Call `callback` at time `when`."""
        ...


class FrameSource(Protocol):
    """Where audio comes from: the playback queue."""

    def read(self, samples: int) -> bytes | None:
        """Return exactly `samples` of PCM, or None when there is nothing to play."""


class FrameSink(Protocol):
    """Where audio goes: the transport to ffmpeg."""

    @property
    def connected(self) -> bool:
        """Whether ffmpeg is connected."""

    def can_accept(self, nbytes: int) -> bool:
        """Whether `nbytes` can be written without exceeding the buffer bound."""

    def write(self, frame: bytes) -> None:
        """Write a frame without blocking."""


class Clock:
    """Writes one frame per frame period: announcement audio or silence."""

    def __init__(
        self,
        scheduler: Scheduler,
        *,
        sample_rate: int,
        frame_ms: int,
        lead_ms: int,
        source: FrameSource,
        sink: FrameSink,
        max_catchup_ms: int = DEFAULT_MAX_CATCHUP_MS,
    ) -> None:
        """Prepare a stopped clock; `start()` sets its origin."""
        self._scheduler = scheduler
        self._rate = sample_rate
        self._frame = sample_rate * frame_ms // 1000
        self._lead = sample_rate * lead_ms // 1000
        self._max_catchup = sample_rate * max_catchup_ms // 1000
        self._source = source
        self._sink = sink
        self._silence = silence(self._frame)
        self._frame_bytes = self._frame * BYTES_PER_SAMPLE
        self._origin = 0.0
        self._produced = 0
        self._deadline = 0.0
        self._handle: Cancellable | None = None
        self._running = False
        self.stats = ClockStats()

    @property
    def running(self) -> bool:
        """Whether the clock is pacing."""
        return self._running

    @property
    def frame_samples(self) -> int:
        """Samples per frame."""
        return self._frame

    @property
    def samples_produced(self) -> int:
        """Samples accounted for since start: produced or skipped after a stall."""
        return self._produced

    def start(self) -> None:
        """Start pacing from now."""
        if self._running:
            return
        self._running = True
        self._origin = self._scheduler.time()
        self._produced = 0
        self._deadline = self._origin
        self._tick()

    def stop(self) -> None:
        """Stop pacing; nothing stays scheduled."""
        self._running = False
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def due(self, now: float | None = None) -> int:
        """Samples that should have been produced by `now` (lead included)."""
        if now is None:
            now = self._scheduler.time()
        return int((now - self._origin) * self._rate + _EPSILON) + self._lead

    def drift_samples(self, now: float | None = None) -> int:
        """How far production trails the wall clock: 0 up to one frame when on time."""
        return self.due(now) - self._produced

    def _tick(self) -> None:
        now = self._scheduler.time()
        self.stats.ticks += 1
        lag = now - self._deadline
        self.stats.max_tick_lag = max(self.stats.max_tick_lag, lag)
        try:
            self._fill(now)
        except Exception:
            # The stream must never stop: count, log and keep pacing.
            self.stats.errors += 1
            _LOGGER.exception("Clock tick failed")
        if not self._running:
            return
        self._deadline = (
            self._origin + (self._produced + self._frame - self._lead) / self._rate
        )
        self._handle = self._scheduler.call_at(self._deadline, self._tick)

    def _fill(self, now: float) -> None:
        due = self.due(now)
        backlog = due - self._produced
        if backlog > self._max_catchup + self._lead + self._frame:
            # Too late to catch up without bursting seconds of audio at the
            # readers: skip the missed time and start again from the lead.
            skipped = backlog - self._lead
            self._produced += skipped
            self.stats.samples_skipped += skipped
            self.stats.underruns += 1
            _LOGGER.debug("Clock stalled: skipped %d samples", skipped)
        while self._produced + self._frame <= due:
            self._produced += self._frame
            # When this frame was due; the lead filled at start was due at once.
            written_at = self._origin + max(self._produced - self._lead, 0) / self._rate
            if now - written_at > LATE_THRESHOLD:
                self.stats.frames_late += 1
            self._emit()

    def _emit(self) -> None:
        sink = self._sink
        if not sink.connected:
            # Announcements wait in the queue while ffmpeg restarts.
            self.stats.frames_offline += 1
            return
        if not sink.can_accept(self._frame_bytes):
            self.stats.frames_dropped += 1
            return
        try:
            frame = self._source.read(self._frame)
        except Exception:
            self.stats.errors += 1
            _LOGGER.exception("Audio source failed; writing silence")
            frame = None
        try:
            sink.write(self._silence if frame is None else frame)
        except Exception:
            self.stats.errors += 1
            _LOGGER.exception("Writing PCM to ffmpeg failed")
            return
        self.stats.frames_written += 1
