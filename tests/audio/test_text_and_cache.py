"""Text clean-up for speech, and the PCM cache."""

from __future__ import annotations

import pytest

from custom_components.rtsp_announcer.audio.cache import PcmCache
from custom_components.rtsp_announcer.audio.text import clean_text, normalize_text


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("Wind 42 km/h", "en", "Wind 42 kilometres per hour"),
        ("It is 21.5 °C", "en-US", "It is 21.5 degrees Celsius"),
        ("1 km to go", "en_GB", "1 kilometre to go"),
        ("3 kg and 5min", "en", "3 kilograms and 5 minutes"),
        ("the kms and 50 %", "en", "the kms and 50 %"),
        ("Number 42, counter 3", "en", "Number 42, counter 3"),
        ("温度21.5°C，湿度50%", "zh", "温度21.5摄氏度，湿度百分之50"),
        ("风速12km/h", "zh-CN", "风速12公里每小时"),
        ("5 km", "de", "5 km"),
        ("5 km", None, "5 kilometres"),
    ],
)
def test_units_are_spelled_out(text: str, language: str | None, expected: str) -> None:
    assert normalize_text(text, language) == expected


def test_clean_text() -> None:
    assert clean_text("  Door\x00open\x07\ud800 now \n") == "Door open   now"
    assert clean_text("line one\nline\ttwo") == "line one\nline\ttwo"
    assert clean_text("\x1b[31m") == "[31m"


def test_cache_evicts_least_recently_used_by_bytes() -> None:
    cache = PcmCache(max_bytes=10)
    cache.put("a", b"1234")
    cache.put("b", b"5678")
    assert cache.get("a") == b"1234"
    cache.put("c", b"9999")
    # "b" was the least recently used.
    assert cache.get("b") is None
    assert cache.get("a") == b"1234"
    assert cache.get("c") == b"9999"
    assert cache.size_bytes == 8
    assert len(cache) == 2
    assert (cache.hits, cache.misses) == (3, 1)


def test_cache_replaces_and_refuses_oversized() -> None:
    cache = PcmCache(max_bytes=10)
    cache.put("a", b"12")
    cache.put("a", b"123456")
    assert cache.size_bytes == 6
    cache.put("huge", b"x" * 11)
    assert cache.get("huge") is None
    assert cache.size_bytes == 6
    cache.clear()
    assert cache.size_bytes == 0
    assert len(cache) == 0


def test_one_huge_entry_cannot_evict_everything() -> None:
    cache = PcmCache(max_bytes=100, max_entry_bytes=25)
    for key in "abc":
        cache.put(key, b"x" * 20)
    # A "chime" of most of the cache is not kept; what was there stays.
    cache.put("huge", b"y" * 90)
    assert cache.get("huge") is None
    assert all(cache.get(key) is not None for key in "abc")
    assert cache.size_bytes == 60
    assert cache.max_entry_bytes == 25
    # The default keeps an entry to a quarter of the cache at most.
    assert PcmCache().max_entry_bytes * 4 <= PcmCache().max_bytes
