"""Child processes: argv that dies with the test process, logs drained, reaping.

Every child is reaped on cancellation and on errors (SIGTERM, a second SIGTERM, a
grace period, then SIGKILL). Where `setpriv` exists (util-linux), children also get
SIGKILL when the test process dies, so a killed test run leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final

READ_SIZE: Final = 65536
_LOG_LINES: Final = 400
# How often start-up polls /proc for a listening socket.
POLL_S: Final = 0.005
_SETPRIV: Final = shutil.which("setpriv")


def s16le_mono(rate: int) -> list[str]:
    """ffmpeg's options for raw PCM as the tests hand it over: s16le, mono, `rate`."""
    return ["-f", "s16le", "-ar", str(rate), "-ac", "1"]


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


async def end_process(
    proc: asyncio.subprocess.Process, *, terms: int = 2, term_wait_s: float = 1.5
) -> None:
    """End the process: SIGTERM up to `terms` times, then SIGKILL; always wait.

    A first SIGTERM only makes ffmpeg stop between packets; blocked in a read that
    gets nothing, it needs a second one, which aborts the read.

    Args:
        proc: the process.
        terms: how many SIGTERMs it gets.
        term_wait_s: how long each SIGTERM gets before the next signal.
    """
    try:
        for _ in range(terms):
            if proc.returncode is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), term_wait_s)
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            try:
                await proc.wait()
            except asyncio.CancelledError:
                # A cancelled reap must still not leave a zombie or a waiter behind.
                await proc.wait()
                raise


class Child:
    """A child process whose log stream is drained into a bounded line buffer."""

    def __init__(
        self,
        name: str,
        proc: asyncio.subprocess.Process,
        log_stream: asyncio.StreamReader,
        on_line: Callable[[Child, float, str], None] | None,
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
        on_line: Callable[[Child, float, str], None] | None = None,
    ) -> Child:
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

    async def check(self, ready: Callable[[Child], Awaitable[bool]]) -> bool:
        """Return `await ready(self)`; reap the process if that wait is interrupted."""
        try:
            return await ready(self)
        except BaseException:
            await self.reap()
            raise

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
            await end_process(self.proc, term_wait_s=grace_s / 2)
        finally:
            # Interrupted before the signals (cancelled, say): kill it at once.
            await end_process(self.proc, terms=0)
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
                while await self.proc.stdout.read(READ_SIZE):
                    pass

    async def _finish_drain(self) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(self._drain_task), 2.0)
        except TimeoutError:
            # Only a grandchild holding the pipe open gets here.
            self._drain_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drain_task
