"""Availability: the entities follow the stream, outages are logged once each way.

The quality scale's entity-unavailable and log-when-unavailable rules, against a
real RTSP server (ffmpeg's listener) that goes away for several retries of the
publisher and comes back on the same port.
"""

from __future__ import annotations

import logging
from unittest.mock import patch

import pytest
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant

from custom_components.rtsp_announcer.audio.publisher import Publisher, Supervision

from .common import (
    add_entry,
    ffmpeg_children,
    state_of,
    wait_available,
    wait_for_state,
    wait_unavailable,
)
from .helpers.rtsp import ListenReceiver
from .helpers.waiting import until

STREAM = "media_player.hall"
NOTIFY = "notify.hall_speaker"
VOICE = "tts.hall_local_voice"
RATE = 24000
PACKAGE = "custom_components.rtsp_announcer"
FAST = Supervision(backoff_initial=0.2, backoff_max=0.4)
RETRIES = 4


def ours(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    """The integration's log messages at exactly `level`."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith(PACKAGE) and record.levelno == level
    ]


async def test_an_outage_makes_the_stream_unavailable_and_is_logged_once_each_way(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=PACKAGE)
    async with ListenReceiver(rate=RATE) as receiver:
        entry = add_entry(hass, receiver.url)
        with patch(f"{PACKAGE}.SUPERVISION", FAST):
            assert await hass.config_entries.async_setup(entry.entry_id)
        await wait_available(hass, STREAM)
        await wait_available(hass, NOTIFY)
        assert state_of(hass, VOICE).state != STATE_UNAVAILABLE
        publisher: Publisher = entry.runtime_data.stream.publisher
        port = receiver.port
        caplog.clear()
    # The server is gone: everything that speaks into the stream goes with it.
    await wait_unavailable(hass, STREAM)
    await wait_unavailable(hass, NOTIFY)
    # The local voice needs no stream: other speakers and Assist keep it.
    assert state_of(hass, VOICE).state != STATE_UNAVAILABLE
    retried = publisher.restarts
    await until(lambda: publisher.restarts >= retried + RETRIES, 15, "retries")
    assert state_of(hass, STREAM).state == STATE_UNAVAILABLE

    async with ListenReceiver(port, rate=RATE):
        await wait_available(hass, STREAM, timeout=20)
        await wait_for_state(hass, NOTIFY, lambda s: s.state != STATE_UNAVAILABLE)
        assert state_of(hass, VOICE).state != STATE_UNAVAILABLE

        info = ours(caplog, logging.INFO)
        assert len(info) == 2, info
        down, back = info
        assert "is down, the stream is unavailable" in down
        assert "publishing again, the stream is available" in back
        assert ours(caplog, logging.WARNING) == []
        assert ours(caplog, logging.ERROR) == []
        # Every retry in between is told at debug level only.
        still_down = [m for m in ours(caplog, logging.DEBUG) if "still down" in m]
        assert len(still_down) >= RETRIES - 1
        assert await hass.config_entries.async_unload(entry.entry_id)
    assert ffmpeg_children() == []
