"""Decode one media item to PCM at the stream's rate with one ffmpeg process.

The process streams: the first samples reach the queue while the rest is still
being decoded, and ffmpeg's resampler is band-limited, not linear.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from .exceptions import DecodeError
from .ffmpeg import decoder_args
from .playback import PlaybackItem

CHUNK_BYTES = 8192
STDERR_LINES = 10


async def decode_into(
    item: PlaybackItem, source: str, *, binary: str, sample_rate: int
) -> None:
    """Feed `item` with `source` decoded to s16le mono; mark its end or failure."""
    try:
        process = await asyncio.create_subprocess_exec(
            *decoder_args(binary, source, sample_rate),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as err:
        item.fail(DecodeError(f"cannot start {binary}: {err.strerror or err}"))
        return
    assert process.stdout is not None  # noqa: S101
    assert process.stderr is not None  # noqa: S101
    errors: deque[str] = deque(maxlen=STDERR_LINES)
    stderr_task = asyncio.get_running_loop().create_task(
        _collect(process.stderr, errors)
    )
    produced = 0
    try:
        while chunk := await process.stdout.read(CHUNK_BYTES):
            produced += len(chunk)
            if not await item.feed(chunk):
                break
        code = await process.wait() if not item.done else None
        await stderr_task
        if code and produced == 0:
            item.fail(DecodeError(errors[-1] if errors else f"ffmpeg exit code {code}"))
        elif produced == 0 and not item.done:
            item.fail(DecodeError("no audio in the media"))
        else:
            item.end()
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        await asyncio.shield(process.wait())
        stderr_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stderr_task


async def _collect(stream: asyncio.StreamReader, lines: deque[str]) -> None:
    while line := await stream.readline():
        lines.append(line.decode(errors="replace").strip())
