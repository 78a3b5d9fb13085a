"""One stream: the clock, the PCM transport, the publisher and the queue together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from .clock import Clock
from .decoder import decode_into
from .models import BYTES_PER_SAMPLE, PcmTransport, PublisherState, StreamSettings
from .pcm import volume_to_gain
from .playback import DEFAULT_MAX_ITEMS, PlaybackItem, PlaybackQueue
from .publisher import Publisher, Supervision, TaskFactory
from .transport import TransportSink, UnixSocketFeed
from .url import redact_url

_LOGGER = logging.getLogger(__name__)

# What may wait in user space for ffmpeg: enough to absorb the clock catching
# up after a stall, little enough that a hung ffmpeg cannot hoard audio.
_MAX_CATCHUP_MS = 1000
_KERNEL_BUFFER_MS = 40

type StreamListener = Callable[[], None]


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
        self.clock = Clock(
            loop,
            sample_rate=rate,
            frame_ms=settings.frame_ms,
            lead_ms=settings.lead_ms,
            source=self.queue,
            sink=self.sink,
            max_catchup_ms=_MAX_CATCHUP_MS,
        )
        self.feed: UnixSocketFeed | None = None
        if settings.pcm_transport is PcmTransport.SOCKET:
            self.feed = UnixSocketFeed(
                self.sink,
                sndbuf=max(rate * _KERNEL_BUFFER_MS // 1000 * BYTES_PER_SAMPLE, 4096),
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

    async def wait_available(self) -> None:
        """Return once ffmpeg is publishing (use under a timeout)."""
        await self._publishing.wait()

    async def start(self) -> None:
        """Open the transport, start the clock and the publisher."""
        if self.feed is not None:
            await self.feed.start()
        self.publisher = Publisher(
            self.settings,
            binary=self.binary,
            sink=self.sink,
            input_spec=None if self.feed is None else self.feed.input_spec,
            on_state=self._publisher_changed,
            supervision=self._supervision,
            create_task=self._create_task,
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
        """Set the stream's volume (0..1), applied as a gain on our PCM."""
        self.volume = min(max(volume, 0.0), 1.0)
        self._apply_gain()

    def set_muted(self, muted: bool) -> None:  # noqa: FBT001
        """Mute or unmute the stream: silence keeps flowing either way."""
        self.muted = muted
        self._apply_gain()

    def _apply_gain(self) -> None:
        self.queue.gain = 0.0 if self.muted else volume_to_gain(self.volume)
        self._notify()

    def new_item(self, *, title: str | None = None, gain: float = 1.0) -> PlaybackItem:
        """Create an item at the stream's rate."""
        return PlaybackItem(
            sample_rate=self.settings.sample_rate, title=title, gain=gain
        )

    def play_media(
        self,
        source: str,
        *,
        title: str | None = None,
        gain: float = 1.0,
        interrupt: bool = False,
    ) -> PlaybackItem:
        """Decode `source` (a file path or URL) into a queued item.

        Raises QueueFullError when the queue is at its limit.
        """
        item = self.new_item(title=title, gain=gain)
        self.queue.add(item, interrupt=interrupt)
        self.run_producer(
            decode_into(
                item,
                source,
                binary=self.binary,
                sample_rate=self.settings.sample_rate,
            ),
            item,
        )
        return item

    def run_producer(self, coro: Coroutine[Any, Any, None], item: PlaybackItem) -> None:
        """Run a producer owned by the stream: cancelled when the stream stops."""
        task = asyncio.get_running_loop().create_task(coro, name=f"producer {item.id}")
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
