"""Ending the background tasks the audio core and its users start."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel `task` and return once it has finished; None is nothing to end.

    Whatever the task was doing is over when this returns: what it holds (a
    process, a file, a connection) is released by its own `finally`.
    """
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
