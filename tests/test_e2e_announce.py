"""The announce action end to end: speech heard at a real RTSP receiver."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest
from homeassistant.core import Event, HomeAssistant
from numpy.typing import NDArray

from custom_components.rtsp_announcer.const import DOMAIN, EVENT_ANNOUNCEMENT

from .common import add_entry, ffmpeg_children, wait_available
from .helpers.analysis import rms_windows
from .helpers.rtsp import ListenReceiver

ENTITY = "media_player.hall"
RATE = 24000
WINDOW_MS = 20
SPEECH_DBFS = -45.0


def speech_spans(samples: NDArray[np.int16], rate: int = RATE) -> list[tuple[float, float]]:
    """(start, end) seconds of stretches louder than the silence padding.

    Gaps shorter than 300 ms (pauses between words) are bridged.
    """
    levels = rms_windows(samples, rate, WINDOW_MS)
    loud = levels > SPEECH_DBFS
    spans: list[tuple[float, float]] = []
    start: int | None = None
    quiet = 0
    for index, on in enumerate([*loud, False]):
        if on:
            if start is None:
                start = index
            quiet = 0
        elif start is not None:
            quiet += 1
            if quiet * WINDOW_MS >= 300 or index == len(loud):
                spans.append(
                    (start * WINDOW_MS / 1000, (index - quiet + 1) * WINDOW_MS / 1000)
                )
                start = None
                quiet = 0
    return spans


async def announce(hass: HomeAssistant, **data: Any) -> dict[str, Any]:
    data.setdefault("entity_id", ENTITY)
    data.setdefault("preannounce", False)
    response = await hass.services.async_call(
        DOMAIN, "announce", data, blocking=True, return_response=True
    )
    assert response is not None
    return dict(response)


@pytest.fixture
async def receiver() -> Any:
    async with ListenReceiver(rate=RATE) as receiver:
        yield receiver


@pytest.fixture
async def stream(hass: HomeAssistant, receiver: ListenReceiver) -> Any:
    entry = add_entry(hass, receiver.url)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_available(hass, ENTITY)
    await receiver.wait_for_session(1, timeout=10, min_samples=RATE // 2)
    yield entry
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert ffmpeg_children() == []


async def test_english_message_is_heard(
    hass: HomeAssistant, receiver: ListenReceiver, stream: Any
) -> None:
    events: list[Event] = []
    hass.bus.async_listen(EVENT_ANNOUNCEMENT, events.append)
    await asyncio.sleep(0.5)
    before = receiver.total_samples
    called = time.monotonic()
    response = await announce(
        hass, message="Turn on the kitchen lights.", language="en"
    )
    result = response[ENTITY]
    assert result["state"] == "finished"
    assert 1.0 < result["duration"] < 2.5
    assert 0 <= result["delay_ms"] < 200
    await asyncio.sleep(1.0)
    heard = receiver.samples()[before:]
    spans = speech_spans(heard)
    assert len(spans) == 1, spans
    start, end = spans[0]
    # Silence before and after the words.
    assert start > 0.05
    assert len(heard) / RATE - end > 0.3
    assert end - start == pytest.approx(result["duration"], abs=0.35)
    assert time.monotonic() - called < 10
    await hass.async_block_till_done()
    assert [e.data["type"] for e in events] == ["started", "finished"]
    assert events[0].data["entity_id"] == ENTITY
    assert events[0].data["text"] == "Turn on the kitchen lights."
    assert events[0].data["announcement_id"] == result["announcement_id"]
