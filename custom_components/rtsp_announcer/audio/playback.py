"""Playback: items of PCM produced off the clock and the queue the clock reads.

A producer (a decoder, later the speech engine) feeds an item at its own pace;
the clock takes whole frames from the head of the queue. Buffers are bounded:
a producer that runs ahead of real time waits for room.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from .exceptions import (
    AnnouncerError,
    AudioTooLongError,
    QueueFullError,
    StreamStoppedError,
)
from .gain import Limiter
from .models import BYTES_PER_SAMPLE

_LOGGER = logging.getLogger(__name__)

DEFAULT_MAX_ITEMS = 50
DEFAULT_BUFFER_SECONDS = 5.0
# Items produced ahead: the one playing and the next. Producing further ahead
# only costs processes and memory (a full queue would run 50 decoders at once).
PRODUCE_AHEAD = 2
# How much of an item's audio is kept to play it again from its start after a
# higher priority item cut it off; a longer item resumes where it was cut.
RESUME_SECONDS = 60

# Priority ranks: an item cuts off the one playing when its rank is higher;
# items of the same rank play in the order they came.
PRIORITY_NORMAL = 0
PRIORITY_HIGH = 1
PRIORITY_CRITICAL = 2


class ItemState(StrEnum):
    """Where an item is in its life."""

    QUEUED = "queued"
    PLAYING = "playing"
    FINISHED = "finished"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    # Cut off by a higher priority item; waits to play again from its start.
    SUSPENDED = "suspended"


FINAL_STATES = frozenset(
    {
        ItemState.FINISHED,
        ItemState.FAILED,
        ItemState.INTERRUPTED,
        ItemState.CANCELLED,
        ItemState.EXPIRED,
    }
)


class PlaybackItem:
    """One piece of audio on its way to the stream."""

    def __init__(
        self,
        *,
        sample_rate: int,
        title: str | None = None,
        gain: float = 1.0,
        buffer_seconds: float = DEFAULT_BUFFER_SECONDS,
        priority: int = PRIORITY_NORMAL,
        resumable: bool = True,
        resume_seconds: float = RESUME_SECONDS,
    ) -> None:
        """Create an empty item; a producer feeds it, the queue plays it.

        `gain` is a linear amplitude gain (see `gain.volume_to_gain`); above
        1 the queue's limiter keeps the item from clipping.

        A `resumable` item cut off by one of higher `priority` plays again
        from its start after it; otherwise it ends as interrupted.
        """
        loop = asyncio.get_running_loop()
        self.id = uuid.uuid4().hex
        self.title = title
        self.gain = gain
        self.sample_rate = sample_rate
        self.state = ItemState.QUEUED
        self.error: AnnouncerError | None = None
        self.created_at = loop.time()
        self.started_at: float | None = None
        self.samples_played = 0
        # Seconds of audio the item may hold in all; None: no limit.
        self.max_seconds: float | None = None
        self._fed = 0
        self.priority = priority
        self.resumable = resumable
        # Ids of the items this one cut off, and of those that cut it off.
        self.interrupted: list[str] = []
        self.interrupted_by: list[str] = []
        # Times it started again from its start after being cut off.
        self.resumes = 0
        # Everything fed so far, to play it again from its start; None once
        # it outgrew `resume_seconds`.
        self._recording: bytearray | None = bytearray() if resumable else None
        self._max_recording = int(resume_seconds * sample_rate) * BYTES_PER_SAMPLE
        # Whatever the owner wants to know about the item in its listeners.
        self.tags: dict[str, Any] = {}
        # What the stream's screen shows from the item's first audible sample
        # (for how long; None: until the next text).
        self.display_text: str | None = None
        self.display_seconds: float | None = None
        self._buffer = bytearray()
        self._max_buffer = int(buffer_seconds * sample_rate) * BYTES_PER_SAMPLE
        self._ended = False
        self._room = asyncio.Event()
        self._room.set()
        self._wanted = asyncio.Event()
        self._done: asyncio.Future[ItemState] = loop.create_future()

    @property
    def done(self) -> bool:
        """Whether the item reached a final state."""
        return self.state in FINAL_STATES

    @property
    def duration(self) -> float:
        """Seconds of audio played so far (all of it once finished)."""
        return self.samples_played / self.sample_rate

    @property
    def buffered_bytes(self) -> int:
        """PCM produced but not yet played."""
        return len(self._buffer)

    async def feed(self, data: bytes) -> bool:
        """Append PCM; waits while the buffer is full. False: stop producing.

        Past `max_seconds` the rest is cut and the item fails: a source that
        decodes to hours of audio must not hold the stream for hours.
        """
        if self.done or self.error is not None:
            return False
        cut = False
        if self.max_seconds is not None:
            room = int(self.max_seconds * self.sample_rate) * BYTES_PER_SAMPLE
            if self._fed + len(data) > room:
                data = data[: room - self._fed]
                cut = True
        self._fed += len(data)
        self._buffer += data
        if self._recording is not None:
            if len(self._recording) + len(data) > self._max_recording:
                self._recording = None
            else:
                self._recording += data
        if cut:
            # What fits still plays, even if the item has not started yet.
            self.error = AudioTooLongError(
                f"the audio is longer than {self.max_seconds:g} s"
            )
            self._ended = True
            return False
        while len(self._buffer) >= self._max_buffer and not self.done:
            self._room.clear()
            await self._room.wait()
        return not self.done

    def end(self) -> None:
        """Mark the end of the audio: what is buffered is the rest."""
        self._ended = True

    def fail(self, error: AnnouncerError) -> None:
        """The producer failed; an item that has started plays what it has."""
        self.error = error
        if self.state is ItemState.QUEUED:
            self.close(ItemState.FAILED)
        else:
            self._ended = True

    def rewind(self) -> bool:
        """Start again from the first sample; False if too long to keep.

        What the producer feeds from now on follows what was fed before, so
        it keeps producing where it was.
        """
        if self._recording is None:
            return False
        self._buffer = bytearray(self._recording)
        return True

    def want(self) -> None:
        """Let the producer start: the item is about to play."""
        self._wanted.set()

    async def wait_wanted(self) -> None:
        """Wait until the item is near the head of its queue (or closed)."""
        await self._wanted.wait()

    def close(self, state: ItemState) -> None:
        """Put the item in a final state and wake whoever waits on it."""
        if self.done:
            return
        self.state = state
        self._buffer.clear()
        self._recording = None
        self._room.set()
        self._wanted.set()
        if not self._done.done():
            self._done.set_result(state)

    async def wait(self) -> ItemState:
        """Wait until the item is played, interrupted, cancelled or failed."""
        return await asyncio.shield(self._done)

    def take(self, nbytes: int) -> bytes | None:
        """Take one frame, padded with silence at the very end; None if not ready."""
        buffer = self._buffer
        if len(buffer) >= nbytes:
            frame = bytes(buffer[:nbytes])
        elif self._ended and buffer:
            frame = bytes(buffer) + bytes(nbytes - len(buffer))
        else:
            return None
        del buffer[:nbytes]
        if len(buffer) < self._max_buffer:
            self._room.set()
        return frame

    @property
    def exhausted(self) -> bool:
        """Whether everything the producer will ever give has been played."""
        return self._ended and not self._buffer


type ItemListener = Callable[[PlaybackItem], None]


class PlaybackQueue:
    """The stream's queue: the clock reads frames from its head."""

    def __init__(
        self,
        *,
        max_items: int = DEFAULT_MAX_ITEMS,
        on_change: ItemListener | None = None,
    ) -> None:
        """Create an empty queue; `on_change` hears every state change of an item."""
        self._items: deque[PlaybackItem] = deque()
        self._current: PlaybackItem | None = None
        self._max_items = max_items
        self._on_change = on_change
        self._active = False
        self.gain = 1.0
        # After every gain (the item's, the stream's volume): what goes out
        # never clips, however far the gains together go above unity.
        self.limiter: Limiter | None = None
        # Called after every add: the clock leaves its idle pace.
        self.on_added: Callable[[], None] | None = None
        # Seconds an item may wait in the queue: older, it expires at the head.
        self.max_age: float | None = None

    @property
    def max_items(self) -> int:
        """How many items the queue holds at most."""
        return self._max_items

    @property
    def current(self) -> PlaybackItem | None:
        """The item at the head of the queue, playing or about to."""
        return self._current

    @property
    def playing(self) -> bool:
        """Whether audio other than silence is being written."""
        return self._current is not None and self._current.state is ItemState.PLAYING

    @property
    def active(self) -> bool:
        """Whether audio plays: from an item's first frame until the queue is empty.

        Items queued back to back count as one stretch of playing, so listeners
        do not see a flicker to idle between them.
        """
        return self._active

    def __len__(self) -> int:
        """Items waiting, the current one included."""
        return len(self._items) + (self._current is not None)

    def add(self, item: PlaybackItem, *, interrupt: bool = False) -> None:
        """Queue an item by its priority; `interrupt` ranks it high at least.

        It goes after every queued item of its rank or higher (items of one
        rank play in the order they came) and before the lower ones. If the
        current item ranks lower, it is cut off: a resumable one goes back
        into the queue right after the new item, to play again from its
        start; another ends as interrupted.
        """
        if len(self) >= self._max_items:
            raise QueueFullError(self._max_items)
        if interrupt:
            item.priority = max(item.priority, PRIORITY_HIGH)
        self._insert(item, after_equal=True)
        current = self._current
        if (
            current is not None
            and not current.done
            and current.priority < item.priority
        ):
            self._current = None
            self._cut_off(current, item)
        self._promote()
        if self.on_added is not None:
            self.on_added()

    def _insert(self, item: PlaybackItem, *, after_equal: bool) -> None:
        """Put an item before the first queued one of a lower rank.

        With `after_equal` false it also goes before those of its own rank:
        an item that was cut off goes back ahead of the ones that came after
        it.
        """
        for index, queued in enumerate(self._items):
            if queued.priority < item.priority or (
                not after_equal and queued.priority == item.priority
            ):
                self._items.insert(index, item)
                return
        self._items.append(item)

    def _cut_off(self, current: PlaybackItem, by: PlaybackItem) -> None:
        if current.state is ItemState.QUEUED:
            # Not heard yet: it only waits longer.
            self._insert(current, after_equal=False)
            return
        by.interrupted.append(current.id)
        current.interrupted_by.append(by.id)
        if current.resumable:
            if not current.rewind():
                _LOGGER.debug("Item %s is too long to replay; it resumes", current.id)
            current.state = ItemState.SUSPENDED
            self._insert(current, after_equal=False)
            self._notify(current)
            return
        self._finish(current, ItemState.INTERRUPTED)

    def stop(self) -> None:
        """End what plays and drop everything queued (media stop)."""
        current, self._current = self._current, None
        if current is not None:
            self._finish(current, ItemState.INTERRUPTED)
        while self._items:
            self._finish(self._items.popleft(), ItemState.CANCELLED)

    def close(self) -> None:
        """Cancel everything: the stream is going away."""
        current, self._current = self._current, None
        items = [current, *self._items] if current is not None else list(self._items)
        self._items.clear()
        for item in items:
            item.error = item.error or StreamStoppedError()
            self._finish(item, ItemState.CANCELLED)

    def remove(self, item: PlaybackItem) -> None:
        """Take an item out, wherever it is (its caller gave up on it)."""
        if item is self._current:
            self._current = None
            self._finish(item, ItemState.INTERRUPTED)
        elif item in self._items:
            self._items.remove(item)
            self._finish(item, ItemState.CANCELLED)

    def drop(self, item: PlaybackItem) -> None:
        """Take out an item that ended before the clock reached it (it failed)."""
        if not item.done:
            return
        if item is self._current:
            self._current = None
        elif item in self._items:
            self._items.remove(item)
        else:
            return
        self._settle()
        self._notify(item)

    def read(self, samples: int) -> bytes | None:
        """Return the next frame of audio, or None for silence."""
        nbytes = samples * BYTES_PER_SAMPLE
        while True:
            item = self._current
            if item is None:
                if not self._items:
                    return None
                item = self._current = self._items.popleft()
                if self._too_old(item):
                    self._current = None
                    self._finish(item, ItemState.EXPIRED)
                    continue
                self._promote()
            if item.done:
                self._current = None
                self._settle()
                self._notify(item)
                continue
            frame = item.take(nbytes)
            if frame is None:
                if item.exhausted:
                    self._current = None
                    self._finish(item, ItemState.FINISHED)
                    continue
                # Head of line waits for its producer: silence meanwhile.
                return None
            if item.state is not ItemState.PLAYING:
                self._start(item)
            item.samples_played += samples
            if item.exhausted:
                self._current = None
                self._finish(item, ItemState.FINISHED)
            return self._limit(item, frame)

    def _limit(self, item: PlaybackItem, frame: bytes) -> bytes:
        limiter = self.limiter
        if limiter is None or limiter.sample_rate != item.sample_rate:
            limiter = self.limiter = Limiter(item.sample_rate)
        return limiter.process(frame, item.gain * self.gain)

    def _start(self, item: PlaybackItem) -> None:
        """Its first frame goes out: for the first time, or again after a cut."""
        if item.state is ItemState.SUSPENDED:
            item.resumes += 1
        else:
            item.started_at = asyncio.get_running_loop().time()
        item.state = ItemState.PLAYING
        self._active = True
        self._notify(item)

    def _too_old(self, item: PlaybackItem) -> bool:
        if self.max_age is None or item.done or item.state is not ItemState.QUEUED:
            return False
        age = asyncio.get_running_loop().time() - item.created_at
        return age > self.max_age

    def _finish(self, item: PlaybackItem, state: ItemState) -> None:
        if item.error is not None and state is ItemState.FINISHED:
            # Played what it had before its producer failed or was cut at its
            # limit: the outcome says so, not "finished".
            _LOGGER.debug("Item %s played partly: %s", item.id, item.error)
            state = ItemState.FAILED
        item.close(state)
        self._settle()
        self._notify(item)

    def _settle(self) -> None:
        if self._current is None and not self._items:
            self._active = False
        self._promote()

    def _promote(self) -> None:
        ahead = PRODUCE_AHEAD
        if self._current is not None:
            self._current.want()
            ahead -= 1
        for index in range(min(ahead, len(self._items))):
            self._items[index].want()

    def _notify(self, item: PlaybackItem) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change(item)
        except Exception:
            _LOGGER.exception("Playback listener failed")
