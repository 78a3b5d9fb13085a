"""The playback queue and its items, without ffmpeg."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from custom_components.rtsp_announcer.audio.exceptions import (
    AudioTooLongError,
    DecodeError,
    QueueFullError,
    StreamStoppedError,
)
from custom_components.rtsp_announcer.audio.pcm import apply_gain
from custom_components.rtsp_announcer.audio.playback import (
    ItemState,
    PlaybackItem,
    PlaybackQueue,
)

RATE = 8000
FRAME = 160
FRAME_BYTES = FRAME * 2


def state_of(item: PlaybackItem) -> ItemState:
    """Read the state afresh (it changes behind mypy's narrowing)."""
    return item.state


def playing(queue: PlaybackQueue) -> bool:
    return queue.playing


def pcm(value: int, samples: int) -> bytes:
    return np.full(samples, value, dtype="<i2").tobytes()


def queue_with(count: int) -> tuple[PlaybackQueue, list[PlaybackItem]]:
    """A queue and the `count` items added to it, in their order."""
    queue = PlaybackQueue()
    items = [PlaybackItem(sample_rate=RATE) for _ in range(count)]
    for item in items:
        queue.add(item)
    return queue, items


async def test_items_play_in_order_with_events() -> None:
    events: list[tuple[str, ItemState]] = []
    queue = PlaybackQueue(
        on_change=lambda item: events.append((item.title or "", item.state))
    )
    first = PlaybackItem(sample_rate=RATE, title="first")
    second = PlaybackItem(sample_rate=RATE, title="second")
    queue.add(first)
    queue.add(second)
    await first.feed(pcm(100, FRAME * 2))
    first.end()
    await second.feed(pcm(200, FRAME + 10))
    second.end()
    frames = [queue.read(FRAME) for _ in range(5)]
    assert frames[0] == pcm(100, FRAME)
    assert frames[1] == pcm(100, FRAME)
    assert frames[2] == pcm(200, FRAME)
    # The tail is padded with silence to a whole frame.
    assert frames[3] == pcm(200, 10) + bytes(FRAME_BYTES - 20)
    assert frames[4] is None
    assert await first.wait() is ItemState.FINISHED
    assert await second.wait() is ItemState.FINISHED
    assert events == [
        ("first", ItemState.PLAYING),
        ("first", ItemState.FINISHED),
        ("second", ItemState.PLAYING),
        ("second", ItemState.FINISHED),
    ]
    assert first.duration == pytest.approx(2 * FRAME / RATE)


async def test_head_waits_for_its_producer_with_silence() -> None:
    queue, (item,) = queue_with(1)
    assert queue.read(FRAME) is None
    assert state_of(item) is ItemState.QUEUED
    assert not playing(queue)
    await item.feed(pcm(5, FRAME))
    assert queue.read(FRAME) == pcm(5, FRAME)
    assert playing(queue)
    # Producer is slower than real time: silence, the item keeps playing.
    assert queue.read(FRAME) is None
    assert state_of(item) is ItemState.PLAYING
    item.end()
    assert queue.read(FRAME) is None
    assert state_of(item) is ItemState.FINISHED


async def test_interrupt_puts_the_new_item_first() -> None:
    queue = PlaybackQueue()
    # Not resumable: cut off, it ends (tests/audio/test_priorities.py has
    # the resumable kind).
    normal = PlaybackItem(sample_rate=RATE, title="normal", resumable=False)
    waiting = PlaybackItem(sample_rate=RATE, title="waiting")
    urgent = PlaybackItem(sample_rate=RATE, title="urgent")
    for item in (normal, waiting):
        queue.add(item)
        await item.feed(pcm(1, FRAME * 4))
        item.end()
    queue.read(FRAME)
    queue.add(urgent, interrupt=True)
    await urgent.feed(pcm(9, FRAME))
    urgent.end()
    assert normal.state is ItemState.INTERRUPTED
    assert queue.read(FRAME) == pcm(9, FRAME)
    assert queue.read(FRAME) == pcm(1, FRAME)
    assert queue.current is waiting


async def test_queue_limit() -> None:
    queue = PlaybackQueue(max_items=2)
    queue.add(PlaybackItem(sample_rate=RATE))
    queue.add(PlaybackItem(sample_rate=RATE))
    with pytest.raises(QueueFullError):
        queue.add(PlaybackItem(sample_rate=RATE))
    assert len(queue) == 2


async def test_producer_waits_when_the_buffer_is_full() -> None:
    """A producer faster than real time is held back: memory stays bounded."""
    item = PlaybackItem(sample_rate=RATE, buffer_seconds=0.1)
    queue = PlaybackQueue()
    queue.add(item)
    chunk = pcm(3, FRAME)
    fed = 0

    async def produce() -> None:
        nonlocal fed
        while await item.feed(chunk):
            fed += 1

    task = asyncio.create_task(produce())
    await asyncio.sleep(0.01)
    assert item.buffered_bytes <= int(0.1 * RATE) * 2 + FRAME_BYTES
    stuck = fed
    await asyncio.sleep(0.01)
    assert fed == stuck
    queue.read(FRAME)
    await asyncio.sleep(0)
    assert fed > stuck
    queue.stop()
    await asyncio.wait_for(task, 1)
    assert item.state is ItemState.INTERRUPTED


async def test_stop_and_close() -> None:
    queue, (playing, queued) = queue_with(2)
    await playing.feed(pcm(1, FRAME * 3))
    queue.read(FRAME)
    queue.stop()
    assert playing.state is ItemState.INTERRUPTED
    assert queued.state is ItemState.CANCELLED
    assert queue.read(FRAME) is None
    later = PlaybackItem(sample_rate=RATE)
    queue.add(later)
    queue.close()
    assert later.state is ItemState.CANCELLED
    assert isinstance(later.error, StreamStoppedError)
    assert len(queue) == 0


async def test_failed_producer() -> None:
    queue, (broken, fine) = queue_with(2)
    broken.fail(DecodeError("not audio"))
    assert await broken.wait() is ItemState.FAILED
    await fine.feed(pcm(4, FRAME))
    fine.end()
    # The failed item is skipped; the next plays at once.
    assert queue.read(FRAME) == pcm(4, FRAME)


async def test_failure_mid_item_plays_what_was_produced() -> None:
    queue, (item,) = queue_with(1)
    await item.feed(pcm(4, FRAME * 2))
    queue.read(FRAME)
    item.fail(DecodeError("cut"))
    assert queue.read(FRAME) == pcm(4, FRAME)
    assert item.state is ItemState.FAILED
    assert isinstance(item.error, DecodeError)


async def test_audio_past_the_limit_is_cut_and_the_item_fails() -> None:
    """Hours of audio from a source end at the item's limit, to the sample."""
    queue = PlaybackQueue()
    item = PlaybackItem(sample_rate=RATE)
    item.max_seconds = FRAME * 3 / RATE
    queue.add(item)
    assert await item.feed(pcm(1, FRAME * 2))
    # Not started yet: what fits is kept all the same.
    assert not await item.feed(pcm(2, FRAME * 2))
    assert isinstance(item.error, AudioTooLongError)
    assert not await item.feed(pcm(3, FRAME))
    frames = [queue.read(FRAME) for _ in range(4)]
    assert frames[:3] == [pcm(1, FRAME), pcm(1, FRAME), pcm(2, FRAME)]
    assert frames[3] is None
    assert item.state is ItemState.FAILED
    assert item.samples_played == FRAME * 3


async def test_remove() -> None:
    queue, (first, second) = queue_with(2)
    await first.feed(pcm(1, FRAME * 2))
    queue.read(FRAME)
    queue.remove(second)
    assert second.state is ItemState.CANCELLED
    queue.remove(first)
    assert first.state is ItemState.INTERRUPTED
    assert queue.current is None


async def test_gain() -> None:
    queue = PlaybackQueue()
    item = PlaybackItem(sample_rate=RATE, gain=0.5)
    queue.add(item)
    queue.gain = 0.5
    await item.feed(pcm(1000, FRAME))
    item.end()
    assert queue.read(FRAME) == pcm(250, FRAME)


def test_apply_gain_clips_and_mutes() -> None:
    assert apply_gain(pcm(20000, 4), 2.0) == pcm(32767, 4)
    assert apply_gain(pcm(-20000, 4), 2.0) == pcm(-32768, 4)
    assert apply_gain(pcm(123, 4), 0.0) == bytes(8)
    frame = pcm(7, 4)
    assert apply_gain(frame, 1.0) is frame


async def test_listener_errors_are_contained(caplog: pytest.LogCaptureFixture) -> None:
    def broken(_item: PlaybackItem) -> None:
        msg = "listener bug"
        raise RuntimeError(msg)

    queue = PlaybackQueue(on_change=broken)
    item = PlaybackItem(sample_rate=RATE)
    queue.add(item)
    await item.feed(pcm(1, FRAME))
    item.end()
    assert queue.read(FRAME) == pcm(1, FRAME)
    assert item.state is ItemState.FINISHED
    assert "Playback listener failed" in caplog.text


async def test_active_spans_back_to_back_items() -> None:
    seen: list[bool] = []
    queue: PlaybackQueue

    def listener(_item: PlaybackItem) -> None:
        seen.append(queue.active)

    queue = PlaybackQueue(on_change=listener)
    first = PlaybackItem(sample_rate=RATE)
    second = PlaybackItem(sample_rate=RATE)
    for item in (first, second):
        queue.add(item)
        await item.feed(pcm(1, FRAME))
        item.end()
    assert not queue.active
    queue.read(FRAME)
    queue.read(FRAME)
    # started, finished (still active: the second is next), started, finished.
    assert seen == [True, True, True, False]
    assert not queue.active


async def test_only_the_head_of_the_queue_is_produced() -> None:
    queue = PlaybackQueue()
    items = [PlaybackItem(sample_rate=RATE) for _ in range(4)]
    for item in items:
        queue.add(item)
    wanted = [item._wanted.is_set() for item in items]
    assert wanted == [True, True, False, False]
    await items[0].feed(pcm(1, FRAME))
    items[0].end()
    queue.read(FRAME)  # the first item plays its only frame and finishes
    assert [item._wanted.is_set() for item in items] == [True, True, True, False]
    # An interrupting item is wanted at once; a closed one releases its producer.
    urgent = PlaybackItem(sample_rate=RATE)
    queue.add(urgent, interrupt=True)
    assert urgent._wanted.is_set()
    queue.remove(items[3])
    assert items[3]._wanted.is_set()
    assert items[3].done
