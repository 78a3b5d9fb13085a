"""Real RTSP servers and readers for end-to-end tests, driven from asyncio.

Three tools, all real processes (no mocks):

* `ListenReceiver`: an RTSP server for one publisher at a time, built on ffmpeg's
  listen mode. It decodes what it receives to s16le mono PCM and records it. ffmpeg's
  listener exits when its publisher goes away, so the receiver starts a new listener on
  the same port at once and behaves like a server that stays up.
* `RelayServer`: rtsp-server-perl, a relay: publishers ANNOUNCE/RECORD on the source
  port (UDP transport only), readers PLAY on the client port.
* `Reader`: an ffmpeg RTSP client that records what a server plays, like
  `ListenReceiver` records what it is sent.

Everything is asyncio (`asyncio.create_subprocess_exec`, argument lists, no shell).
Every child is reaped on `stop()`/`__aexit__`, on cancellation and on errors
(SIGTERM, a grace period, then SIGKILL), and no task outlives `stop()`. Where
`setpriv` exists (util-linux), children also get SIGKILL when the test process dies,
so a killed test run leaves no listener or relay behind.

Ports are chosen without Python sockets (the Home Assistant test plugin disables them):
`free_port()` picks a random port below the kernel's ephemeral range and checks
/proc/net/{tcp,udp}{,6}; readiness is observed in /proc as well (a LISTEN socket whose
inode belongs to the child). No test needs the `socket_enabled` fixture.

Measured on this machine (Debian 12, ffmpeg 5.1, 2 cores; ranges over many runs):

* ffmpeg listener: `start()` returns 0.1-0.3 s after spawn. When its publisher dies
  (SIGKILL) the old listener ends 10-20 ms later and the new one listens 0.09-0.23 s
  after the death (0.5 s with both cores busy); a new publisher's audio arrives
  0.3-0.5 s after the death, its own start-up included (`ready_times`,
  `Session.ended_at`). The port is re-bound at once, also right after the server
  side closed a connection. While the listener restarts, and while a publisher is
  connected, another publisher gets "Connection refused" (ffmpeg closes the listening
  socket once it has accepted one connection).
* A TCP publisher whose ListenReceiver is stopped exits 0.05-0.10 s after `stop()`
  begins, status 1, after "av_interleaved_write_frame(): Broken pipe". A publisher
  whose input is idle (nothing written to its stdin) notices only at its next write.
* rtsp-server-perl accepts connections 0.2-0.6 s after spawn (Perl and Moose start-up;
  0.9 s with a second test run in parallel, 1.8 s with both cores busy);
  `RelayServer.start()` waits for both ports. Stopped with SIGTERM it exits at once,
  the kernel frees its TCP and UDP ports, and a UDP publisher exits ~50 ms later
  (status 1, "Broken pipe" on its RTSP connection).
* The relay keeps a mount until the publisher sends TEARDOWN. A publisher killed with
  SIGKILL never does, so the mount stays and the next ANNOUNCE to the same path is
  answered "403 Forbidden" until the relay restarts. See `RelayServer` for details.
* ffmpeg ends on a first SIGTERM only between packets: blocked on a network input
  that sends nothing, or on an idle stdin pipe, it keeps waiting. Two SIGTERMs end
  a network read; an idle stdin needs EOF (close it) or SIGKILL. Children here get
  SIGTERM, SIGTERM again, then SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import shutil
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, Self

import numpy as np

if TYPE_CHECKING:
    from types import TracebackType

    from numpy.typing import NDArray

HOST: Final = "127.0.0.1"
DEFAULT_RATE: Final = 24000
DEFAULT_PATH: Final = "/announce"

_READ_SIZE: Final = 65536
_LOG_LINES: Final = 400
_POLL_S: Final = 0.005
_TCP_LISTEN: Final = "0A"
_TCP_ESTABLISHED: Final = "01"
# Ports handed out below the ephemeral range, so that no outgoing connection of any
# process can take them between the choice and the bind; 20000-20999 is where
# rtsp-server-perl puts its RTP sockets by default.
_PORT_FLOOR: Final = 10000
_AVOID: Final = range(20000, 21000)
# ffmpeg's input options that make it start decoding without probing: the SDP already
# says what the stream is.
_LOW_DELAY_INPUT: Final = (
    "-fflags",
    "nobuffer",
    "-flags",
    "low_delay",
    "-probesize",
    "32",
    "-analyzeduration",
    "0",
)

_handed_out: set[int] = set()


# --------------------------------------------------------------------------- ports


def _proc_net(kind: str) -> list[tuple[int, str, int]]:
    """Return (local port, state, inode) for every socket in /proc/net/KIND{,6}."""
    entries: list[tuple[int, str, int]] = []
    for name in (kind, f"{kind}6"):
        try:
            text = Path("/proc/net", name).read_text(encoding="ascii")
        except OSError:
            continue
        for line in text.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 10:
                continue
            port = int(fields[1].rsplit(":", 1)[1], 16)
            entries.append((port, fields[3], int(fields[9])))
    return entries


def ports_in_use() -> set[int]:
    """Return every local TCP or UDP port that has a socket in any state."""
    return {port for kind in ("tcp", "udp") for port, _, _ in _proc_net(kind)}


def _candidate_range() -> range:
    try:
        low, high = (
            int(v)
            for v in Path("/proc/sys/net/ipv4/ip_local_port_range")
            .read_text(encoding="ascii")
            .split()
        )
    except (OSError, ValueError):
        low, high = 32768, 60999
    if low - _PORT_FLOOR >= 2000:
        return range(_PORT_FLOOR, low)
    return range(high + 1, 65536)


def free_port_block(count: int = 1) -> int:
    """Return the first of `count` consecutive ports free for both TCP and UDP.

    Needs no Python socket, so it works under the Home Assistant test plugin without
    the `socket_enabled` fixture: it picks at random below the kernel's ephemeral port
    range and checks /proc/net. Another process may still take the port before it is
    bound; the users in this module detect that and pick again.

    Args:
        count: how many consecutive ports must be free.

    Returns:
        The first port of the block; the block is not handed out again by this process.

    Raises:
        RuntimeError: if no free block was found.
    """
    candidates = _candidate_range()
    span = len(candidates) - count
    for _ in range(200):
        first = candidates.start + secrets.randbelow(span)
        block = range(first, first + count)
        if any(p in _AVOID or p in _handed_out for p in block):
            continue
        if ports_in_use().isdisjoint(block):
            if len(_handed_out) > 5000:
                _handed_out.clear()
            _handed_out.update(block)
            return first
    msg = f"no block of {count} free ports in {candidates}"
    raise RuntimeError(msg)


def free_port() -> int:
    """Return a free local port (TCP and UDP) without opening a Python socket.

    Returns:
        A port number below the ephemeral range, not handed out before by this process.
    """
    return free_port_block(1)


def _socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def tcp_port_state(port: int, pid: int | None = None) -> set[str]:
    """Return the TCP states (hex, as in /proc/net/tcp) of sockets on a local port.

    Args:
        port: the local port.
        pid: only count sockets owned by this process.

    Returns:
        A set such as {"0A"} (LISTEN) or {"01"} (ESTABLISHED); empty if none.
    """
    entries = [(state, inode) for p, state, inode in _proc_net("tcp") if p == port]
    if pid is not None:
        owned = _socket_inodes(pid)
        entries = [(state, inode) for state, inode in entries if inode in owned]
    return {state for state, _ in entries}


def is_listening(port: int, pid: int | None = None) -> bool:
    """Return whether a TCP socket listens on the local port (owned by `pid`).

    Args:
        port: the local port.
        pid: only count a listening socket owned by this process.
    """
    return _TCP_LISTEN in tcp_port_state(port, pid)


# --------------------------------------------------------------------------- children

_SETPRIV: Final = shutil.which("setpriv")


def dies_with_parent(argv: list[str]) -> list[str]:
    """Return argv wrapped so that the child gets SIGKILL if this process dies.

    Uses util-linux's `setpriv --pdeathsig`; unchanged where setpriv is missing.
    Tests should start their own long-running publishers this way too, so that a
    test run killed from outside leaves nothing running.

    Args:
        argv: the command.

    Returns:
        The command to execute (the child keeps its pid: setpriv execs it).
    """
    if _SETPRIV is None:
        return argv
    return [_SETPRIV, "--pdeathsig", "KILL", "--", *argv]


class _Child:
    """A child process whose log stream is drained into a bounded line buffer."""

    def __init__(
        self,
        name: str,
        proc: asyncio.subprocess.Process,
        log_stream: asyncio.StreamReader,
        on_line: Callable[[_Child, float, str], None] | None,
    ) -> None:
        self.name = name
        self.proc = proc
        self._log_is_stdout = log_stream is proc.stdout
        self.spawned_at = time.monotonic()
        self.lines: deque[tuple[float, str]] = deque(maxlen=_LOG_LINES)
        self._on_line = on_line
        self._drain_task = asyncio.create_task(
            self._drain(log_stream), name=f"{name}-log"
        )

    @classmethod
    async def spawn(
        cls,
        name: str,
        argv: list[str],
        *,
        pcm_out: bool,
        on_line: Callable[[_Child, float, str], None] | None = None,
    ) -> _Child:
        """Start argv; with pcm_out, stdout is data and stderr the log."""
        proc = await asyncio.create_subprocess_exec(
            *dies_with_parent(argv),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE if pcm_out else asyncio.subprocess.STDOUT,
        )
        stream = proc.stderr if pcm_out else proc.stdout
        assert stream is not None
        return cls(name, proc, stream, on_line)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    @property
    def stdout(self) -> asyncio.StreamReader:
        assert self.proc.stdout is not None
        return self.proc.stdout

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)

    async def _drain(self, stream: asyncio.StreamReader) -> None:
        pending = b""
        while chunk := await stream.read(4096):
            now = time.monotonic()
            # ffmpeg ends progress lines with CR; treat it like LF.
            parts = re.split(rb"[\r\n]", pending + chunk)
            pending = parts.pop()
            for raw in parts:
                if raw.strip():
                    self._add(now, raw.decode(errors="replace"))
        if pending.strip():
            self._add(time.monotonic(), pending.decode(errors="replace"))

    def _add(self, now: float, line: str) -> None:
        self.lines.append((now, line))
        if self._on_line is not None:
            self._on_line(self, now, line)

    async def reap(self, *, natural_exit_s: float = 0.0, grace_s: float = 3.0) -> int:
        """End the process: let it exit, then SIGTERM, then SIGKILL; always wait.

        Args:
            natural_exit_s: how long to wait for the process to exit on its own.
            grace_s: how long SIGTERM gets before SIGKILL.

        Returns:
            The exit status (negative: killed by that signal).
        """
        try:
            if natural_exit_s > 0 and self.proc.returncode is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.proc.wait(), natural_exit_s)
            # A first SIGTERM only makes ffmpeg stop between packets; blocked in a
            # read that gets nothing, it needs a second one, which aborts the read.
            for _ in range(2):
                if self.proc.returncode is not None:
                    break
                with contextlib.suppress(ProcessLookupError):
                    self.proc.terminate()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.proc.wait(), grace_s / 2)
        finally:
            if self.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                try:
                    await self.proc.wait()
                except asyncio.CancelledError:
                    # A cancelled reap must still not leave a zombie or a waiter behind.
                    await self.proc.wait()
                    raise
            await self._finish_drain()
            await self._discard_stdout()
        returncode = self.proc.returncode
        assert returncode is not None
        return returncode

    async def _discard_stdout(self) -> None:
        # Output nobody read keeps the pipe, and so the subprocess transport, open.
        if self._log_is_stdout or self.proc.stdout is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                while await self.proc.stdout.read(_READ_SIZE):
                    pass

    async def _finish_drain(self) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(self._drain_task), 2.0)
        except TimeoutError:
            # Only a grandchild holding the pipe open gets here.
            self._drain_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drain_task


# --------------------------------------------------------------------------- recording


class _Changes:
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


class _PcmRecorder:
    """Records s16le PCM from ffmpeg children: samples, arrivals, sessions."""

    _kind = "recorder"

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.arrivals: list[tuple[float, int]] = []
        self.sessions: list[Session] = []
        self.failure: BaseException | None = None
        self._chunks: list[bytes] = []
        self._total = 0
        self._changes = _Changes()
        self._child: _Child | None = None
        self._task: asyncio.Task[None] | None = None
        self._live: Session | None = None
        self.last_log: tuple[str, ...] = ()
        """What the last ended ffmpeg process printed (its final lines)."""
        # SIGTERM, a second SIGTERM, then SIGKILL, within this many seconds.
        self._stop_grace_s = 2.0

    def _pcm_output(self) -> list[str]:
        """ffmpeg's output options: s16le mono at `rate` on stdout."""
        return [
            "-vn",
            "-f",
            "s16le",
            "-ac",
            "1",
            "-ar",
            str(self.rate),
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

    def _connected_at(self, child: _Child) -> float | None:
        for when, line in child.lines:
            if line.startswith("Input #0"):
                return when
        return None

    async def _pump(self, child: _Child, idle_timeout: float | None) -> bool:
        """Record child's stdout until EOF or until it stays silent idle_timeout s.

        Returns:
            Whether the child went silent (False: its output ended).
        """
        session: Session | None = None
        carry = b""
        while True:
            try:
                async with asyncio.timeout(idle_timeout):
                    data = await child.stdout.read(_READ_SIZE)
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
        self, child: _Child, *, natural_exit_s: float, grace_s: float | None = None
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

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


# --------------------------------------------------------------------------- listener


class ListenReceiver(_PcmRecorder):
    """An RTSP server for one publisher at a time: ffmpeg in listen mode.

    A publisher ANNOUNCEs and RECORDs to `url`, over TCP (`-rtsp_transport tcp`) or
    UDP (both work). What it sends is decoded to s16le mono at `rate` and recorded.
    When the publisher goes away the ffmpeg listener exits; the receiver starts a new
    one on the same port at once (listening again 0.1-0.2 s after the publisher died;
    `ready_times` has every moment a listener started accepting), so to a publisher
    it looks like a server that stays up, except that it refuses connections during
    that restart. Each publisher that delivered audio is one `Session`.

    `stop()` takes the server away: the port closes and a connected publisher's next
    write fails (a streaming publisher exits 0.05-0.1 s after `stop()` began).

    Example:
        async with ListenReceiver() as receiver:
            ...publish to receiver.url...
            session = await receiver.wait_for_session(1, timeout=10)
            audio = receiver.session_samples(session)
    """

    _kind = "ListenReceiver"

    def __init__(
        self,
        port: int | None = None,
        *,
        path: str = DEFAULT_PATH,
        rate: int = DEFAULT_RATE,
        low_delay: bool = True,
        ffmpeg: str = "ffmpeg",
        ready_timeout: float = 10.0,
    ) -> None:
        """Configure the receiver; nothing runs before `start()`.

        Args:
            port: TCP port to listen on; None picks a free one (and picks again if
                another process takes it first).
            path: the RTSP path publishers must use, starting with "/".
            rate: sample rate of the decoded PCM.
            low_delay: add ffmpeg's no-probing input flags (start decoding at once).
            ffmpeg: the ffmpeg executable.
            ready_timeout: seconds a new listener may take to listen.
        """
        super().__init__(rate)
        if not path.startswith("/"):
            msg = f"path must start with '/': {path!r}"
            raise ValueError(msg)
        self._auto_port = port is None
        self._port = port if port is not None else free_port()
        self.path = path
        self._low_delay = low_delay
        self._ffmpeg = ffmpeg
        self._ready_timeout = ready_timeout
        self._ready_since: float | None = None
        self.ready_times: list[float] = []
        self.spawn_count = 0

    @property
    def port(self) -> int:
        """The TCP port publishers connect to."""
        return self._port

    @property
    def url(self) -> str:
        """The URL publishers ANNOUNCE to, e.g. rtsp://127.0.0.1:PORT/announce."""
        return f"rtsp://{HOST}:{self._port}{self.path}"

    @property
    def ready(self) -> bool:
        """Whether a listener is waiting for a publisher."""
        return self._ready_since is not None

    def _on_line(self, child: _Child, now: float, line: str) -> None:
        del now
        # ffmpeg prints this once a publisher is in; the port is then closed.
        if child is self._child and line.startswith("Input #0"):
            self._ready_since = None
            self._changes.notify()

    def _argv(self) -> list[str]:
        return [
            self._ffmpeg,
            "-hide_banner",
            "-nostdin",
            "-nostats",
            "-loglevel",
            "info",
            *(_LOW_DELAY_INPUT if self._low_delay else ()),
            "-rtsp_flags",
            "listen",
            "-i",
            self.url,
            *self._pcm_output(),
        ]

    async def _await_listening(self, child: _Child) -> bool:
        deadline = time.monotonic() + self._ready_timeout
        while time.monotonic() < deadline:
            if child.returncode is not None:
                return False
            states = tcp_port_state(self._port, child.pid)
            # A publisher may connect before the first poll sees LISTEN.
            if _TCP_LISTEN in states or _TCP_ESTABLISHED in states:
                return True
            await asyncio.sleep(_POLL_S)
        return False

    async def _launch(self, *, may_change_port: bool) -> _Child:
        """Start a listener and return it once it accepts connections."""
        log = ""
        for attempt in range(6):
            self.spawn_count += 1
            child = await _Child.spawn(
                f"rtsp-listener-{self._port}",
                self._argv(),
                pcm_out=True,
                on_line=self._on_line,
            )
            self._child = child
            try:
                ok = await self._await_listening(child)
            except BaseException:
                await child.reap()
                raise
            if ok:
                now = time.monotonic()
                if child.returncode is None and self._connected_at(child) is None:
                    self._ready_since = now
                self.ready_times.append(now)
                self._changes.notify()
                return child
            await child.reap()
            self._child = None
            log = child.text()
            if may_change_port and self._auto_port:
                self._port = free_port()
            else:
                await asyncio.sleep(0.05 * (attempt + 1))
        msg = f"ffmpeg listener on port {self._port} did not start:\n{log[-3000:]}"
        raise RuntimeError(msg)

    async def start(self) -> None:
        """Start listening; returns once the port accepts connections.

        Raises:
            RuntimeError: if already started or ffmpeg could not listen.
        """
        if self._task is not None:
            msg = "ListenReceiver already started"
            raise RuntimeError(msg)
        child = await self._launch(may_change_port=True)
        self._task = asyncio.create_task(
            self._supervise(child), name=f"rtsp-listener-{self._port}"
        )
        self._task.add_done_callback(self._on_task_done)

    async def wait_ready(self, timeout: float = 10.0) -> float:  # noqa: ASYNC109
        """Wait until a listener waits for a publisher (e.g. after one left).

        Returns:
            The monotonic time the current listener started listening.
        """
        await self._wait(
            lambda: self._ready_since is not None, timeout, "listener ready"
        )
        assert self._ready_since is not None
        return self._ready_since

    async def _supervise(self, first: _Child) -> None:
        child: _Child | None = first
        try:
            while child is not None:
                await self._pump(child, idle_timeout=None)
                # The publisher left; ffmpeg is finishing by itself.
                self._ready_since = None
                await self._end_run(child, natural_exit_s=2.0)
                child = None
                child = await self._launch(may_change_port=False)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - kept for the waiters to re-raise
            self.failure = err
        finally:
            self._ready_since = None
            if child is not None:
                await self._end_run(child, natural_exit_s=0.0)


# --------------------------------------------------------------------------- relay

_RELAY_WRAPPER: Final = (
    # Run the packaged script unchanged, with STDOUT unbuffered (its info log goes
    # there) and the RTP base port moved: the server resets its port counter to this
    # package variable whenever no stream is mounted, whatever --rtp_start_port says,
    # and two relays on the default 20000 would fight over the same UDP ports.
    "$| = 1; $RTSP::Server::RTP_START_PORT = shift @ARGV;"
    " my $script = shift @ARGV; do $script; die $@ if $@;"
)
# Every SETUP (publisher or reader) takes the next two ports, until no stream is
# mounted; a block this size leaves room for many reader restarts.
_RELAY_RTP_PORTS: Final = 128


class RelayServer:
    """rtsp-server-perl: publishers on `publish_url`, many readers on `read_url`.

    Publishers must use UDP (`-rtsp_transport udp`): the server rejects
    TCP-interleaved RECORD. It also serves readers over UDP only: a reader asking for
    TCP gets "400 Bad Request" at SETUP (use `Reader(..., transport="udp")`).

    Measured behaviour:

    * Start-up: both ports accept connections 0.2-0.6 s after spawn (up to 1.8 s on a
      busy machine); `start()` waits for that (polling /proc/net/tcp, no socket) and
      stores the time in `startup_s`.
    * A reader that asks before a publisher has mounted the path gets "404 Not Found"
      and ffmpeg exits at once.
    * When the publisher leaves, readers are not told: they stop getting packets and
      ffmpeg keeps waiting. A new publisher on the same path creates a new stream that
      the old readers are not attached to; a reader must start again (`Reader` does
      that with `auto_restart`).
    * A publisher that ends cleanly (SIGTERM, end of input) sends TEARDOWN and the
      path is unmounted. One killed with SIGKILL does not: the mount stays, and the
      next ANNOUNCE to the path gets "403 Forbidden" until the relay restarts
      (`restart()`). A publisher that restarts after a crash must therefore be tested
      against `ListenReceiver`, or with a relay restart in between.
    * Stopped with SIGTERM it dies at once and the kernel frees all its ports. A UDP
      publisher notices when its RTSP control connection closes and exits ~50 ms
      later with status 1.
    * Its RTP ports start at a block chosen here (the package's default, 20000, is
      shared by every relay on the machine and would collide between test runs).

    The log (log level 3) is parsed for "Mounted PATH"/"Unmounting PATH": `mounted`,
    `mount_events` and `wait_for_mount()` tell when a publisher is on.
    """

    def __init__(
        self,
        *,
        source_port: int | None = None,
        client_port: int | None = None,
        rtp_port: int | None = None,
        path: str = DEFAULT_PATH,
        executable: str = "rtsp-server-perl",
        ready_timeout: float = 15.0,
    ) -> None:
        """Configure the relay; nothing runs before `start()`.

        Args:
            source_port: TCP port for publishers; None picks a free one.
            client_port: TCP port for readers; None picks a free one.
            rtp_port: first of the UDP ports the relay binds for RTP (two per SETUP);
                None picks a free block of 128.
            path: the RTSP path of the stream, starting with "/".
            executable: the rtsp-server-perl script.
            ready_timeout: seconds start-up may take.
        """
        if not path.startswith("/"):
            msg = f"path must start with '/': {path!r}"
            raise ValueError(msg)
        self.path = path
        self._auto_ports = source_port is None and client_port is None
        self._source_port = source_port if source_port is not None else free_port()
        self._client_port = client_port if client_port is not None else free_port()
        self._rtp_port = (
            rtp_port if rtp_port is not None else free_port_block(_RELAY_RTP_PORTS)
        )
        self._executable = executable
        self._ready_timeout = ready_timeout
        self._child: _Child | None = None
        self._changes = _Changes()
        self.mounted: set[str] = set()
        self.mount_events: list[tuple[float, str, str]] = []
        self.startup_s: float | None = None

    @property
    def publish_url(self) -> str:
        """URL for publishers (UDP transport only)."""
        return f"rtsp://{HOST}:{self._source_port}{self.path}"

    @property
    def read_url(self) -> str:
        """URL for readers (UDP transport only)."""
        return f"rtsp://{HOST}:{self._client_port}{self.path}"

    @property
    def source_port(self) -> int:
        """TCP port publishers connect to."""
        return self._source_port

    @property
    def client_port(self) -> int:
        """TCP port readers connect to."""
        return self._client_port

    @property
    def pid(self) -> int | None:
        """Process id of the running relay."""
        return self._child.pid if self._child is not None else None

    def log(self) -> str:
        """Return the relay's recent log lines."""
        return self._child.text() if self._child is not None else ""

    def _on_line(self, child: _Child, now: float, line: str) -> None:
        del child
        if line.startswith("Mounted "):
            path = line.removeprefix("Mounted ").strip()
            self.mounted.add(path)
            self.mount_events.append((now, "mounted", path))
        elif line.startswith("Unmounting "):
            path = line.removeprefix("Unmounting ").strip()
            self.mounted.discard(path)
            self.mount_events.append((now, "unmounted", path))
        else:
            return
        self._changes.notify()

    def _argv(self) -> list[str]:
        script = shutil.which(self._executable) or self._executable
        return [
            "perl",
            "-MRTSP::Server",
            "-e",
            _RELAY_WRAPPER,
            str(self._rtp_port),
            script,
            "-s",
            str(self._source_port),
            "-c",
            str(self._client_port),
            "--source_listen_address",
            HOST,
            "--client_listen_address",
            HOST,
            "--rtp_start_port",
            str(self._rtp_port),
            "-l",
            "3",
        ]

    async def start(self) -> None:
        """Start the relay; returns once both ports accept connections.

        Raises:
            RuntimeError: if already running or the relay did not come up.
        """
        if self._child is not None:
            msg = "RelayServer already started"
            raise RuntimeError(msg)
        log = ""
        for _ in range(5):
            spawned = time.monotonic()
            child = await _Child.spawn(
                f"rtsp-relay-{self._source_port}",
                self._argv(),
                pcm_out=False,
                on_line=self._on_line,
            )
            try:
                ok = await self._await_ports(child)
            except BaseException:
                await child.reap()
                raise
            if ok:
                self._child = child
                self.startup_s = time.monotonic() - spawned
                return
            await child.reap()
            log = child.text()
            if not self._auto_ports:
                break
            self._source_port = free_port()
            self._client_port = free_port()
            self._rtp_port = free_port_block(_RELAY_RTP_PORTS)
        msg = f"rtsp-server-perl did not start:\n{log[-3000:]}"
        raise RuntimeError(msg)

    async def _await_ports(self, child: _Child) -> bool:
        deadline = time.monotonic() + self._ready_timeout
        while time.monotonic() < deadline:
            if child.returncode is not None:
                return False
            if is_listening(self._source_port, child.pid) and is_listening(
                self._client_port, child.pid
            ):
                return True
            await asyncio.sleep(_POLL_S)
        return False

    async def stop(self) -> None:
        """Stop the relay (SIGTERM, then SIGKILL) and wait for it."""
        child, self._child = self._child, None
        if child is not None:
            await child.reap(grace_s=3.0)
        self.mounted.clear()
        self._changes.notify()

    async def restart(self) -> None:
        """Stop and start again on the same ports (drops a stale mount)."""
        await self.stop()
        await self.start()

    async def wait_for_mount(
        self,
        path: str | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> None:
        """Wait until a publisher has mounted `path` (default: this relay's path)."""
        wanted = path or self.path
        try:
            async with asyncio.timeout(timeout):
                await self._changes.wait_for(lambda: wanted in self.mounted)
        except TimeoutError:
            msg = (
                f"no publisher mounted {wanted} within {timeout} s; log:\n{self.log()}"
            )
            raise TimeoutError(msg) from None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


# --------------------------------------------------------------------------- reader


class Reader(_PcmRecorder):
    """An ffmpeg RTSP client (PLAY) that records what it receives, like ListenReceiver.

    Each ffmpeg run that delivered audio is one `Session`. With `auto_restart` (the
    default) a run that ends, or that gets no audio for `stall_timeout` seconds, is
    replaced by a new one after `restart_delay`:

    * Publisher absent at start: rtsp-server-perl answers DESCRIBE with "404 Not
      Found" and ffmpeg exits at once; the reader retries (about 3 runs a second)
      until the publisher is there.
    * Publisher leaves and comes back: with rtsp-server-perl the running ffmpeg keeps
      waiting for packets that never come (it did not exit on its own in 10 minutes),
      so it needs restarting, and only the stall watchdog does that. Measured: audio
      again 2.2-2.3 s after a clean publisher restart with stall_timeout=1.5, 2.7 s
      with the default 2.0.

    Without `auto_restart` the reader ends with its first ffmpeg run; `last_log` then
    says why (e.g. "Server returned 404 Not Found").
    """

    _kind = "Reader"

    def __init__(
        self,
        url: str,
        *,
        transport: str = "udp",
        rate: int = DEFAULT_RATE,
        auto_restart: bool = True,
        restart_delay: float = 0.25,
        stall_timeout: float | None = 2.0,
        low_delay: bool = True,
        ffmpeg: str = "ffmpeg",
    ) -> None:
        """Configure the reader; nothing runs before `start()`.

        Args:
            url: the RTSP URL to PLAY.
            transport: "udp" or "tcp" (rtsp-server-perl serves UDP only).
            rate: sample rate of the decoded PCM.
            auto_restart: start ffmpeg again whenever it ends or stalls.
            restart_delay: seconds between runs.
            stall_timeout: seconds without audio after which a run is ended (also from
                its start); None waits forever.
            low_delay: add ffmpeg's no-probing input flags.
            ffmpeg: the ffmpeg executable.
        """
        super().__init__(rate)
        if transport not in {"udp", "tcp"}:
            msg = f"transport must be 'udp' or 'tcp': {transport!r}"
            raise ValueError(msg)
        self.url = url
        self.transport = transport
        self._auto_restart = auto_restart
        self._restart_delay = restart_delay
        self._stall_timeout = stall_timeout
        self._low_delay = low_delay
        self._ffmpeg = ffmpeg
        self.attempts = 0
        self.stalls = 0

    def _argv(self) -> list[str]:
        return [
            self._ffmpeg,
            "-hide_banner",
            "-nostdin",
            "-nostats",
            "-loglevel",
            "info",
            "-rtsp_transport",
            self.transport,
            *(_LOW_DELAY_INPUT if self._low_delay else ()),
            "-i",
            self.url,
            *self._pcm_output(),
        ]

    async def start(self) -> None:
        """Start reading in the background (returns at once; audio comes later).

        Raises:
            RuntimeError: if already started.
        """
        if self._task is not None:
            msg = "Reader already started"
            raise RuntimeError(msg)
        self._task = asyncio.create_task(
            self._supervise(), name=f"rtsp-reader-{self.url}"
        )
        self._task.add_done_callback(self._on_task_done)

    async def _supervise(self) -> None:
        child: _Child | None = None
        try:
            while True:
                self.attempts += 1
                child = await _Child.spawn("rtsp-reader", self._argv(), pcm_out=True)
                self._child = child
                stalled = await self._pump(child, self._stall_timeout)
                if stalled:
                    self.stalls += 1
                    # Blocked in a read that gets nothing: only the second SIGTERM
                    # or SIGKILL ends it, so do not wait long for the first.
                    await self._end_run(child, natural_exit_s=0.0, grace_s=0.5)
                else:
                    await self._end_run(child, natural_exit_s=2.0)
                child = None
                if not self._auto_restart:
                    break
                await asyncio.sleep(self._restart_delay)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - kept for the waiters to re-raise
            self.failure = err
        finally:
            if child is not None:
                await self._end_run(child, natural_exit_s=0.0)
            self._child = None
