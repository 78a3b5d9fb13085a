"""ffmpeg's progress pipe: blocks read when watched or polled, and its end."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from custom_components.rtsp_announcer.audio.progress import MAX_LINE, ProgressPipe
from tests.helpers.waiting import until

BLOCK = b"frame=0\nout_time_us=%d\nspeed=1x\nprogress=continue\n"


def watched(pipe: ProgressPipe) -> bool:
    """Read the flag afresh (it changes behind mypy's narrowing)."""
    return pipe.watched


def open_fds() -> set[str]:
    return {path.name for path in Path("/proc/self/fd").iterdir()}


def test_polled_blocks_are_reported_whole_across_reads() -> None:
    blocks: list[int] = []
    pipe = ProgressPipe(blocks.append)
    pipe.poll()
    assert blocks == []
    data = (BLOCK % 500_000) + (BLOCK % 1_000_000)
    # A block split across writes is reported once its last line is there.
    os.write(pipe.child_fd, data[:30])
    pipe.poll()
    assert blocks == []
    os.write(pipe.child_fd, data[30:-5])
    pipe.poll()
    assert blocks == [500_000]
    os.write(pipe.child_fd, data[-5:])
    pipe.poll()
    assert blocks == [500_000, 1_000_000]
    pipe.close()


def test_a_line_too_long_is_dropped_and_reading_goes_on() -> None:
    blocks: list[int] = []
    pipe = ProgressPipe(blocks.append)
    os.write(pipe.child_fd, b"x" * (MAX_LINE + 1))
    pipe.poll()
    os.write(pipe.child_fd, b"\nout_time_us=not a number\n" + BLOCK % 7)
    pipe.poll()
    assert blocks == [7]
    pipe.close()


def test_the_end_of_the_pipe_closes_it_and_leaves_no_descriptor() -> None:
    before = open_fds()
    blocks: list[int] = []
    pipe = ProgressPipe(blocks.append)
    os.write(pipe.child_fd, BLOCK % 1)
    pipe.close_child_end()
    pipe.close_child_end()
    pipe.poll()
    assert blocks == [1]
    assert pipe.closed
    pipe.poll()
    pipe.close()
    assert open_fds() == before


async def test_watched_blocks_come_as_written_and_unwatched_wait_for_a_poll() -> None:
    before = open_fds()
    loop = asyncio.get_running_loop()
    came = asyncio.Event()
    blocks: list[int] = []

    def on_block(out_time_us: int) -> None:
        blocks.append(out_time_us)
        came.set()

    pipe = ProgressPipe(on_block)
    pipe.watch(loop)
    pipe.watch(loop)
    assert pipe.watched
    os.write(pipe.child_fd, BLOCK % 1)
    async with asyncio.timeout(5):
        await came.wait()
    assert blocks == [1]
    pipe.unwatch()
    pipe.unwatch()
    assert not watched(pipe)
    os.write(pipe.child_fd, BLOCK % 2)
    # A few turns of the loop, each of which looks at the ready descriptors.
    for _ in range(3):
        await asyncio.sleep(0)
    assert blocks == [1]
    pipe.poll()
    assert blocks == [1, 2]
    # The end of the pipe while watched: no busy loop on a readable end.
    pipe.watch(loop)
    pipe.close_child_end()
    await until(lambda: pipe.closed, 5, "the end of the pipe")
    assert not watched(pipe)
    pipe.close()
    pipe.watch(loop)
    assert not watched(pipe)
    assert open_fds() == before
