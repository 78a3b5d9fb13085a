"""One length limit for every way in: the action, tts.speak and play_media, notify."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.components import tts
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.rtsp_announcer.const import DOMAIN, MAX_MESSAGE_LENGTH

ENTITY = "media_player.hall"
LOCAL = "tts.hall_local_voice"
TOO_LONG = "a" * (MAX_MESSAGE_LENGTH + 1)


def test_the_limit() -> None:
    assert MAX_MESSAGE_LENGTH == 5000


async def refused(hass: HomeAssistant, domain: str, service: str, **data: Any) -> None:
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(domain, service, data, blocking=True)
    assert err.value.translation_key == "message_too_long"
    assert err.value.translation_placeholders == {"limit": str(MAX_MESSAGE_LENGTH)}


async def test_every_way_in_refuses_a_message_too_long(
    hass: HomeAssistant, live: MockConfigEntry
) -> None:
    await refused(hass, DOMAIN, "announce", entity_id=ENTITY, message=TOO_LONG)
    await refused(
        hass,
        "notify",
        "send_message",
        entity_id="notify.hall_speaker",
        message=TOO_LONG,
    )
    media_id = tts.generate_media_source_id(hass, TOO_LONG, LOCAL, cache=False)
    await refused(
        hass,
        "media_player",
        "play_media",
        entity_id=ENTITY,
        media_content_id=media_id,
        media_content_type="music",
    )
    # tts.speak to the stream goes through play_media.
    await refused(
        hass,
        "tts",
        "speak",
        entity_id=LOCAL,
        media_player_entity_id=ENTITY,
        message=TOO_LONG,
        cache=False,
    )
    assert len(live.runtime_data.stream.queue) == 0


async def test_a_message_at_the_limit_is_taken(
    hass: HomeAssistant, live: MockConfigEntry
) -> None:
    words = ("word " * (MAX_MESSAGE_LENGTH // 5))[:MAX_MESSAGE_LENGTH]
    await hass.services.async_call(
        DOMAIN,
        "announce",
        {"entity_id": ENTITY, "message": words, "wait": False},
        blocking=True,
    )
    assert len(live.runtime_data.stream.queue) == 1
    await hass.services.async_call(
        "media_player", "media_stop", {"entity_id": ENTITY}, blocking=True
    )
