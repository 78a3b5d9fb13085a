"""The media player's volume and mute survive a restart of Home Assistant.

Home Assistant's restore-state store is dumped and loaded again the way a
restart does it (through its JSON storage); the stream that comes back is real
and is measured at a real RTSP receiver.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from homeassistant.components.media_player.const import DOMAIN as MP_DOMAIN
from homeassistant.components.media_player.const import SERVICE_PLAY_MEDIA
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_VOLUME_MUTE,
    SERVICE_VOLUME_SET,
    STATE_PLAYING,
)
from homeassistant.core import HomeAssistant, State
from pytest_homeassistant_custom_component.common import (
    async_mock_restore_state_shutdown_restart,
    mock_restore_cache_with_extra_data,
)

from .common import (
    DEAD_URL,
    add_entry,
    ffmpeg_children,
    make_tone,
    state_of,
    wait_available,
    wait_for_state,
)
from .helpers.analysis import rms_dbfs
from .helpers.rtsp import ListenReceiver

ENTITY = "media_player.hall"
RATE = 24000
# ffmpeg's lavfi sine: amplitude 1/8 of full scale.
TONE_DBFS = 20 * np.log10(0.125 / np.sqrt(2))


@pytest.mark.parametrize(
    ("stored", "volume", "muted"),
    [
        ({"volume_level": 0.3, "is_volume_muted": True}, 0.3, True),
        ({"volume_level": 1, "is_volume_muted": False}, 1.0, False),
        # Nonsense in the store is left alone: the defaults apply.
        ({"volume_level": 7, "is_volume_muted": "yes"}, 1.0, False),
        ({"volume_level": True, "is_volume_muted": None}, 1.0, False),
        ({}, 1.0, False),
    ],
)
async def test_stored_volume_is_taken_back(
    hass: HomeAssistant, stored: dict[str, Any], volume: float, muted: bool
) -> None:
    mock_restore_cache_with_extra_data(hass, [(State(ENTITY, "idle"), stored)])
    # No server needed: the volume is the stream's, published or not.
    entry = add_entry(hass, DEAD_URL)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    stream = entry.runtime_data.stream
    assert (stream.volume, stream.muted) == (volume, muted)
    assert stream.queue.gain == (0.0 if muted else volume * volume)
    assert await hass.config_entries.async_unload(entry.entry_id)


async def media_service(hass: HomeAssistant, service: str, **data: object) -> None:
    await hass.services.async_call(
        MP_DOMAIN, service, {ATTR_ENTITY_ID: ENTITY, **data}, blocking=True
    )


async def level_of_tone(
    hass: HomeAssistant, receiver: ListenReceiver, tone: Path
) -> float:
    """Play the tone and return its level at the receiver, 0.5 s into it."""
    await media_service(
        hass, SERVICE_PLAY_MEDIA, media_content_id=str(tone), media_content_type="music"
    )
    await wait_for_state(hass, ENTITY, lambda s: s.state == STATE_PLAYING, 5)
    await asyncio.sleep(0.7)
    return rms_dbfs(receiver.samples()[-RATE // 2 :])


async def test_volume_and_mute_survive_a_restart(
    hass: HomeAssistant, hass_storage: dict[str, Any], tmp_path: Path
) -> None:
    tone = make_tone(tmp_path / "tone.wav", freq=1000, seconds=1.5)
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    async with ListenReceiver(rate=RATE) as receiver:
        entry = add_entry(hass, receiver.url)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await wait_available(hass, ENTITY)
        await media_service(hass, SERVICE_VOLUME_SET, volume_level=0.5)
        await media_service(hass, SERVICE_VOLUME_MUTE, is_volume_muted=True)
        # Home Assistant stops (the stream with it), its restore state is
        # written to storage and read back at the next start.
        assert await hass.config_entries.async_unload(entry.entry_id)
        await async_mock_restore_state_shutdown_restart(hass)
        stored = hass_storage["core.restore_state"]["data"]
        saved = [i["extra_data"] for i in stored if i["state"]["entity_id"] == ENTITY]
        assert saved == [{"volume_level": 0.5, "is_volume_muted": True}]

        assert await hass.config_entries.async_setup(entry.entry_id)
        await wait_available(hass, ENTITY)
        attributes = state_of(hass, ENTITY).attributes
        assert (attributes["volume_level"], attributes["is_volume_muted"]) == (
            0.5,
            True,
        )
        # Really applied to what is published: muted, then -12 dB (0.5 squared).
        muted = await level_of_tone(hass, receiver, tone)
        await media_service(hass, SERVICE_VOLUME_MUTE, is_volume_muted=False)
        await asyncio.sleep(0.5)
        heard = rms_dbfs(receiver.samples()[-RATE // 4 :])
        report = f"after the restart: muted {muted:.1f} dBFS, unmuted {heard:.1f}"
        assert muted < -80, report
        assert heard == pytest.approx(TONE_DBFS - 12.04, abs=2), report
        print(report)  # noqa: T201
        assert await hass.config_entries.async_unload(entry.entry_id)
    assert ffmpeg_children() == []
