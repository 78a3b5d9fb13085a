"""Decode one media item to PCM at the stream's rate with one ffmpeg process.

The process streams: the first samples reach the queue while the rest is still
being decoded (or still arriving from another TTS engine), and ffmpeg's
resampler is band-limited, not linear.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterable, Awaitable, Callable

from .exceptions import DecodeError
from .ffmpeg import decoder_args
from .playback import PlaybackItem

CHUNK_BYTES = 8192
STDERR_LINES = 10

type MediaSource = str | AsyncIterable[bytes]
# Receives decoded PCM; returns False to stop decoding.
type PcmConsumer = Callable[[bytes], Awaitable[bool]]


async def decode_to(
    sink: PcmConsumer,
    source: MediaSource,
    *,
    binary: str,
    sample_rate: int,
    item: PlaybackItem,
) -> int | None:
    """Decode `source` into `sink`; None when it failed (the item says why)."""
    piped = not isinstance(source, str)
    try:
        process = await asyncio.create_subprocess_exec(
            *decoder_args(binary, None if piped else str(source), sample_rate),
            stdin=asyncio.subprocess.PIPE if piped else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as err:
        item.fail(DecodeError(f"cannot start {binary}: {err.strerror or err}"))
        return None
    assert process.stdout is not None  # noqa: S101
    assert process.stderr is not None  # noqa: S101
    loop = asyncio.get_running_loop()
    errors: deque[str] = deque(maxlen=STDERR_LINES)
    helpers = [loop.create_task(_collect(process.stderr, errors))]
    if piped:
        assert not isinstance(source, str)  # noqa: S101
        helpers.append(loop.create_task(_pipe(source, process)))
    produced = 0
    try:
        while chunk := await process.stdout.read(CHUNK_BYTES):
            produced += len(chunk)
            if not await sink(chunk):
                return produced
        code = await process.wait()
        await asyncio.gather(*helpers)
    except DecodeError as err:
        item.fail(err)
        return None
    else:
        if produced == 0:
            reason = errors[-1] if errors else f"ffmpeg exit code {code}"
            item.fail(DecodeError(reason if code else "no audio in the media"))
            return None
        return produced
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        # asyncio reports the exit only once every pipe is closed, and a paused
        # stdout (its consumer stopped reading) is never seen closing: drain it.
        await asyncio.shield(_drain(process.stdout))
        await asyncio.shield(process.wait())
        for helper in helpers:
            helper.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)


async def _pipe(
    source: AsyncIterable[bytes], process: asyncio.subprocess.Process
) -> None:
    """Copy encoded audio into ffmpeg's stdin, then close it."""
    stdin = process.stdin
    assert stdin is not None  # noqa: S101
    try:
        async for chunk in source:
            stdin.write(chunk)
            await stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        return
    except DecodeError:
        # Already says what failed (the TTS entity, for one): not wrapped twice.
        raise
    except Exception as err:
        msg = f"the audio source failed: {err}"
        raise DecodeError(msg) from err
    finally:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            stdin.close()
            await stdin.wait_closed()


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(CHUNK_BYTES * 8):
        pass


async def _collect(stream: asyncio.StreamReader, lines: deque[str]) -> None:
    while line := await stream.readline():
        lines.append(line.decode(errors="replace").strip())
