"""`Reader`: an ffmpeg RTSP client (PLAY) that records what it receives."""

from __future__ import annotations

import asyncio

from .children import Child
from .receiver import DEFAULT_RATE, PcmRecorder


class Reader(PcmRecorder):
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
        return self._ffmpeg_argv(
            self._ffmpeg,
            self._low_delay,
            "-rtsp_transport",
            self.transport,
            "-i",
            self.url,
        )

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
        child: Child | None = None
        try:
            while True:
                self.attempts += 1
                child = await Child.spawn("rtsp-reader", self._argv(), pcm_out=True)
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
