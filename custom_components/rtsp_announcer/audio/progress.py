"""ffmpeg's progress blocks (`-progress pipe:1`), read from a pipe one run owns.

ffmpeg writes a block of `key=value` lines every stats period, the last one
`progress=continue`; the first block comes as soon as the output is open,
whatever the period, which is how the publisher learns that publishing
started. The pipe is read in two ways: watched by the event loop (every block
wakes it) while that first block is awaited, and then, when a regular wake-up
is on offer (the clock's tick), polled with a non-blocking read from there:
all that still matters is that blocks keep coming, and reading them a tick
late costs nothing, where each block woke the loop on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable

# Enough for every block ffmpeg writes between two polls; a line longer than
# this is not ffmpeg's progress and is dropped.
READ_BYTES = 65536
MAX_LINE = 4096


class ProgressPipe:
    """The pipe ffmpeg writes its progress to: the child's end and ours."""

    def __init__(self, on_block: Callable[[int], None]) -> None:
        """Open the pipe; `on_block(out_time_us)` is called at each block's end."""
        self._on_block = on_block
        self._fd, self.child_fd = os.pipe()
        # Ours only: the child's end stays blocking, as ffmpeg expects.
        os.set_blocking(self._fd, False)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending = b""
        self._out_time_us = 0
        self.closed = False

    @property
    def watched(self) -> bool:
        """Whether the event loop reads the pipe as soon as a block comes."""
        return self._loop is not None

    def close_child_end(self) -> None:
        """Close the child's end here once the child holds its own copy."""
        if self.child_fd >= 0:
            os.close(self.child_fd)
            self.child_fd = -1

    def watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read each block as it comes."""
        if self._loop is None and not self.closed:
            loop.add_reader(self._fd, self.poll)
            self._loop = loop

    def unwatch(self) -> None:
        """Leave the pipe to `poll`."""
        if self._loop is not None:
            self._loop.remove_reader(self._fd)
            self._loop = None

    def poll(self) -> None:
        """Read what the pipe holds without waiting; report each whole block."""
        while not self.closed:
            try:
                data = os.read(self._fd, READ_BYTES)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                # ffmpeg is gone (its exit is noticed elsewhere): a pipe at its
                # end would be readable for ever.
                self.close()
                return
            self._parse(data)

    def close(self) -> None:
        """Close both ends; further polls do nothing."""
        self.unwatch()
        self.close_child_end()
        if not self.closed:
            self.closed = True
            with contextlib.suppress(OSError):
                os.close(self._fd)

    def _parse(self, data: bytes) -> None:
        *lines, self._pending = (self._pending + data).split(b"\n")
        if len(self._pending) > MAX_LINE:
            self._pending = b""
        for line in lines:
            key, _, value = line.decode(errors="replace").strip().partition("=")
            if key == "out_time_us":
                with contextlib.suppress(ValueError):
                    self._out_time_us = int(value)
            elif key == "progress":
                self._on_block(self._out_time_us)
