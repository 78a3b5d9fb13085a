"""A publish attempt: does the RTSP server take a stream from this URL?

The config flow runs one before it creates or changes an entry. It is the
stream's own ffmpeg command line (same codec, rate and RTSP transport), fed a
fraction of a second of silence on stdin instead of the never-ending PCM: the
server is asked exactly what the stream will ask it (OPTIONS, ANNOUNCE, SETUP,
RECORD, TEARDOWN), and its answer is read from ffmpeg's stderr with the
supervisor's own classification.

ffmpeg runs under a time limit and is killed and reaped on timeout and on
cancellation, so nothing outlives the attempt.

Measured here (ffmpeg 5.1, loopback): success against ffmpeg's RTSP listener
~150 ms, a 401 or a refused connection ~100 ms, almost all of it ffmpeg's
start-up.

A server may claim to accept a transport it cannot use: rtsp-server-perl
answers 200 to a TCP SETUP and then cannot parse the interleaved packets, so a
TCP attempt passes there although only UDP works. A server that says so
(461 Unsupported Transport) is recognised: `transport_refused`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass
from typing import Final

from .ffmpeg import publisher_args
from .models import BYTES_PER_SAMPLE, StreamSettings
from .publisher import FailureKind, classify
from .url import redact_text

# Silence published by one attempt: enough for ffmpeg to open the session and
# send packets, short enough that the attempt is over at once.
PROBE_SECONDS: Final = 0.2
# Seconds an attempt may take, start-up included.
PROBE_TIMEOUT: Final = 5.0

# "method SETUP failed: 461 Unsupported Transport" (RFC 2326 11.3.15), or a
# server that answered SETUP with another transport than the one asked for.
_TRANSPORT_REFUSED: Final = re.compile(
    r"SETUP failed: 461\b|Nonmatching transport in server reply"
)
# ffmpeg's line prefixes: "[rtsp @ 0x55d0c3a17a40] [error] ".
_PREFIX: Final = re.compile(r"^(?:\[[^\]]*\]\s*)+")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeResult:
    """What one publish attempt found out.

    Attributes:
        failure: Why the server did not take the stream; NONE when it did.
            START_TIMEOUT when the attempt ran out of time.
        transport_refused: The server refused the RTSP transport (UDP or TCP)
            rather than the stream.
        error: ffmpeg's first error line, credentials removed; None on success.
        seconds: How long the attempt took.
    """

    failure: FailureKind
    transport_refused: bool = False
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the server took the stream."""
        return self.failure is FailureKind.NONE


async def probe_publish(
    binary: str,
    settings: StreamSettings,
    *,
    timeout: float | None = None,  # noqa: ASYNC109 - the attempt's own limit
) -> ProbeResult:
    """Publish `PROBE_SECONDS` of silence to the settings' URL once.

    Args:
        binary: The ffmpeg executable.
        settings: The stream's settings; the PCM transport is not used (the
            silence goes through ffmpeg's stdin).
        timeout: Seconds the attempt may take before ffmpeg is killed;
            `PROBE_TIMEOUT` by default.

    Returns:
        The outcome; never raises for a failed attempt.
    """
    if timeout is None:
        timeout = PROBE_TIMEOUT
    loop = asyncio.get_running_loop()
    started = loop.time()
    args = publisher_args(binary, settings, "pipe:0")
    try:
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as err:
        return ProbeResult(
            failure=FailureKind.NOT_FOUND,
            error=f"cannot start {binary}: {err.strerror or err}",
            seconds=loop.time() - started,
        )
    silence = bytes(int(settings.sample_rate * PROBE_SECONDS) * BYTES_PER_SAMPLE)
    try:
        async with asyncio.timeout(timeout):
            _, stderr = await process.communicate(silence)
    except TimeoutError:
        return ProbeResult(
            failure=FailureKind.START_TIMEOUT,
            error=f"no answer within {timeout:g} s",
            seconds=loop.time() - started,
        )
    finally:
        # On timeout and on cancellation: ffmpeg waits on the network with
        # SIGTERM ignored, so it gets SIGKILL, and is reaped even when the
        # caller is cancelled while waiting.
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        await asyncio.shield(process.wait())
    seconds = loop.time() - started
    if process.returncode == 0:
        return ProbeResult(failure=FailureKind.NONE, seconds=seconds)
    lines = [
        redact_text(line, settings.url)
        for line in stderr.decode(errors="replace").splitlines()
    ]
    errors = [line for line in lines if "[error]" in line or "[fatal]" in line]
    return ProbeResult(
        failure=classify(lines),
        transport_refused=any(_TRANSPORT_REFUSED.search(line) for line in errors),
        error=(
            _PREFIX.sub("", errors[0]).strip()
            if errors
            else f"ffmpeg exited with code {process.returncode}"
        ),
        seconds=seconds,
    )
