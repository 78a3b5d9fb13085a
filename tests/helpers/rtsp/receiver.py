"""What a receiving ffmpeg child delivers: decoded PCM, arrivals and sessions.

`PcmRecorder` is the part `ListenReceiver` (listener.py) and `Reader` (reader.py)
share: it pumps s16le mono PCM from an ffmpeg child's stdout, records every chunk's
arrival time, splits the runs into `Session`s and lets tests wait for samples,
sessions and their ends without polling.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import numpy as np

from tests.helpers.service import Service

from .children import READ_SIZE, Child, s16le_mono

if TYPE_CHECKING:
    from numpy.typing import NDArray

DEFAULT_RATE: Final = 24000
DEFAULT_PATH: Final = "/announce"
# ffmpeg's input options that make it start decoding without probing: the SDP already
# says what the stream is.
LOW_DELAY_INPUT: Final = (
    "-fflags",
    "nobuffer",
    "-flags",
    "low_delay",
    "-probesize",
    "32",
    "-analyzeduration",
    "0",
)


class Changes:
    """Wakes waiters when something changed; `notify()` is synchronous."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        # No await between the check and clear(), so no notify can be missed.
        while not predicate():
            self._event.clear()
            await self._event.wait()


@dataclass
class Session:
    """One connection that delivered audio: a publisher, or a reader's run.

    Attributes:
        index: 1-based number of the session.
        rate: sample rate of the decoded PCM.
        first_sample: offset of this session's first sample in `samples()`.
        spawned_at: monotonic time the ffmpeg process of this session was started.
        connected_at: monotonic time ffmpeg reported the stream open ("Input #0"),
            if it did.
        started_at: monotonic time the first PCM arrived.
        sample_count: samples received in this session.
        arrivals: (monotonic time, cumulative samples in this session) per chunk read.
        ended_at: monotonic time the process ended (None while running).
        returncode: exit status of the ffmpeg process (None while running).
        log_tail: the last lines ffmpeg printed, once it has ended.
    """

    index: int
    rate: int
    first_sample: int
    spawned_at: float
    connected_at: float | None
    started_at: float
    sample_count: int = 0
    arrivals: list[tuple[float, int]] = field(default_factory=list)
    ended_at: float | None = None
    returncode: int | None = None
    log_tail: tuple[str, ...] = ()

    @property
    def duration_s(self) -> float:
        """Seconds of audio received in this session."""
        return self.sample_count / self.rate

    @property
    def sample_slice(self) -> slice:
        """This session's part of `samples()`."""
        return slice(self.first_sample, self.first_sample + self.sample_count)


class PcmRecorder(Service):
    """Records s16le PCM from ffmpeg children: samples, arrivals, sessions."""

    _kind = "recorder"

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.arrivals: list[tuple[float, int]] = []
        self.sessions: list[Session] = []
        self.failure: BaseException | None = None
        self._chunks: list[bytes] = []
        self._total = 0
        self._changes = Changes()
        self._child: Child | None = None
        self._task: asyncio.Task[None] | None = None
        self._live: Session | None = None
        self.last_log: tuple[str, ...] = ()
        """What the last ended ffmpeg process printed (its final lines)."""
        # SIGTERM, a second SIGTERM, then SIGKILL, within this many seconds.
        self._stop_grace_s = 2.0

    def _ffmpeg_argv(
        self, ffmpeg: str, low_delay: bool, *input_options: str
    ) -> list[str]:
        """ffmpeg reading its input (options ending in `-i URL`) into `_pcm_output`."""
        return [
            ffmpeg,
            "-hide_banner",
            "-nostdin",
            "-nostats",
            "-loglevel",
            "info",
            *(LOW_DELAY_INPUT if low_delay else ()),
            *input_options,
            *self._pcm_output(),
        ]

    def _pcm_output(self) -> list[str]:
        """ffmpeg's output options: s16le mono at `rate` on stdout."""
        return [
            "-vn",
            *s16le_mono(self.rate),
            # Arrival timing is measured: every decoded frame must reach the pipe at
            # once (ffmpeg 5.1 does that for pipes anyway; this keeps it so).
            "-flush_packets",
            "1",
            "pipe:1",
        ]

    # -- what was received

    @property
    def total_samples(self) -> int:
        """Samples received so far, over all sessions."""
        return self._total

    def samples(self) -> NDArray[np.int16]:
        """Return all decoded PCM so far, sessions concatenated."""
        return np.frombuffer(b"".join(self._chunks), dtype="<i2").astype(np.int16)

    def session_samples(self, session: Session) -> NDArray[np.int16]:
        """Return the PCM of one session."""
        return self.samples()[session.sample_slice]

    @property
    def running(self) -> bool:
        """Whether start() was called and stop() was not."""
        return self._task is not None and not self._task.done()

    # -- waiting

    def _describe(self) -> str:
        child = self._child
        log = child.text() if child is not None else "\n".join(self.last_log)
        log = log[-3000:]
        return (
            f"{self._kind}: {self._total} samples, {len(self.sessions)} sessions,"
            f" failure={self.failure!r}; last ffmpeg log:\n{log}"
        )

    async def _wait(
        self,
        predicate: Callable[[], bool],
        limit_s: float,
        what: str,
    ) -> None:
        def done() -> bool:
            return predicate() or self.failure is not None or not self.running

        try:
            async with asyncio.timeout(limit_s):
                await self._changes.wait_for(done)
        except TimeoutError:
            msg = f"{what} not within {limit_s} s; {self._describe()}"
            raise TimeoutError(msg) from None
        if predicate():
            return
        if self.failure is not None:
            msg = f"{what}: {self._kind} failed; {self._describe()}"
            raise RuntimeError(msg) from self.failure
        msg = f"{what}: {self._kind} is not running; {self._describe()}"
        raise RuntimeError(msg)

    async def wait_for_samples(self, n: int, timeout: float = 10.0) -> int:  # noqa: ASYNC109
        """Wait until at least n samples were received in total.

        Args:
            n: samples over all sessions (use `total_samples + k` for k more).
            timeout: seconds.

        Returns:
            The total received when the wait ended.

        Raises:
            TimeoutError: not reached in time (the message has ffmpeg's log).
        """
        await self._wait(lambda: self._total >= n, timeout, f"{n} samples")
        return self._total

    async def wait_for_session(
        self,
        k: int,
        timeout: float = 10.0,  # noqa: ASYNC109
        *,
        min_samples: int = 1,
    ) -> Session:
        """Wait until the k-th session (1-based) delivered at least min_samples.

        Args:
            k: session number.
            timeout: seconds.
            min_samples: how much audio counts as "delivering".

        Returns:
            The session.
        """

        def ready() -> bool:
            return (
                len(self.sessions) >= k
                and self.sessions[k - 1].sample_count >= min_samples
            )

        await self._wait(ready, timeout, f"session {k}")
        return self.sessions[k - 1]

    async def wait_for_session_end(
        self,
        k: int,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> Session:
        """Wait until the k-th session (1-based) has ended and its process is reaped.

        Returns:
            The session, with `ended_at` and `returncode` set.
        """

        def ended() -> bool:
            return len(self.sessions) >= k and self.sessions[k - 1].ended_at is not None

        await self._wait(ended, timeout, f"end of session {k}")
        return self.sessions[k - 1]

    # -- pumping

    def _connected_at(self, child: Child) -> float | None:
        for when, line in child.lines:
            if line.startswith("Input #0"):
                return when
        return None

    async def _pump(self, child: Child, idle_timeout: float | None) -> bool:
        """Record child's stdout until EOF or until it stays silent idle_timeout s.

        Returns:
            Whether the child went silent (False: its output ended).
        """
        session: Session | None = None
        carry = b""
        while True:
            try:
                async with asyncio.timeout(idle_timeout):
                    data = await child.stdout.read(READ_SIZE)
            except TimeoutError:
                return True
            if not data:
                return False
            now = time.monotonic()
            data = carry + data
            usable = len(data) - len(data) % 2
            carry = data[usable:]
            if not usable:
                continue
            count = usable // 2
            if session is None:
                session = Session(
                    index=len(self.sessions) + 1,
                    rate=self.rate,
                    first_sample=self._total,
                    spawned_at=child.spawned_at,
                    connected_at=self._connected_at(child),
                    started_at=now,
                )
                self.sessions.append(session)
                self._live = session
            self._chunks.append(data[:usable])
            self._total += count
            session.sample_count += count
            session.arrivals.append((now, session.sample_count))
            self.arrivals.append((now, self._total))
            self._changes.notify()

    async def _end_run(
        self, child: Child, *, natural_exit_s: float, grace_s: float | None = None
    ) -> None:
        """Reap a child and close the session it delivered, if any."""
        grace = self._stop_grace_s if grace_s is None else grace_s
        try:
            await child.reap(natural_exit_s=natural_exit_s, grace_s=grace)
        finally:
            self.last_log = tuple(line for _, line in list(child.lines)[-40:])
            session, self._live = self._live, None
            if session is not None:
                session.ended_at = time.monotonic()
                session.returncode = child.returncode
                session.log_tail = self.last_log
            self._changes.notify()

    # -- lifecycle

    def _on_task_done(self, task: asyncio.Task[None]) -> None:
        del task
        # Waiters check `running`, which only turns False once the task is done.
        self._changes.notify()

    async def stop(self) -> None:
        """Stop recording: end the ffmpeg process and every task of this object."""
        task = self._task
        if task is None:
            return
        # The supervisor reaps its child in its own clean-up, so cancelling it is
        # the one way to stop, wherever it is (reading, restarting, waiting).
        task.cancel()
        try:
            await asyncio.wait({task})
        finally:
            self._task = None
            self._child = None
            self._changes.notify()

    async def start(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError
