"""`ListenReceiver`: an RTSP server for one publisher at a time (ffmpeg listening)."""

from __future__ import annotations

import asyncio
import time

from .children import POLL_S, Child
from .ports import HOST, TCP_ESTABLISHED, TCP_LISTEN, free_port, tcp_port_state
from .receiver import DEFAULT_PATH, DEFAULT_RATE, PcmRecorder


class ListenReceiver(PcmRecorder):
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
        # The TCP port publishers connect to.
        self.port = port if port is not None else free_port()
        self.path = path
        self._low_delay = low_delay
        self._ffmpeg = ffmpeg
        self._ready_timeout = ready_timeout
        self._ready_since: float | None = None
        self.ready_times: list[float] = []
        self.spawn_count = 0

    @property
    def url(self) -> str:
        """The URL publishers ANNOUNCE to, e.g. rtsp://127.0.0.1:PORT/announce."""
        return f"rtsp://{HOST}:{self.port}{self.path}"

    @property
    def ready(self) -> bool:
        """Whether a listener is waiting for a publisher."""
        return self._ready_since is not None

    def _on_line(self, child: Child, now: float, line: str) -> None:
        del now
        # ffmpeg prints this once a publisher is in; the port is then closed.
        if child is self._child and line.startswith("Input #0"):
            self._ready_since = None
            self._changes.notify()

    def _argv(self) -> list[str]:
        return self._ffmpeg_argv(
            self._ffmpeg, self._low_delay, "-rtsp_flags", "listen", "-i", self.url
        )

    async def _await_listening(self, child: Child) -> bool:
        deadline = time.monotonic() + self._ready_timeout
        while time.monotonic() < deadline:
            if child.returncode is not None:
                return False
            states = tcp_port_state(self.port, child.pid)
            # A publisher may connect before the first poll sees LISTEN.
            if TCP_LISTEN in states or TCP_ESTABLISHED in states:
                return True
            await asyncio.sleep(POLL_S)
        return False

    async def _launch(self, *, may_change_port: bool) -> Child:
        """Start a listener and return it once it accepts connections."""
        log = ""
        for attempt in range(6):
            self.spawn_count += 1
            child = await Child.spawn(
                f"rtsp-listener-{self.port}",
                self._argv(),
                pcm_out=True,
                on_line=self._on_line,
            )
            self._child = child
            ok = await child.check(self._await_listening)
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
                self.port = free_port()
            else:
                await asyncio.sleep(0.05 * (attempt + 1))
        msg = f"ffmpeg listener on port {self.port} did not start:\n{log[-3000:]}"
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
            self._supervise(child), name=f"rtsp-listener-{self.port}"
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

    async def _supervise(self, first: Child) -> None:
        child: Child | None = first
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
