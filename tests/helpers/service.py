"""A helper that runs between `start()` and `stop()`, also as `async with`."""

from __future__ import annotations

from typing import Self


class Service:
    """`async with` starts it and stops it again, whatever happened in between."""

    async def start(self) -> None:
        """Start; returns once the service is usable."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Stop and end every task and process of the service."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
