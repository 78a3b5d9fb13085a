"""Decode one media item to PCM at the stream's rate with one ffmpeg process.

The process streams: the first samples reach the queue while the rest is still
being decoded (or still arriving from another TTS engine), and ffmpeg's
resampler is band-limited, not linear.

Nothing gets in and nothing hangs. Each kind of source opens only its own
protocols (`ffmpeg.source_kind`): a URL never reaches a local file, a local file
never reaches the network, piped audio reaches nothing else. Every wait for the
source is bounded (`DecodeLimits`): ffmpeg's own network timeout, the time to the
first audio, the source falling behind its own audio, and a total. A remote source
fails with one message whatever went wrong, so that an error never tells whether a
host or port answers; the reason goes to the debug log, with every secret of the
URL masked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass, fields
from typing import Final

from .exceptions import (
    DecodeError,
    InvalidOptionError,
    MediaUnreadableError,
    SourceTimeoutError,
)
from .ffmpeg import DEFAULT_NETWORK_TIMEOUT, SourceKind, decoder_args, source_kind
from .models import BYTES_PER_SAMPLE
from .playback import PlaybackItem
from .url import redact_text, redact_url

_LOGGER = logging.getLogger(__name__)

CHUNK_BYTES = 8192
STDERR_LINES = 10

type MediaSource = str | AsyncIterable[bytes]
# Receives decoded PCM; returns False to stop decoding.
type PcmConsumer = Callable[[bytes], Awaitable[bool]]


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodeLimits:
    """How long decoding one media item may wait for its source, in seconds.

    Only waiting for ffmpeg counts: the time the consumer takes (a full buffer
    waiting for the clock, an item queued behind another) never does.

    Attributes:
        first_audio: From the start until ffmpeg hands over the first samples.
            ffmpeg analyses up to 5 s of a stream (a WAV over HTTP, say) before
            its first output, so this should not be much lower than the default.
        margin: How far the source may fall behind its own audio: after the first
            samples, the wait may last at most the duration of the audio decoded
            so far plus this margin (a trickle or a stalled body fails; a stream
            at real time does not).
        total: All waiting together, whatever arrives (a live stream never ends).
        network_io: ffmpeg's limit for one network read, write or connection of
            a remote source (its ``-rw_timeout``).
    """

    first_audio: float = 10.0
    margin: float = 10.0
    total: float = 600.0
    network_io: float = DEFAULT_NETWORK_TIMEOUT

    def __post_init__(self) -> None:
        """Reject limits that are not a positive, finite number of seconds."""
        for field in fields(self):
            value = getattr(self, field.name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value <= 0
            ):
                msg = (
                    f"{field.name} must be a positive number of seconds, not {value!r}"
                )
                raise InvalidOptionError(msg)


DEFAULT_LIMITS: Final = DecodeLimits()


async def decode_to(
    sink: PcmConsumer,
    source: MediaSource,
    *,
    binary: str,
    sample_rate: int,
    item: PlaybackItem,
    limits: DecodeLimits = DEFAULT_LIMITS,
) -> int | None:
    """Decode `source` into `sink`; None when it failed (the item says why).

    Args:
        sink: Receives the PCM as it is decoded; returns False to stop.
        source: A local path, an http(s) URL, or chunks of encoded audio.
        binary: The ffmpeg binary.
        sample_rate: The rate of the PCM handed to `sink`.
        item: The item that is failed, with the reason, when decoding fails.
        limits: How long the source may keep the decoder waiting.

    Returns:
        The number of PCM bytes handed to `sink`, or None when decoding failed:
        the item then holds a `DecodeError`. A remote source's error is always a
        `MediaUnreadableError`; a local or piped source that is too slow fails
        with a `SourceTimeoutError`.
    """
    path = source if isinstance(source, str) else None
    label = "piped audio" if path is None else redact_url(path)
    try:
        kind = source_kind(path)
        args = decoder_args(
            binary, path, sample_rate, network_timeout=limits.network_io
        )
    except DecodeError as err:
        item.fail(err)
        return None
    try:
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=(
                asyncio.subprocess.PIPE if path is None else asyncio.subprocess.DEVNULL
            ),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as err:
        item.fail(DecodeError(f"cannot start {binary}: {err.strerror or err}"))
        return None
    try:
        deadline = _Deadline(limits, sample_rate)
        return await _decode(process, sink, source, item, kind, label, deadline)
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        # asyncio reports the exit only once every pipe is closed, and a paused
        # stdout (its consumer stopped reading) is never seen closing: drain it.
        assert process.stdout is not None  # noqa: S101
        await asyncio.shield(_drain(process.stdout))
        await asyncio.shield(process.wait())


async def _decode(
    process: asyncio.subprocess.Process,
    sink: PcmConsumer,
    source: MediaSource,
    item: PlaybackItem,
    kind: SourceKind,
    label: str,
    deadline: _Deadline,
) -> int | None:
    """Read ffmpeg's PCM into `sink` under the limits; the caller reaps ffmpeg."""
    assert process.stdout is not None  # noqa: S101
    assert process.stderr is not None  # noqa: S101
    loop = asyncio.get_running_loop()
    errors: deque[str] = deque(maxlen=STDERR_LINES)
    url = source if isinstance(source, str) else None
    collector = loop.create_task(_collect(process.stderr, errors, url))
    helpers = [collector]
    source_failures: list[DecodeError] = []
    if not isinstance(source, str):
        helpers.append(loop.create_task(_pipe(source, process, source_failures)))
    produced = 0
    try:
        while chunk := await deadline.wait(process.stdout.read(CHUNK_BYTES)):
            produced += len(chunk)
            deadline.heard(len(chunk))
            if not await sink(chunk):
                return produced
        code = await deadline.wait(process.wait())
        # ffmpeg is reaped only once its pipes are closed: the last lines are in.
        await collector
        if source_failures:
            raise source_failures[0]
    except DecodeError as err:
        _fail(item, kind, label, err, errors)
        return None
    finally:
        for helper in helpers:
            helper.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
    if code and (produced == 0 or kind is SourceKind.REMOTE):
        # A remote source that fails midway was cut off (ffmpeg runs with
        # -xerror for it); a local file or piped audio keeps what was decoded.
        reason = errors[-1] if errors else f"ffmpeg exit code {code}"
        _fail(item, kind, label, DecodeError(reason), errors)
        return None
    if produced == 0:
        _fail(item, kind, label, DecodeError("no audio in the media"), errors)
        return None
    if code:
        _LOGGER.debug(
            "%s ended with exit code %s after %s bytes of audio: %s",
            label,
            code,
            produced,
            " / ".join(errors),
        )
    return produced


def _fail(
    item: PlaybackItem,
    kind: SourceKind,
    label: str,
    error: DecodeError,
    errors: deque[str],
) -> None:
    """Fail the item; a remote source's reason only goes to the debug log."""
    _LOGGER.debug(
        "Cannot decode %s: %s%s",
        label,
        redact_text(str(error)),
        f" (ffmpeg: {' / '.join(errors)})" if errors else "",
    )
    item.fail(MediaUnreadableError() if kind is SourceKind.REMOTE else error)


class _Deadline:
    """How long the decoder may still wait for ffmpeg, as `DecodeLimits` says."""

    def __init__(self, limits: DecodeLimits, sample_rate: int) -> None:
        self._limits = limits
        self._bytes_per_second = sample_rate * BYTES_PER_SAMPLE
        self._loop = asyncio.get_running_loop()
        self._waited = 0.0
        self._first: float | None = None
        self._audio = 0.0

    def heard(self, pcm_bytes: int) -> None:
        """Count decoded audio: it extends the time the source may take."""
        if self._first is None:
            self._first = self._waited
        self._audio += pcm_bytes / self._bytes_per_second

    def _budget(self) -> tuple[float, str]:
        limits = self._limits
        left = limits.total - self._waited
        reason = f"the media source took longer than {limits.total:g} s"
        if self._first is None:
            first_left = limits.first_audio - self._waited
            if first_left <= left:
                return first_left, f"no audio within {limits.first_audio:g} s"
        else:
            behind_left = self._first + self._audio + limits.margin - self._waited
            if behind_left < left:
                return behind_left, "the media source fell behind its audio"
        return left, reason

    async def wait[T](self, awaitable: Awaitable[T]) -> T:
        """Await ffmpeg within what is left of the limits.

        Raises:
            SourceTimeoutError: A limit was reached first.
        """
        budget, reason = self._budget()
        started = self._loop.time()
        # What is awaited here (reading a pipe, reaping ffmpeg) never raises
        # TimeoutError itself: one is always the deadline's.
        try:
            async with asyncio.timeout(max(budget, 0.0)):
                return await awaitable
        except TimeoutError:
            raise SourceTimeoutError(reason) from None
        finally:
            self._waited += self._loop.time() - started


async def _pipe(
    source: AsyncIterable[bytes],
    process: asyncio.subprocess.Process,
    failures: list[DecodeError],
) -> None:
    """Copy encoded audio into ffmpeg's stdin, then close it.

    A failure of the source is put in `failures` before stdin is closed, so it is
    there by the time ffmpeg, seeing the end of its input, has exited.
    """
    stdin = process.stdin
    assert stdin is not None  # noqa: S101
    try:
        async for chunk in source:
            stdin.write(chunk)
            await stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        return
    except DecodeError as err:
        # Already says what failed (the TTS entity, for one): not wrapped twice.
        failures.append(err)
    except Exception as err:  # noqa: BLE001 - any failure of the source is reported
        failure = DecodeError(f"the audio source failed: {redact_text(str(err))}")
        failure.__cause__ = err
        failures.append(failure)
    finally:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            stdin.close()
            await stdin.wait_closed()


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(CHUNK_BYTES * 8):
        pass


async def _collect(
    stream: asyncio.StreamReader, lines: deque[str], url: str | None
) -> None:
    """Keep ffmpeg's last lines, with every secret masked (ffmpeg echoes URLs)."""
    while line := await stream.readline():
        lines.append(redact_text(line.decode(errors="replace").strip(), url))
