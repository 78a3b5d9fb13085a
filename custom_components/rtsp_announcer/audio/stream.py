"""One stream: the clock, the PCM transport, the publisher and the queue together.

What happens to audio when ffmpeg dies: the queue is only read while ffmpeg
publishes (while it starts, and while it is down, the clock writes silence and
queued announcements wait). The item that was playing when publishing stopped
is played again from its start once ffmpeg publishes again: what was in flight
(the transport's buffer, ffmpeg's encoder, the RTP session) is lost with the
process, so resuming where the clock was would cut words out of the middle.
Only the first `REPLAY_SECONDS` of an item are kept for this; a longer item
(a long media file) resumes where it was instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from .clock import Clock
from .exceptions import TransportError
from .gain import volume_to_gain
from .models import BYTES_PER_SAMPLE, PublisherState, StreamSettings
from .options import PcmTransport
from .playback import (
    DEFAULT_MAX_ITEMS,
    PRIORITY_NORMAL,
    ItemState,
    PlaybackItem,
    PlaybackQueue,
)
from .publisher import Publisher, Supervision, TaskFactory
from .transport import (
    FifoFeed,
    PcmFeed,
    TransportSink,
    UnixSocketFeed,
    kernel_buffer_bytes,
)
from .url import redact_url
from .video import ScreenStyle, VideoTrack

_LOGGER = logging.getLogger(__name__)

# What may wait in user space for ffmpeg: enough to absorb the clock catching
# up after a stall, little enough that a hung ffmpeg cannot hoard audio.
_MAX_CATCHUP_MS = 1000
# How much of the playing item is kept to play it again after ffmpeg died.
REPLAY_SECONDS = 60

type StreamListener = Callable[[], None]


class LiveSource:
    """What the clock reads: the queue while ffmpeg publishes, silence otherwise.

    It also keeps what the playing item has played so far, to play it again
    from its start when publishing stops in the middle of it.
    """

    def __init__(
        self,
        queue: PlaybackQueue,
        *,
        is_live: Callable[[], bool],
        max_replay_bytes: int,
    ) -> None:
        """Read `queue` whenever `is_live()` says ffmpeg publishes."""
        self._queue = queue
        self._is_live = is_live
        self._max_replay = max_replay_bytes
        self._item: PlaybackItem | None = None
        self._played = bytearray()
        self._overflow = False
        self._replay = bytearray()
        self.replays = 0

    @property
    def idle(self) -> bool:
        """Whether nothing waits: no item queued or playing, nothing to replay."""
        return not self._replay and len(self._queue) == 0

    @property
    def replay_pending_bytes(self) -> int:
        """Bytes of an interrupted item still to be played again."""
        return len(self._replay)

    def read(self, samples: int) -> bytes | None:
        """Return the next frame: a replayed one, the queue's, or None (silence)."""
        if not self._is_live():
            return None
        if self._replay:
            if self._replaying():
                # Recorded in whole frames of this size, so none comes out short.
                nbytes = samples * BYTES_PER_SAMPLE
                again = bytes(self._replay[:nbytes])
                del self._replay[:nbytes]
                # Muting during the replay silences it like any other audio.
                return again if self._queue.gain > 0 else None
            self._replay.clear()
        frame = self._queue.read(samples)
        if frame is not None:
            self._record(frame)
        return frame

    def lost(self) -> None:
        """Publishing stopped: arm the replay of the item that was playing."""
        item = self._queue.current
        if (
            item is None
            or item is not self._item
            or item.state is not ItemState.PLAYING
        ):
            return
        if self._overflow:
            _LOGGER.debug("Item %s is too long to replay; it resumes", item.id)
            return
        # The recording still starts at the item's start, so a second loss
        # during a replay plays it from its start again too.
        self._replay = bytearray(self._played)
        self.replays += 1

    def _replaying(self) -> bool:
        item = self._queue.current
        return item is not None and item is self._item and not item.done

    def _record(self, frame: bytes) -> None:
        # The frame belongs to the item that is current and playing after the
        # read; an item whose last frame this was is no longer current.
        item = self._queue.current
        if item is None or item.state is not ItemState.PLAYING:
            self._forget()
            return
        if item is not self._item:
            self._forget()
            self._item = item
        if self._overflow:
            return
        if len(self._played) + len(frame) > self._max_replay:
            self._overflow = True
            self._played.clear()
            return
        self._played += frame

    def _forget(self) -> None:
        self._item = None
        self._played.clear()
        self._overflow = False


class ScreenSource:
    """Reads the live source and places each announcement's text on the screen.

    The text is placed at the announcement's first audible sample (after its
    lead-in silence), where a listener hears it begin.
    """

    def __init__(
        self,
        source: LiveSource,
        queue: PlaybackQueue,
        sink: TransportSink,
    ) -> None:
        """Watch what `source` reads from `queue` before it goes to `sink`."""
        self._source = source
        self._queue = queue
        self._sink = sink
        self.screen: VideoTrack | None = None
        # Items whose text is on screen already: a replay after a restart, or
        # an item resumed after an interruption, does not push it again.
        self._shown: deque[str] = deque(maxlen=32)

    @property
    def idle(self) -> bool:
        """Whether nothing is queued: the clock then writes silence in blocks."""
        return self._source.idle

    def read(self, samples: int) -> bytes | None:
        """Return the source's frame; place a text whose audio starts in it."""
        frame = self._source.read(samples)
        item = self._queue.current
        screen = self.screen
        if (
            frame is None
            or screen is None
            or item is None
            or item.display_text is None
            or item.id in self._shown
        ):
            return frame
        audible = _first_audible(frame)
        if audible is None:
            return frame
        self._shown.append(item.id)
        at = self._sink.total_bytes // BYTES_PER_SAMPLE + audible
        screen.show(item.display_text, seconds=item.display_seconds, at=at)
        return frame


def _first_audible(frame: bytes) -> int | None:
    """Index of the first sample that is not silence, None if all are."""
    stripped = frame.lstrip(b"\x00")
    if not stripped:
        return None
    return (len(frame) - len(stripped)) // BYTES_PER_SAMPLE


class AudioStream:
    """Publishes a never-ending PCM stream to one RTSP URL."""

    def __init__(
        self,
        settings: StreamSettings,
        *,
        binary: str = "ffmpeg",
        max_items: int = DEFAULT_MAX_ITEMS,
        supervision: Supervision | None = None,
        create_task: TaskFactory | None = None,
        screen_style: ScreenStyle | None = None,
    ) -> None:
        """Wire the parts together; `start()` sets them going."""
        loop = asyncio.get_running_loop()
        self.settings = settings
        self.binary = binary
        self.label = redact_url(settings.url)
        rate = settings.sample_rate
        buffer_ms = _MAX_CATCHUP_MS + settings.lead_ms + settings.frame_ms
        self.sink = TransportSink(
            max_buffer_bytes=rate * buffer_ms // 1000 * BYTES_PER_SAMPLE
        )
        self.queue = PlaybackQueue(max_items=max_items, on_change=self._item_changed)
        self.source = LiveSource(
            self.queue,
            is_live=lambda: self.available,
            max_replay_bytes=rate * REPLAY_SECONDS * BYTES_PER_SAMPLE,
        )
        # The encoder's own delay (AAC's priming) needs no care here: ffmpeg
        # stamps the encoded audio so that readers play each sample at its
        # input time (measured: onset at the reader 2.7 ms from the writer's).
        self.screen_source = ScreenSource(self.source, self.queue, self.sink)
        self.clock = Clock(
            loop,
            sample_rate=rate,
            frame_ms=settings.frame_ms,
            lead_ms=settings.lead_ms,
            idle_block_ms=settings.idle_block_ms,
            source=self.screen_source,
            sink=self.sink,
            max_catchup_ms=_MAX_CATCHUP_MS,
        )
        self.queue.on_added = self.clock.wake
        self.feed: PcmFeed | None = None
        if settings.pcm_transport is PcmTransport.SOCKET:
            self.feed = UnixSocketFeed(self.sink, sndbuf=kernel_buffer_bytes(settings))
        elif settings.pcm_transport is PcmTransport.FIFO:
            # The kernel's pipe buffer holds what is written ahead, as for
            # ffmpeg's stdin.
            self.feed = FifoFeed(self.sink, pipe_size=kernel_buffer_bytes(settings))
        # The call-number screen: only with video settings.
        self.screen: VideoTrack | None = None
        if settings.video is not None:
            self.screen = VideoTrack(
                settings.video,
                sample_rate=rate,
                audio=self.sink,
                style=screen_style,
            )
        self._supervision = supervision
        self._create_task = create_task
        self.publisher: Publisher | None = None
        self.volume = 1.0
        self.muted = False
        self._listeners: list[StreamListener] = []
        self._item_listeners: list[Callable[[PlaybackItem], None]] = []
        self._producers: set[asyncio.Task[None]] = set()
        self._publishing = asyncio.Event()

    @property
    def available(self) -> bool:
        """Whether ffmpeg is publishing."""
        return self.publisher is not None and self.publisher.publishing

    @property
    def transport(self) -> PcmTransport:
        """How PCM really reaches ffmpeg (a socket or FIFO may have fallen back)."""
        if self.feed is None:
            return PcmTransport.PIPE
        if isinstance(self.feed, FifoFeed):
            return PcmTransport.FIFO
        return PcmTransport.SOCKET

    async def wait_available(self) -> None:
        """Return once ffmpeg is publishing (use under a timeout)."""
        await self._publishing.wait()

    async def start(self) -> None:
        """Open the transport, start the clock and the publisher."""
        if self.feed is not None:
            try:
                await self.feed.start()
            except TransportError as err:
                # ffmpeg's stdin works wherever ffmpeg runs at all: a stream
                # fed through it beats no stream.
                _LOGGER.warning(
                    "Feeding ffmpeg for %s through its stdin instead: %s",
                    self.label,
                    err,
                )
                self.feed = None
        if self.screen is not None:
            try:
                await self.screen.start()
            except TransportError as err:
                # The audio is what the stream is for: it goes on without
                # the screen.
                _LOGGER.warning("Publishing %s without its screen: %s", self.label, err)
                await self.screen.stop()
                self.screen = None
            self.screen_source.screen = self.screen
        self.publisher = Publisher(
            self.settings,
            binary=self.binary,
            sink=self.sink,
            input_spec=None if self.feed is None else self.feed.input_spec,
            video_spec=None if self.screen is None else self.screen.input_spec,
            on_state=self._publisher_changed,
            supervision=self._supervision,
            create_task=self._create_task,
            ticker=self.clock,
        )
        self.clock.start()
        self.publisher.start()

    async def stop(self) -> None:
        """Stop everything; leaves no process, task, timer or socket file."""
        self.queue.close()
        producers = list(self._producers)
        for task in producers:
            task.cancel()
        await asyncio.gather(*producers, return_exceptions=True)
        if self.publisher is not None:
            await self.publisher.stop()
        self.clock.stop()
        if self.feed is not None:
            await self.feed.stop()
        if self.screen is not None:
            await self.screen.stop()
        self.sink.detach()

    def add_listener(self, listener: StreamListener) -> Callable[[], None]:
        """Hear about availability and playback changes; returns a remover."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def add_item_listener(
        self, listener: Callable[[PlaybackItem], None]
    ) -> Callable[[], None]:
        """Hear about every item's state changes; returns a remover."""
        self._item_listeners.append(listener)
        return lambda: self._item_listeners.remove(listener)

    def set_volume(self, volume: float) -> None:
        """Set the stream's volume (0..1, gain = volume squared) on our PCM."""
        self.volume = min(max(volume, 0.0), 1.0)
        self._apply_gain()

    def set_muted(self, muted: bool) -> None:  # noqa: FBT001
        """Mute or unmute the stream: silence keeps flowing either way."""
        self.muted = muted
        self._apply_gain()

    def _apply_gain(self) -> None:
        self.queue.gain = 0.0 if self.muted else volume_to_gain(self.volume)
        self._notify()

    def new_item(
        self,
        *,
        title: str | None = None,
        gain: float = 1.0,
        priority: int = PRIORITY_NORMAL,
        resumable: bool = True,
    ) -> PlaybackItem:
        """Create an item at the stream's rate."""
        return PlaybackItem(
            sample_rate=self.settings.sample_rate,
            title=title,
            gain=gain,
            priority=priority,
            resumable=resumable,
        )

    def run_producer(self, coro: Coroutine[Any, Any, None], item: PlaybackItem) -> None:
        """Run a producer owned by the stream: cancelled when the stream stops.

        It starts once its item is about to play, so a long queue does not run
        a decoder or a synthesis per item at once.
        """

        async def when_wanted() -> None:
            try:
                await item.wait_wanted()
            except asyncio.CancelledError:
                coro.close()
                raise
            if item.done:
                coro.close()
                return
            await coro

        task = asyncio.get_running_loop().create_task(
            when_wanted(), name=f"producer {item.id}"
        )
        self._producers.add(task)
        task.add_done_callback(self._producer_done)

    def _producer_done(self, task: asyncio.Task[None]) -> None:
        self._producers.discard(task)
        if not task.cancelled() and (err := task.exception()) is not None:
            _LOGGER.error("Audio producer failed", exc_info=err)

    def stop_playback(self) -> None:
        """Stop what plays and drop the queue."""
        self.queue.stop()

    def _publisher_changed(self, state: PublisherState) -> None:
        _LOGGER.debug("Publisher for %s: %s", self.label, state)
        if state is PublisherState.PUBLISHING:
            self._publishing.set()
        else:
            if self._publishing.is_set():
                self.source.lost()
            self._publishing.clear()
        self._notify()

    def _item_changed(self, item: PlaybackItem) -> None:
        for listener in list(self._item_listeners):
            try:
                listener(item)
            except Exception:
                _LOGGER.exception("Item listener failed")
        self._notify()

    def _notify(self) -> None:
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:
                _LOGGER.exception("Stream listener failed")
