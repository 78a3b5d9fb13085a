"""The real-time clock that paces PCM into ffmpeg from the event loop.

The clock owns timing: every frame period it writes whole frames until the
number of samples produced equals the wall clock plus a small lead. It never
sleeps a fixed interval (that accumulates drift); it schedules itself at the
deadline of the next frame, computed from the origin, so the sample count
cannot drift however late each callback runs.

While there is nothing to say (the source is idle) it writes silence in blocks
of `idle_block_ms` instead, one wake-up per block: the lead then ranges from
the active clock's lowest (lead less one frame) to that plus a block. An item
queued meanwhile wakes the clock (`wake()`): from then on it looks every frame
period whether the item has audio and writes its first frame as soon as it
has (at once when it was queued ready), then paces frame by frame until the
source is idle again. The silence already written still plays before the
item: that is the price of the idle blocks, at most one block, half of one on
average.

The ticks are the stream's one regular wake-up of the event loop: work that
can wait for the next one (reading ffmpeg's progress, moving the publisher's
watchdog) rides on them (`add_tick_listener`) instead of waking the loop
itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from .models import BYTES_PER_SAMPLE, ClockStats
from .pcm import silence

_LOGGER = logging.getLogger(__name__)

DEFAULT_MAX_CATCHUP_MS = 1000
# Silence per wake-up while idle; ffmpeg reads it at the real-time rate (its
# input is paced), so readers still get a packet per encoded frame.
DEFAULT_IDLE_BLOCK_MS = 200
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

    @property
    def idle(self) -> bool:
        """Whether nothing waits to be played: silence until the clock is woken."""


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
        idle_block_ms: int = DEFAULT_IDLE_BLOCK_MS,
    ) -> None:
        """Prepare a stopped clock; `start()` sets its origin."""
        self._scheduler = scheduler
        self._rate = sample_rate
        self._frame = sample_rate * frame_ms // 1000
        self._lead = sample_rate * lead_ms // 1000
        self._max_catchup = sample_rate * max_catchup_ms // 1000
        self._source = source
        self._sink = sink
        # Whole frames, at least one: the idle block is silence in frame steps.
        self._idle_extra = (
            max(sample_rate * idle_block_ms // 1000 // self._frame - 1, 0) * self._frame
        )
        self._silence = silence(self._frame)
        self._frame_bytes = self._frame * BYTES_PER_SAMPLE
        self._origin = 0.0
        self._produced = 0
        self._deadline = 0.0
        self._handle: Cancellable | None = None
        self._running = False
        self._idle = False
        self._in_tick = False
        self._woken = False
        # Woken and ahead of time: waiting for the first audio to write it.
        self._starting = False
        self._tick_listeners: list[Callable[[float], None]] = []
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
    def idle(self) -> bool:
        """Whether the clock writes silence in idle blocks."""
        return self._idle

    @property
    def samples_produced(self) -> int:
        """Samples accounted for since start: produced or skipped after a stall."""
        return self._produced

    def add_tick_listener(
        self, listener: Callable[[float], None]
    ) -> Callable[[], None]:
        """Call `listener(now)` after each tick's writing; returns a remover.

        A listener runs inside the tick, so a `wake()` it causes is safe; it
        must be quick: the next frame waits for it.
        """
        self._tick_listeners.append(listener)

        def remove() -> None:
            if listener in self._tick_listeners:
                self._tick_listeners.remove(listener)

        return remove

    def start(self) -> None:
        """Start pacing from now."""
        if self._running:
            return
        self._running = True
        self._idle = False
        self._woken = False
        self._starting = False
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

    def wake(self) -> None:
        """Something was queued: leave the idle blocks and write its first frame.

        Safe to call from anywhere, a tick's own callbacks included: the frame
        is written from a callback scheduled now, never from inside the caller.
        """
        if not self._running or not self._idle or self._woken:
            return
        self._woken = True
        if self._in_tick:
            # The tick in progress schedules the next one when it ends.
            return
        if self._handle is not None:
            self._handle.cancel()
        self._deadline = self._scheduler.time()
        self._handle = self._scheduler.call_at(self._deadline, self._tick)

    def due(self, now: float | None = None) -> int:
        """Samples that should have been produced by `now` (lead included)."""
        if now is None:
            now = self._scheduler.time()
        return int((now - self._origin) * self._rate + _EPSILON) + self._lead

    def drift_samples(self, now: float | None = None) -> int:
        """How far production trails the wall clock (lead included).

        0 up to one frame when on time; while idle, production runs up to an
        idle block ahead, down to minus that block less a frame.
        """
        return self.due(now) - self._produced

    def _tick(self) -> None:
        now = self._scheduler.time()
        self.stats.ticks += 1
        lag = now - self._deadline
        self.stats.max_tick_lag = max(self.stats.max_tick_lag, lag)
        self._in_tick = True
        try:
            try:
                self._fill(now)
            except Exception:
                # The stream must never stop: count, log and keep pacing.
                self.stats.errors += 1
                _LOGGER.exception("Clock tick failed")
            for listener in list(self._tick_listeners):
                try:
                    listener(now)
                except Exception:
                    self.stats.errors += 1
                    _LOGGER.exception("Clock tick listener failed")
        finally:
            self._in_tick = False
        if not self._running:
            return
        self._deadline = (
            self._origin + (self._produced + self._frame - self._lead) / self._rate
        )
        if self._woken:
            # Woken during this tick: the first frame goes out at once.
            self._deadline = now
        elif self._starting:
            # Look again for the first audio a frame period from now.
            self._deadline = min(self._deadline, now + self._frame / self._rate)
        self._handle = self._scheduler.call_at(self._deadline, self._tick)

    def _source_idle(self) -> bool:
        try:
            return bool(self._source.idle)
        except Exception:
            self.stats.errors += 1
            _LOGGER.exception("Audio source failed; pacing frame by frame")
            return False

    def _choose_pace(self) -> bool:
        """Decide between idle blocks and frames for this tick; True: idle."""
        woken, self._woken = self._woken, False
        idle = not woken and self._source_idle()
        if woken:
            self._starting = True
        elif idle:
            self._starting = False
        if idle != self._idle:
            self._idle = idle
            _LOGGER.debug("Clock %s", "idle" if idle else "active")
        return idle

    def _resynchronise(self, due: int) -> None:
        backlog = due - self._produced
        if backlog > self._max_catchup + self._lead + self._frame:
            # Too late to catch up without bursting seconds of audio at the
            # readers: skip the missed time and start again from the lead.
            skipped = backlog - self._lead
            self._produced += skipped
            self.stats.samples_skipped += skipped
            self.stats.underruns += 1
            _LOGGER.debug("Clock stalled: skipped %d samples", skipped)

    def _fill(self, now: float) -> None:
        idle = self._choose_pace()
        due = self.due(now)
        self._resynchronise(due)
        if idle:
            self._fill_idle(now, due + self._idle_extra)
            return
        if self._starting and self._produced + self._frame > due:
            # Ahead by up to an idle block: the item's first frame goes out
            # as soon as it is there, after the silence already written.
            self._produced += self._frame
            if self._emit(audio_only=True):
                self._starting = False
            else:
                self._produced -= self._frame
            return
        while self._produced + self._frame <= due:
            self._produced += self._frame
            # When this frame was due; the lead filled at start was due at once.
            written_at = self._origin + max(self._produced - self._lead, 0) / self._rate
            if now - written_at > LATE_THRESHOLD:
                self.stats.frames_late += 1
            if self._emit():
                self._starting = False

    def _fill_idle(self, now: float, target: int) -> None:
        """Write silence up to `target` in one block of whole frames."""
        frames = (target - self._produced) // self._frame
        if frames <= 0:
            return
        # When the block's first frame was due, as for a frame on its own.
        first = self._produced + self._frame
        written_at = self._origin + max(first - self._lead, 0) / self._rate
        if now - written_at > LATE_THRESHOLD:
            self.stats.frames_late += 1
        self._produced += frames * self._frame
        sink = self._sink
        if not sink.connected:
            self.stats.frames_offline += frames
            return
        nbytes = frames * self._frame_bytes
        if not sink.can_accept(nbytes):
            self.stats.frames_dropped += frames
            return
        try:
            sink.write(silence(frames * self._frame))
        except Exception:
            self.stats.errors += 1
            _LOGGER.exception("Writing PCM to ffmpeg failed")
            return
        self.stats.frames_written += frames

    def _emit(self, *, audio_only: bool = False) -> bool:
        """Write the source's next frame, or silence; True if it was audio.

        With `audio_only`, nothing is written when the source has no audio.
        """
        sink = self._sink
        if not sink.connected:
            # Announcements wait in the queue while ffmpeg restarts.
            if not audio_only:
                self.stats.frames_offline += 1
            return False
        if not sink.can_accept(self._frame_bytes):
            if not audio_only:
                self.stats.frames_dropped += 1
            return False
        try:
            frame = self._source.read(self._frame)
        except Exception:
            self.stats.errors += 1
            _LOGGER.exception("Audio source failed; writing silence")
            frame = None
        if frame is None and audio_only:
            return False
        try:
            sink.write(self._silence if frame is None else frame)
        except Exception:
            self.stats.errors += 1
            _LOGGER.exception("Writing PCM to ffmpeg failed")
            return False
        self.stats.frames_written += 1
        return frame is not None
