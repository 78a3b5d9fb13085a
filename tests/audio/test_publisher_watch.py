"""The publisher's progress watch with a stand-in ffmpeg: publishing, stalls, clean-up.

The stand-in writes progress blocks like ffmpeg's `-progress pipe:1`, then goes
quiet without exiting, as a frozen ffmpeg does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import psutil
import pytest

from custom_components.rtsp_announcer.audio.clock import Clock
from custom_components.rtsp_announcer.audio.models import PublisherState, StreamSettings
from custom_components.rtsp_announcer.audio.publisher import (
    FailureKind,
    Publisher,
    Supervision,
)
from custom_components.rtsp_announcer.audio.transport import TransportSink
from tests.helpers.waiting import until

from .fakes import CountingSink, ListSource

BLOCKS = 8
TIMING = Supervision(stall_timeout=0.6, start_timeout=10.0, backoff_initial=60.0)


def quiet_ffmpeg(tmp_path: Path) -> str:
    """A stand-in that answers the help question, writes blocks, then hangs."""
    script = tmp_path / "ffmpeg"
    script.write_text(
        "#!/bin/sh\n"
        'for arg; do [ "$arg" = long ] && exit 0; done\n'
        "i=0\n"
        f'while [ "$i" -lt {BLOCKS} ]; do\n'
        "  printf 'out_time_us=%d\\nprogress=continue\\n' \"$((i * 100000))\"\n"
        "  i=$((i + 1))\n"
        "  sleep 0.1\n"
        "done\n"
        "exec sleep 60\n"
    )
    script.chmod(0o755)
    return str(script)


def open_fds() -> set[str]:
    return {path.name for path in Path("/proc/self/fd").iterdir()}


def make_publisher(tmp_path: Path, ticker: Clock | None = None) -> Publisher:
    return Publisher(
        StreamSettings(url="rtsp://127.0.0.1:9/announce"),
        binary=quiet_ffmpeg(tmp_path),
        sink=TransportSink(max_buffer_bytes=1 << 16),
        input_spec="unused",
        supervision=TIMING,
        ticker=ticker,
    )


def progress_watched(publisher: Publisher) -> bool | None:
    progress = publisher._progress  # how the pipe is read
    return None if progress is None else progress.watched


@pytest.mark.parametrize("ticked", [True, False], ids=["ticked", "alone"])
async def test_a_stall_is_caught_whether_ticks_or_the_loop_read_progress(
    tmp_path: Path, ticked: bool
) -> None:
    loop = asyncio.get_running_loop()
    before = open_fds()
    clock = Clock(
        loop,
        sample_rate=8000,
        frame_ms=20,
        lead_ms=60,
        idle_block_ms=100,
        source=ListSource(),
        sink=CountingSink(),
    )
    publisher = make_publisher(tmp_path, clock if ticked else None)
    clock.start()
    publisher.start()
    try:
        await until(lambda: publisher.publishing, 10, "publishing")
        pid = publisher.pid
        assert pid is not None
        # With ticks the loop no longer watches the pipe: the ticks read it.
        assert progress_watched(publisher) is (not ticked)
        first = publisher.last_progress
        await until(lambda: publisher.last_progress != first, 5, "progress read on")
        assert publisher.out_time_us > 0
        await until(
            lambda: publisher.state is PublisherState.BACKOFF, 10, "the stall caught"
        )
        assert publisher.failure is FailureKind.STALLED
        assert publisher.published_at is not None
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    finally:
        await publisher.stop()
        clock.stop()
    assert clock._tick_listeners == []  # nothing left riding
    await until(lambda: open_fds() == before, 5, "every descriptor closed")


async def test_stop_while_publishing_leaves_no_process_and_no_pipe(
    tmp_path: Path,
) -> None:
    before = open_fds()
    publisher = make_publisher(tmp_path)
    publisher.start()
    await until(lambda: publisher.publishing, 10, "publishing")
    pid = publisher.pid
    assert pid is not None
    await publisher.stop()
    assert publisher.state is PublisherState.STOPPED
    assert progress_watched(publisher) is None
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    # asyncio closes its own stderr pipe once it has read the end.
    await until(lambda: open_fds() == before, 5, "every descriptor closed")
