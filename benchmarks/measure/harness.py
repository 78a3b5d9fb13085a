"""The frame a benchmark runs in: Home Assistant in-process, signals, clean-up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import psutil
from homeassistant import loader
from homeassistant.core import HomeAssistant
from homeassistant.helpers import frame
from pytest_homeassistant_custom_component.common import async_test_home_assistant

from . import FFMPEG


@contextlib.asynccontextmanager
async def home_assistant() -> AsyncIterator[HomeAssistant]:
    with tempfile.TemporaryDirectory(prefix="bench-announce-ha-") as config_dir:
        async with async_test_home_assistant(config_dir=config_dir) as hass:
            frame.async_setup(hass)
            # What the test plugin's enable_custom_integrations does: without
            # it only built-in integrations load.
            hass.data.pop(loader.DATA_CUSTOM_COMPONENTS)
            try:
                yield hass
            finally:
                await hass.async_stop(force=True)


async def terminate(process: asyncio.subprocess.Process, grace_s: float) -> None:
    """SIGTERM, then SIGKILL if it is still there after `grace_s`; always reaped."""
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), grace_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


def cancel_on_sigterm() -> None:
    """Let SIGTERM unwind like Ctrl-C, so that clean-up code runs."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


def ffmpeg_version() -> str:
    try:
        out = subprocess.run(
            [FFMPEG, "-version"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    words = out.split()
    return words[2] if len(words) > 2 else "unknown"


def leftovers() -> str:
    children = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.status() != psutil.STATUS_ZOMBIE:
                children.append(f"{child.name()}[{child.pid}]")
    threads = [
        t.name for t in threading.enumerate() if t is not threading.main_thread()
    ]
    temporary = sorted(
        path.name for path in Path(tempfile.gettempdir()).glob("bench-announce-*")
    )
    return (
        (
            f"child processes alive: {len(children)} {children or ''}; "
            f"other threads alive: {len(threads)} {threads or ''}; "
            f"temporary directories left: {len(temporary)} {temporary or ''}"
        )
        .replace(" ;", ";")
        .rstrip()
    )


def machine() -> str:
    """Cores, load, ffmpeg and Python: the line every report starts with."""
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return (
        f"{os.cpu_count()} cores, load {load}; ffmpeg {ffmpeg_version()};"
        f" Python {sys.version.split()[0]}"
    )


def check_clocks() -> None:
    """Call times come from the loop, arrival times from time.monotonic()."""
    loop = asyncio.get_running_loop()
    assert abs(loop.time() - time.monotonic()) < 0.01


def run_main[T](measure: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run `measure` with quiet logging; report what is left over, also if stopped."""
    logging.basicConfig(level=logging.WARNING)
    # Start-up chatter of an in-process Home Assistant, not about the benchmark.
    for name in ("homeassistant.loader", "aiohttp_fast_zlib"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        result = asyncio.run(measure())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(f"interrupted; clean-up: {leftovers()}", file=sys.stderr)
        sys.exit(1)
    # After asyncio.run: it joins the loop's executor threads on its way out.
    print()
    print(f"clean-up: {leftovers()}")
    return result
