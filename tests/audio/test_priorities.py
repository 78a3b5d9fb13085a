"""Priorities in the playback queue: what cuts in, what plays again, in what order."""

from __future__ import annotations

import numpy as np

from custom_components.rtsp_announcer.audio.playback import (
    PRIORITY_CRITICAL,
    PRIORITY_HIGH,
    PRIORITY_NORMAL,
    ItemState,
    PlaybackItem,
    PlaybackQueue,
)

RATE = 8000
FRAME = 160


def pcm(value: int, samples: int) -> bytes:
    return np.full(samples, value, dtype="<i2").tobytes()


async def ready(
    title: str,
    value: int,
    frames: int,
    *,
    priority: int = PRIORITY_NORMAL,
    resumable: bool = True,
    resume_seconds: float = 60,
) -> PlaybackItem:
    """An item whose audio is all there: `frames` frames of the sample `value`."""
    item = PlaybackItem(
        sample_rate=RATE,
        title=title,
        priority=priority,
        resumable=resumable,
        resume_seconds=resume_seconds,
    )
    await item.feed(pcm(value, FRAME * frames))
    item.end()
    return item


def state_of(item: PlaybackItem) -> ItemState:
    """Read the state afresh (it changes behind mypy's narrowing)."""
    return item.state


def heard(queue: PlaybackQueue, frames: int) -> list[int]:
    """The value of each frame read (0 for silence)."""
    values = []
    for _ in range(frames):
        frame = queue.read(FRAME)
        values.append(0 if frame is None else int.from_bytes(frame[:2], "little"))
    return values


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, ItemState]] = []

    def __call__(self, item: PlaybackItem) -> None:
        self.seen.append((item.title or "", item.state))


async def test_high_cuts_in_and_the_normal_one_plays_again_from_its_start() -> None:
    events = Events()
    queue = PlaybackQueue(on_change=events)
    a = await ready("A", 1, 4)
    later = await ready("later", 3, 1)
    queue.add(a)
    queue.add(later)
    assert heard(queue, 2) == [1, 1]
    b = await ready("B", 2, 2, priority=PRIORITY_HIGH)
    queue.add(b)
    assert a.state is ItemState.SUSPENDED
    assert not a.done
    # B, then A whole (all 4 frames, not the 2 left), then what came after A.
    assert heard(queue, 8) == [2, 2, 1, 1, 1, 1, 3, 0]
    assert state_of(a) is ItemState.FINISHED
    assert (a.interrupted_by, b.interrupted, a.resumes) == ([b.id], [a.id], 1)
    assert a.duration == 6 * FRAME / RATE
    assert events.seen == [
        ("A", ItemState.PLAYING),
        ("A", ItemState.SUSPENDED),
        ("B", ItemState.PLAYING),
        ("B", ItemState.FINISHED),
        ("A", ItemState.PLAYING),
        ("A", ItemState.FINISHED),
        ("later", ItemState.PLAYING),
        ("later", ItemState.FINISHED),
    ]


async def test_high_ones_play_in_the_order_they_came() -> None:
    queue = PlaybackQueue()
    a = await ready("A", 1, 2)
    queue.add(a)
    assert heard(queue, 1) == [1]
    first = await ready("first", 2, 2, priority=PRIORITY_HIGH)
    second = await ready("second", 3, 2, priority=PRIORITY_HIGH)
    queue.add(first)
    assert heard(queue, 1) == [2]
    queue.add(second)
    # The second high one does not cut the first; A comes back after both.
    assert first.state is ItemState.PLAYING
    assert heard(queue, 6) == [2, 3, 3, 1, 1, 0]
    assert second.interrupted == []


async def test_critical_cuts_even_a_high_one() -> None:
    queue = PlaybackQueue()
    a = await ready("A", 1, 2)
    b = await ready("B", 2, 2, priority=PRIORITY_HIGH)
    c = await ready("C", 3, 1, priority=PRIORITY_CRITICAL)
    queue.add(a)
    assert heard(queue, 1) == [1]
    queue.add(b)
    assert heard(queue, 1) == [2]
    queue.add(c)
    assert b.state is ItemState.SUSPENDED
    # C, then B from its start, then A from its start.
    assert heard(queue, 6) == [3, 2, 2, 1, 1, 0]
    assert c.interrupted == [b.id]
    assert b.interrupted == [a.id]
    assert all(item.state is ItemState.FINISHED for item in (a, b, c))


async def test_a_normal_one_never_cuts_in() -> None:
    queue = PlaybackQueue()
    b = await ready("B", 2, 2, priority=PRIORITY_HIGH)
    queue.add(b)
    assert heard(queue, 1) == [2]
    queue.add(await ready("A", 1, 1))
    assert heard(queue, 3) == [2, 1, 0]


async def test_a_droppable_one_is_interrupted_for_good() -> None:
    queue = PlaybackQueue()
    a = await ready("A", 1, 4, resumable=False)
    queue.add(a)
    heard(queue, 1)
    queue.add(await ready("B", 2, 1, priority=PRIORITY_HIGH))
    assert a.state is ItemState.INTERRUPTED
    assert a.interrupted_by
    assert heard(queue, 2) == [2, 0]


async def test_one_not_heard_yet_only_waits() -> None:
    # The head of the queue whose producer has not delivered yet is not
    # reported as cut off: it just plays after the high one.
    events = Events()
    queue = PlaybackQueue(on_change=events)
    a = PlaybackItem(sample_rate=RATE, title="A")
    queue.add(a)
    assert queue.read(FRAME) is None
    b = await ready("B", 2, 1, priority=PRIORITY_HIGH)
    queue.add(b)
    await a.feed(pcm(1, FRAME))
    a.end()
    assert heard(queue, 3) == [2, 1, 0]
    assert a.interrupted_by == []
    assert a.resumes == 0
    assert ("A", ItemState.SUSPENDED) not in events.seen


async def test_too_long_to_keep_resumes_where_it_was() -> None:
    queue = PlaybackQueue()
    # Its recording is 2 frames at most; it has 4.
    a = await ready("A", 1, 4, resume_seconds=2 * FRAME / RATE)
    queue.add(a)
    heard(queue, 1)
    queue.add(await ready("B", 2, 1, priority=PRIORITY_HIGH))
    assert a.state is ItemState.SUSPENDED
    assert heard(queue, 5) == [2, 1, 1, 1, 0]
    assert state_of(a) is ItemState.FINISHED


async def test_the_producer_goes_on_after_a_rewind() -> None:
    queue = PlaybackQueue()
    a = PlaybackItem(sample_rate=RATE, title="A")
    queue.add(a)
    await a.feed(pcm(1, FRAME) + pcm(4, FRAME))
    assert heard(queue, 1) == [1]
    queue.add(await ready("B", 2, 1, priority=PRIORITY_HIGH))
    # Fed while it was suspended: it follows what was fed before.
    await a.feed(pcm(5, FRAME))
    a.end()
    assert heard(queue, 5) == [2, 1, 4, 5, 0]


async def test_stop_cancels_a_suspended_one() -> None:
    queue = PlaybackQueue()
    a = await ready("A", 1, 4)
    queue.add(a)
    heard(queue, 1)
    b = await ready("B", 2, 4, priority=PRIORITY_HIGH)
    queue.add(b)
    heard(queue, 1)
    queue.stop()
    assert a.state is ItemState.CANCELLED
    assert b.state is ItemState.INTERRUPTED
    assert queue.read(FRAME) is None


async def test_interrupt_flag_ranks_an_item_high() -> None:
    queue = PlaybackQueue()
    a = await ready("A", 1, 2)
    queue.add(a)
    heard(queue, 1)
    urgent = await ready("urgent", 2, 1)
    queue.add(urgent, interrupt=True)
    assert urgent.priority == PRIORITY_HIGH
    assert heard(queue, 4) == [2, 1, 1, 0]
