"""Without libespeak-ng: the voice fails clearly, everything else keeps working."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError

from custom_components.rtsp_announcer.const import DOMAIN

from .common import (
    add_entry,
    announce,
    ffmpeg_children,
    make_tone,
    state_of,
    wait_available,
)
from .helpers.rtsp import ListenReceiver

ENTITY = "media_player.hall"


@pytest.mark.usefixtures("no_espeak")
async def test_media_still_plays_without_espeak(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    tone = make_tone(tmp_path / "tone.wav", freq=600, seconds=0.5)
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    async with ListenReceiver() as receiver:
        entry = add_entry(hass, receiver.url)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await wait_available(hass, ENTITY)
        assert state_of(hass, "tts.hall_local_voice").state == "unavailable"

        with pytest.raises(HomeAssistantError) as err:
            await announce(hass, message="Hello")
        # No local voice and no other TTS entity: nothing can speak.
        assert err.value.translation_key == "no_voice"
        assert len(entry.runtime_data.stream.queue) == 0

        response = await hass.services.async_call(
            DOMAIN,
            "announce",
            {"entity_id": ENTITY, "media_id": str(tone)},
            blocking=True,
            return_response=True,
        )
        assert response is not None
        result: Any = response[ENTITY]
        assert result["state"] == "finished"
        assert state_of(hass, ENTITY).state == "idle"
        assert await hass.config_entries.async_unload(entry.entry_id)
    assert ffmpeg_children() == []
