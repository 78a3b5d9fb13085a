"""A bounded LRU cache of rendered PCM, measured in bytes.

Repeated announcements (a doorbell, "number 42") then start from memory, and
the memory it may take is fixed however many different texts are spoken.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

DEFAULT_MAX_BYTES = 32 * 1024 * 1024
# One entry may take a quarter of the cache at most: a huge sound (a "chime"
# of an hour) is decoded and played, never kept, and never evicts the rest.
DEFAULT_MAX_ENTRY_BYTES = DEFAULT_MAX_BYTES // 4


class PcmCache:
    """Least recently used PCM, evicted once the total exceeds `max_bytes`."""

    def __init__(
        self,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES,
    ) -> None:
        """Create an empty cache; no entry is larger than `max_entry_bytes`."""
        self._max_bytes = max_bytes
        self._max_entry_bytes = min(max_entry_bytes, max_bytes)
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    @property
    def max_bytes(self) -> int:
        """Bytes the cache holds at most."""
        return self._max_bytes

    @property
    def max_entry_bytes(self) -> int:
        """Bytes one entry may have; larger ones are not kept."""
        return self._max_entry_bytes

    @property
    def size_bytes(self) -> int:
        """Bytes held."""
        return self._bytes

    def __len__(self) -> int:
        """Entries held."""
        return len(self._items)

    def get(self, key: Hashable) -> bytes | None:
        """Return the PCM for `key`, marking it recently used."""
        data = self._items.get(key)
        if data is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return data

    def put(self, key: Hashable, data: bytes) -> None:
        """Store PCM; anything larger than `max_entry_bytes` is not kept."""
        if len(data) > self._max_entry_bytes:
            return
        previous = self._items.pop(key, None)
        if previous is not None:
            self._bytes -= len(previous)
        self._items[key] = data
        self._bytes += len(data)
        while self._bytes > self._max_bytes:
            _, evicted = self._items.popitem(last=False)
            self._bytes -= len(evicted)

    def clear(self) -> None:
        """Drop everything."""
        self._items.clear()
        self._bytes = 0
