"""Waiting for a condition instead of sleeping for a guessed time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

POLL_S: Final = 0.01


async def until(
    predicate: Callable[[], bool],
    timeout: float = 10.0,  # noqa: ASYNC109
    what: str = "condition",
) -> float:
    """Poll `predicate()` until it holds; return the seconds it took.

    Raises:
        TimeoutError: it did not hold within `timeout` seconds.
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        async with asyncio.timeout(timeout):
            while not predicate():  # noqa: ASYNC110 - a predicate, no event to await
                await asyncio.sleep(POLL_S)
    except TimeoutError:
        msg = f"{what} not within {timeout} s"
        raise TimeoutError(msg) from None
    return loop.time() - start
