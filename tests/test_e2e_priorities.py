"""Interrupt and resume, play_media's announce, repeat and the default gain, heard.

Tones instead of speech: each announcement has its own frequency, so the
order, the lengths and the gaps can be measured at a real RTSP reader. The
stream's default gain is -12 dB throughout.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from homeassistant.core import HomeAssistant
from numpy.typing import NDArray
from pytest_homeassistant_custom_component.common import MockConfigEntry

from .common import (
    announce,
    ffmpeg_children,
    heard_after,
    make_tone,
    start_stream,
    wait_for_state,
)
from .helpers.analysis import rms_dbfs, tone_segments
from .helpers.rtsp import ListenReceiver
from .test_e2e_announce import RATE

ENTITY = "media_player.hall"
# Fine enough for gaps measured to ±50 ms; 100 Hz bins still part the tones.
WINDOW_MS = 10
LOW, HIGH = 500, 1000


def segments(heard: NDArray[np.int16], freq: int) -> list[tuple[float, float]]:
    return tone_segments(
        heard, RATE, freq, window_ms=WINDOW_MS, threshold_db=-45, max_gap_ms=30
    )


@pytest.fixture
async def receiver() -> AsyncGenerator[ListenReceiver]:
    async with ListenReceiver(rate=RATE) as receiver:
        yield receiver


@pytest.fixture
async def stream(
    hass: HomeAssistant, receiver: ListenReceiver
) -> AsyncGenerator[MockConfigEntry]:
    entry = await start_stream(
        hass, receiver, "Hall", min_samples=RATE // 2, options={"gain_db": -12.0}
    )
    yield entry
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert ffmpeg_children() == []


@pytest.fixture
def tones(hass: HomeAssistant, tmp_path: Path) -> dict[str, str]:
    hass.config.allowlist_external_dirs.add(str(tmp_path))
    return {
        "long": str(make_tone(tmp_path / "long.flac", freq=LOW, seconds=1.5)),
        "short": str(make_tone(tmp_path / "short.flac", freq=HIGH, seconds=0.5)),
    }


def assert_cut_and_heard_again_whole(
    low: list[tuple[float, float]], high: list[tuple[float, float]]
) -> None:
    """The long tone began, the short one cut in, then the long one whole."""
    assert len(low) == 2, low
    assert len(high) == 1, high
    assert low[0][1] <= high[0][0] + 0.03
    assert high[0][1] <= low[1][0] + 0.03
    assert 0.2 < low[0][1] - low[0][0] < 1.3
    assert high[0][1] - high[0][0] == pytest.approx(0.5, abs=0.06)
    assert low[1][1] - low[1][0] == pytest.approx(1.5, abs=0.06)


class CutIn:
    """The long tone, with a call that cuts in 0.4 s into it; both are heard."""

    def __init__(
        self, hass: HomeAssistant, receiver: ListenReceiver, tones: dict[str, str]
    ) -> None:
        self._hass = hass
        self._receiver = receiver
        self._tones = tones

    async def __call__[T](
        self, interrupt: Callable[[str], Awaitable[T]]
    ) -> tuple[dict[str, Any], T]:
        """The long tone's result and `interrupt`'s, given the short tone to play.

        The long tone must be heard cut, the short one whole, then the long one
        again from its start.
        """
        before = self._receiver.total_samples
        first = asyncio.create_task(announce(self._hass, media_id=self._tones["long"]))
        await wait_for_state(self._hass, ENTITY, lambda s: s.state == "playing", 5)
        await asyncio.sleep(0.4)
        urgent = await interrupt(self._tones["short"])
        result = (await asyncio.wait_for(first, 10))[ENTITY]
        heard = await heard_after(self._receiver, before)
        assert_cut_and_heard_again_whole(segments(heard, LOW), segments(heard, HIGH))
        return result, urgent


@pytest.fixture
def cut_in(
    hass: HomeAssistant, receiver: ListenReceiver, tones: dict[str, str]
) -> CutIn:
    return CutIn(hass, receiver, tones)


@pytest.mark.usefixtures("stream")
async def test_interrupt_and_resume_heard_in_order(
    hass: HomeAssistant, cut_in: CutIn, events: list[dict[str, Any]]
) -> None:
    async def high(short: str) -> dict[str, Any]:
        return dict((await announce(hass, media_id=short, priority="high"))[ENTITY])

    result, urgent = await cut_in(high)
    assert result["state"] == "finished"
    assert result["interrupted_by"] == [urgent["announcement_id"]]
    assert result["resumed"] == 1
    assert urgent["interrupted"] == [result["announcement_id"]]
    await hass.async_block_till_done()
    ids = {result["announcement_id"]: "A", urgent["announcement_id"]: "B"}
    assert [(ids[e["announcement_id"]], e["type"]) for e in events] == [
        ("A", "started"),
        ("A", "suspended"),
        ("B", "started"),
        ("B", "finished"),
        ("A", "resumed"),
        ("A", "finished"),
    ]


@pytest.mark.usefixtures("stream")
async def test_play_media_announce_plays_over_and_what_played_resumes(
    hass: HomeAssistant, cut_in: CutIn
) -> None:
    async def play_media(short: str) -> None:
        await hass.services.async_call(
            "media_player",
            "play_media",
            {
                "entity_id": ENTITY,
                "media_content_id": short,
                "media_content_type": "music",
                "announce": True,
            },
            blocking=True,
        )

    result, _ = await cut_in(play_media)
    assert (result["state"], result["resumed"]) == ("finished", 1)


@pytest.mark.usefixtures("stream")
async def test_repeat_with_gap_and_the_default_gain(
    hass: HomeAssistant,
    receiver: ListenReceiver,
    tones: dict[str, str],
    events: list[dict[str, Any]],
) -> None:
    before = receiver.total_samples
    repeated = await announce(hass, media_id=tones["short"], repeat=3, repeat_gap=0.4)
    heard = await heard_after(receiver, before)
    spans = segments(heard, HIGH)
    assert len(spans) == 3, spans
    gaps = [spans[i + 1][0] - spans[i][1] for i in range(2)]
    assert gaps == pytest.approx([0.4, 0.4], abs=0.05), f"gaps heard: {gaps}"
    assert repeated[ENTITY]["duration"] == pytest.approx(3 * 0.5 + 2 * 0.4, abs=0.05)
    await hass.async_block_till_done()
    assert [e["type"] for e in events] == ["started", "finished"]

    # The same tone once at 0 dB: the stream's -12 dB made the others quieter.
    before = receiver.total_samples
    await announce(hass, media_id=tones["short"], gain_db=0)
    unity = await heard_after(receiver, before)
    (loud,) = segments(unity, HIGH)
    quiet = spans[0]
    level_default = rms_dbfs(
        heard[int((quiet[0] + 0.05) * RATE) : int((quiet[1] - 0.05) * RATE)]
    )
    level_unity = rms_dbfs(
        unity[int((loud[0] + 0.05) * RATE) : int((loud[1] - 0.05) * RATE)]
    )
    assert level_unity - level_default == pytest.approx(12, abs=1.0), (
        f"levels heard: {level_unity:.2f} dBFS at 0 dB, {level_default:.2f} at -12 dB"
    )
