"""The publisher: one supervised, long-lived ffmpeg process per stream.

It starts ffmpeg with an argument list, reads its stderr all the time (the
last lines are kept for diagnostics, credentials removed), learns from the
progress blocks on stdout when publishing has really started and whether it
still moves, notices an exit at once, and restarts with capped exponential
back-off.

While a stream is idle the clock's ticks are its only regular wake-ups of the
event loop: once publishing, the progress pipe is read from those ticks, and
the watchdog is one timer at its deadline that the ticks move on before it
fires, so a healthy publisher wakes the loop for nothing of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from .exceptions import FfmpegNotFoundError
from .ffmpeg import knows_option, publisher_args
from .models import PublisherState, StreamSettings
from .progress import ProgressPipe
from .tasks import cancel_and_wait
from .transport import TransportSink, kernel_buffer_bytes, shrink_pipe
from .url import redact_text, redact_url
from .watchdog import Watchdog

_LOGGER = logging.getLogger(__name__)

STDERR_LINES = 50


class FailureKind(StrEnum):
    """Why the last ffmpeg run ended, as far as its output tells."""

    NONE = "none"
    NOT_FOUND = "ffmpeg_not_found"
    CONNECTION_REFUSED = "connection_refused"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    PATH_NOT_FOUND = "path_not_found"
    START_TIMEOUT = "start_timeout"
    STALLED = "stalled"
    EXITED = "exited"


@dataclass(frozen=True, slots=True, kw_only=True)
class Supervision:
    """Tunables of the supervisor, in seconds."""

    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    stable_after: float = 60.0
    start_timeout: float = 15.0
    stall_timeout: float = 5.0
    stop_timeout: float = 3.0
    # How long before the watchdog's timer a tick may run its check instead:
    # at least the longest gap between ticks (an idle block), so that the
    # timer of a publisher that makes progress is always moved in time.
    watch_early: float = 1.0


class Ticker(Protocol):
    """A regular wake-up of the event loop others may ride on (the clock)."""

    def add_tick_listener(
        self, listener: Callable[[float], None]
    ) -> Callable[[], None]:
        """Call `listener(now)` at each tick; returns a remover."""
        ...


type TaskFactory = Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None]]


def _default_task_factory(
    coro: Coroutine[Any, Any, None], name: str
) -> asyncio.Task[None]:
    return asyncio.get_running_loop().create_task(coro, name=name)


# How ffmpeg reports an RTSP status it did not expect: "method ANNOUNCE failed:
# 401 Unauthorized" from the RTSP layer, "Server returned 404 Not Found" when the
# output cannot be opened. Only the status after these phrases counts: a bare
# "401" also turns up in ports and in the socket's random directory name.
_RTSP_STATUS = re.compile(r"(?:failed: |Server returned )(?P<status>\d{3})\b")
_STATUS_KINDS = {
    401: FailureKind.UNAUTHORIZED,
    403: FailureKind.FORBIDDEN,
    404: FailureKind.PATH_NOT_FOUND,
}


def classify(lines: list[str]) -> FailureKind:
    """Tell from ffmpeg's last lines why it gave up."""
    recent = lines[-10:]
    for line in reversed(recent):
        for match in _RTSP_STATUS.finditer(line):
            kind = _STATUS_KINDS.get(int(match["status"]))
            if kind is not None:
                return kind
    if any("Connection refused" in line for line in recent):
        return FailureKind.CONNECTION_REFUSED
    return FailureKind.EXITED


class Publisher:
    """Keeps one ffmpeg publishing to the RTSP URL for as long as it runs."""

    def __init__(
        self,
        settings: StreamSettings,
        *,
        binary: str,
        sink: TransportSink,
        input_spec: str | None,
        video_spec: str | None = None,
        on_state: Callable[[PublisherState], None] | None = None,
        supervision: Supervision | None = None,
        create_task: TaskFactory | None = None,
        ticker: Ticker | None = None,
    ) -> None:
        """Prepare a stopped publisher.

        `input_spec` names the socket ffmpeg reads from; None means ffmpeg's
        stdin, which is attached to `sink` for each process. With a `ticker`,
        progress is read and the watchdog moved on its ticks once publishing;
        without, every progress block wakes the loop.
        """
        self._settings = settings
        self._binary = binary
        self._sink = sink
        self._input_spec = input_spec
        self._video_spec = video_spec
        self._on_state = on_state
        self._timing = supervision or Supervision()
        self._create_task = create_task or _default_task_factory
        self._ticker = ticker
        self._progress: ProgressPipe | None = None
        self._watchdog: Watchdog | None = None
        self._spawned = 0.0
        self._task: asyncio.Task[None] | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._label = redact_url(settings.url)
        self.state = PublisherState.STOPPED
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_LINES)
        self.restarts = 0
        self.failure = FailureKind.NONE
        # Runs in a row that ended with `failure` without ever publishing: what
        # tells a persistent refusal (a wrong password) from a passing one.
        self.failure_streak = 0
        self.last_error: str | None = None
        self.retry_delay: float | None = None
        self.next_retry: float | None = None
        self.published_at: float | None = None
        self.last_progress: float | None = None
        self.out_time_us = 0
        self._reported_down = False
        self._kill_reason: FailureKind | None = None
        self._run_errors: list[str] = []

    @property
    def pid(self) -> int | None:
        """The running ffmpeg's process id."""
        process = self._process
        return (
            None if process is None or process.returncode is not None else process.pid
        )

    @property
    def publishing(self) -> bool:
        """Whether ffmpeg runs and has published."""
        return self.state is PublisherState.PUBLISHING

    def start(self) -> None:
        """Start supervising in a background task."""
        if self._task is None:
            self._task = self._create_task(
                self._supervise(), f"publisher {self._label}"
            )

    async def stop(self) -> None:
        """Stop ffmpeg and the supervisor; returns once the process is reaped."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        self._set_state(PublisherState.STOPPED)

    def restart(self, reason: FailureKind = FailureKind.STALLED) -> None:
        """Kill the running ffmpeg; the supervisor starts a new one."""
        process = self._process
        if process is not None and process.returncode is None:
            self._kill_reason = reason
            process.kill()

    def _set_state(self, state: PublisherState) -> None:
        if state is self.state:
            return
        self.state = state
        if self._on_state is not None:
            try:
                self._on_state(state)
            except Exception:
                _LOGGER.exception("Publisher state listener failed")

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = self._timing.backoff_initial
        while True:
            published: float | None = None
            previous = self.failure
            try:
                published = await self._run_once()
            except FfmpegNotFoundError as err:
                self.failure = FailureKind.NOT_FOUND
                self.last_error = str(err)
            if published is not None:
                self.failure_streak = 0
            elif self.failure is previous and self.failure_streak:
                self.failure_streak += 1
            else:
                self.failure_streak = 1
            if published is not None and (
                loop.time() - published >= self._timing.stable_after
            ):
                backoff = self._timing.backoff_initial
            self._report_down(backoff)
            self.retry_delay = backoff
            self.next_retry = loop.time() + backoff
            # Listeners see the failure, its streak and the retry time together.
            self._set_state(PublisherState.BACKOFF)
            await asyncio.sleep(backoff)
            self.next_retry = None
            backoff = min(backoff * 2, self._timing.backoff_max)
            self.restarts += 1

    def _report_down(self, retry_in: float) -> None:
        # One info line when the stream becomes unavailable, one when it
        # publishes again (_on_progress); every retry in between only goes
        # to debug. The stream's entities show the outage itself.
        if self._reported_down:
            _LOGGER.debug(
                "Publisher for %s still down (%s: %s); retrying in %.1f s",
                self._label,
                self.failure,
                self.last_error or "no error printed",
                retry_in,
            )
            return
        self._reported_down = True
        _LOGGER.info(
            "Publisher for %s is down, the stream is unavailable (%s: %s);"
            " retrying in %.1f s",
            self._label,
            self.failure,
            self.last_error or "no error printed",
            retry_in,
        )

    async def _run_once(self) -> float | None:
        """Run one ffmpeg to its end; return when it started publishing."""
        loop = asyncio.get_running_loop()
        self.published_at = None
        input_spec = self._input_spec or "pipe:0"
        no_read_burst = await knows_option(self._binary, "readrate_initial_burst")
        args = publisher_args(
            self._binary,
            self._settings,
            input_spec,
            self._video_spec,
            no_read_burst=no_read_burst,
        )
        self._set_state(PublisherState.STARTING)
        self._kill_reason = None
        self.last_progress = None
        self._run_errors = []
        progress = ProgressPipe(self._on_progress)
        try:
            process = await self._spawn(args, progress)
        except BaseException:
            progress.close()
            raise
        self._process = process
        stdin_transport: asyncio.WriteTransport | None = None
        if process.stdin is not None:
            transport = process.stdin.transport
            assert isinstance(transport, asyncio.WriteTransport)  # noqa: S101
            stdin_transport = transport
            shrink_pipe(stdin_transport, kernel_buffer_bytes(self._settings))
            self._sink.attach(stdin_transport)
        assert process.stderr is not None  # noqa: S101
        stderr = loop.create_task(self._read_stderr(process.stderr))
        self._progress = progress
        try:
            await self._watch(process, progress)
        finally:
            if stdin_transport is not None:
                self._sink.detach(stdin_transport)
                # End of input is what makes a reading ffmpeg finish promptly.
                stdin_transport.close()
            await self._reap(process)
            self._progress = None
            progress.close()
            stderr.cancel()
            await asyncio.gather(stderr, return_exceptions=True)
            self._process = None
        lines = list(self.stderr_tail)
        self.failure = self._kill_reason or classify(lines)
        # The run's first error says why; the ones after it are consequences
        # ("Error initializing output stream", "Conversion failed!").
        errors = self._run_errors
        self.last_error = (
            errors[0] if errors else f"ffmpeg exited with code {process.returncode}"
        )
        return self.published_at

    async def _spawn(
        self, args: list[str], progress: ProgressPipe
    ) -> asyncio.subprocess.Process:
        try:
            return await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.PIPE
                if self._input_spec is None
                else asyncio.subprocess.DEVNULL,
                stdout=progress.child_fd,
                stderr=asyncio.subprocess.PIPE,
                # Its own session: a Ctrl-C meant for Home Assistant must not
                # kill ffmpeg behind the supervisor's back.
                start_new_session=True,
            )
        except OSError as err:
            msg = f"cannot start {self._binary}: {err.strerror or err}"
            raise FfmpegNotFoundError(msg) from err
        finally:
            # The child has its own copy of its end, or there is no child.
            progress.close_child_end()

    async def _watch(
        self, process: asyncio.subprocess.Process, progress: ProgressPipe
    ) -> None:
        """Wait for ffmpeg's exit; the watchdog kills it on a passed deadline."""
        loop = asyncio.get_running_loop()
        self._spawned = loop.time()
        # Until the first block the loop reads each one at once: it is what
        # makes the stream available.
        progress.watch(loop)
        watchdog = self._watchdog = Watchdog(loop, self._check)
        watchdog.arm(self._spawned + self._timing.start_timeout)
        stop_ticks = (
            None
            if self._ticker is None
            else self._ticker.add_tick_listener(self._on_tick)
        )
        try:
            await process.wait()
        finally:
            if stop_ticks is not None:
                stop_ticks()
            watchdog.cancel()
            self._watchdog = None
            progress.unwatch()

    def _check(self, now: float) -> float | None:
        """The watchdog's check: act on a passed deadline, else return it."""
        if self._progress is not None:
            # Blocks the ticks have not read yet count too.
            self._progress.poll()
        if self.state is PublisherState.STARTING or self.last_progress is None:
            deadline = self._spawned + self._timing.start_timeout
            reason = FailureKind.START_TIMEOUT
        else:
            deadline = self.last_progress + self._timing.stall_timeout
            reason = FailureKind.STALLED
        if now < deadline:
            return deadline
        self.restart(reason)
        return None

    def _on_tick(self, now: float) -> None:
        progress = self._progress
        if progress is not None and not progress.watched:
            progress.poll()
        if self._watchdog is not None:
            self._watchdog.nudge(now, self._timing.watch_early)

    async def _reap(self, process: asyncio.subprocess.Process) -> None:
        try:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._timing.stop_timeout):
                        await process.wait()
        finally:
            # Also when cancelled while waiting (Home Assistant cancels the
            # supervisor on shutdown, then the entry stops it again): a stopped
            # or stuck ffmpeg ignores SIGTERM, so it gets SIGKILL.
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            # Shielded: even a cancelled stop must not leave a zombie behind.
            await asyncio.shield(process.wait())

    async def _read_stderr(self, stream: asyncio.StreamReader) -> None:
        url = self._settings.url
        while line := await stream.readline():
            text = redact_text(line.decode(errors="replace").rstrip(), url)
            self.stderr_tail.append(text)
            if ("[error]" in text or "[fatal]" in text) and len(
                self._run_errors
            ) < STDERR_LINES:
                self._run_errors.append(text)
            _LOGGER.debug("ffmpeg %s: %s", self._label, text)

    def _on_progress(self, out_time_us: int) -> None:
        now = asyncio.get_running_loop().time()
        self.out_time_us = out_time_us
        self.last_progress = now
        if self.state is not PublisherState.STARTING:
            return
        self.published_at = now
        self.failure = FailureKind.NONE
        if self._progress is not None and self._ticker is not None:
            # From now on only the progress going on matters: the ticks read it.
            self._progress.unwatch()
        if self._watchdog is not None:
            self._watchdog.arm(now + self._timing.stall_timeout)
        if self._reported_down:
            self._reported_down = False
            _LOGGER.info(
                "Publisher for %s is publishing again, the stream is available",
                self._label,
            )
        self._set_state(PublisherState.PUBLISHING)
