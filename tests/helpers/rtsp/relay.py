"""`RelayServer`: rtsp-server-perl, publishers on one port and readers on another."""

from __future__ import annotations

import asyncio
import shutil
import time
from typing import Final

from tests.helpers.service import Service

from .children import POLL_S, Child
from .ports import HOST, free_port, free_port_block, is_listening
from .receiver import DEFAULT_PATH, Changes

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


class RelayServer(Service):
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
        # TCP ports for publishers and for readers.
        self.source_port = source_port if source_port is not None else free_port()
        self.client_port = client_port if client_port is not None else free_port()
        self._rtp_port = (
            rtp_port if rtp_port is not None else free_port_block(_RELAY_RTP_PORTS)
        )
        self._executable = executable
        self._ready_timeout = ready_timeout
        self._child: Child | None = None
        self._changes = Changes()
        self.mounted: set[str] = set()
        self.mount_events: list[tuple[float, str, str]] = []
        self.startup_s: float | None = None

    @property
    def publish_url(self) -> str:
        """URL for publishers (UDP transport only)."""
        return f"rtsp://{HOST}:{self.source_port}{self.path}"

    @property
    def read_url(self) -> str:
        """URL for readers (UDP transport only)."""
        return f"rtsp://{HOST}:{self.client_port}{self.path}"

    @property
    def pid(self) -> int | None:
        """Process id of the running relay."""
        return self._child.pid if self._child is not None else None

    def log(self) -> str:
        """Return the relay's recent log lines."""
        return self._child.text() if self._child is not None else ""

    def _on_line(self, child: Child, now: float, line: str) -> None:
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
            str(self.source_port),
            "-c",
            str(self.client_port),
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
            child = await Child.spawn(
                f"rtsp-relay-{self.source_port}",
                self._argv(),
                pcm_out=False,
                on_line=self._on_line,
            )
            ok = await child.check(self._await_ports)
            if ok:
                self._child = child
                self.startup_s = time.monotonic() - spawned
                return
            await child.reap()
            log = child.text()
            if not self._auto_ports:
                break
            self.source_port = free_port()
            self.client_port = free_port()
            self._rtp_port = free_port_block(_RELAY_RTP_PORTS)
        msg = f"rtsp-server-perl did not start:\n{log[-3000:]}"
        raise RuntimeError(msg)

    async def _await_ports(self, child: Child) -> bool:
        deadline = time.monotonic() + self._ready_timeout
        while time.monotonic() < deadline:
            if child.returncode is not None:
                return False
            if is_listening(self.source_port, child.pid) and is_listening(
                self.client_port, child.pid
            ):
                return True
            await asyncio.sleep(POLL_S)
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
