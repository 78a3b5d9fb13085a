"""Fakes for the audio core's unit tests: a simulated scheduler and sinks."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable


class _Handle:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeScheduler:
    """Simulated time: callbacks run in order when time is advanced.

    `lag` returns how late each callback runs, as a loop busy with other work
    would make it; a stall is simply advancing time before running anything.
    """

    def __init__(self, lag: Callable[[], float] | None = None) -> None:
        self.now = 1000.0
        self._lag = lag or (lambda: 0.0)
        self._queue: list[tuple[float, int, _Handle, Callable[[], object]]] = []
        self._seq = itertools.count()
        # Callbacks that ran: each is a wake-up of a loop with nothing else on.
        self.wakeups = 0

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], object]) -> _Handle:
        handle = _Handle()
        heapq.heappush(
            self._queue, (when + self._lag(), next(self._seq), handle, callback)
        )
        return handle

    @property
    def pending(self) -> int:
        return sum(1 for *_, handle, _cb in self._queue if not handle.cancelled)

    def run_until(self, end: float) -> None:
        while self._queue and self._queue[0][0] <= end:
            when, _, handle, callback = heapq.heappop(self._queue)
            if handle.cancelled:
                continue
            self.now = max(self.now, when)
            self.wakeups += 1
            callback()
        self.now = max(self.now, end)

    def advance(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    def stall(self, seconds: float) -> None:
        """Block for `seconds`: nothing runs, then everything due runs."""
        self.now += seconds
        self.run_until(self.now)


class CountingSink:
    """Accepts everything; counts bytes, can refuse or disconnect on demand."""

    def __init__(self) -> None:
        self.bytes = 0
        self.frames: list[bytes] = []
        self.keep = False
        self.connected = True
        self.accepting = True
        self.fail_writes = False

    def can_accept(self, nbytes: int) -> bool:
        return self.accepting

    def write(self, frame: bytes) -> None:
        if self.fail_writes:
            msg = "broken pipe"
            raise OSError(msg)
        self.bytes += len(frame)
        if self.keep:
            self.frames.append(frame)


class ListSource:
    """Hands out queued frames, then silence.

    It is idle once its frames are out, unless `busy` (an item waiting for its
    producer) or `fail` (a broken queue) says otherwise.
    """

    def __init__(
        self, frames: list[bytes] | None = None, *, busy: bool = False
    ) -> None:
        self.frames = list(frames or [])
        self.reads = 0
        self.fail = False
        self.busy = busy

    @property
    def idle(self) -> bool:
        return not self.frames and not self.busy and not self.fail

    def read(self, samples: int) -> bytes | None:
        self.reads += 1
        if self.fail:
            msg = "source broke"
            raise RuntimeError(msg)
        return self.frames.pop(0) if self.frames else None
