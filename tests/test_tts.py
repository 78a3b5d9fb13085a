"""The local voice entity: its default language, and life without espeak-ng."""

from __future__ import annotations

import logging
from unittest.mock import patch

import pytest
from homeassistant.components import tts
from homeassistant.components.tts import TextToSpeechEntity
from homeassistant.components.tts.const import DATA_COMPONENT
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError

from custom_components.rtsp_announcer.audio.speech import espeak

from .common import DEAD_URL, add_entry, state_of

TTS_ENTITY = "tts.hall_local_voice"


def voice_entity(hass: HomeAssistant) -> TextToSpeechEntity:
    entity = hass.data[DATA_COMPONENT].get_entity(TTS_ENTITY)
    assert entity is not None
    return entity


@pytest.mark.usefixtures("entry")
@pytest.mark.parametrize(
    ("home_language", "default"),
    [("de", "de"), ("zh-Hans", "zh-Hans"), ("tlh", "en"), ("xx-YY", "en")],
)
async def test_the_default_language_is_home_assistants_if_espeak_speaks_it(
    hass: HomeAssistant, home_language: str, default: str
) -> None:
    hass.config.language = home_language
    assert voice_entity(hass).default_language == default


@pytest.mark.usefixtures("entry")
async def test_speaking_without_a_language_in_an_unspoken_home_language(
    hass: HomeAssistant,
) -> None:
    # Klingon has no espeak-ng voice: tts.speak without a language still speaks.
    hass.config.language = "tlh"
    media_id = tts.generate_media_source_id(
        hass, "Hello there.", engine=TTS_ENTITY, language=None, cache=False
    )
    extension, data = await tts.async_get_media_source_audio(hass, media_id)
    assert extension == "mp3"
    assert len(data) > 1000


async def test_without_espeak_ng_the_voice_offers_nothing(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    # As on a system without libespeak-ng: the binding cannot be imported.
    with (
        patch.object(espeak, "_BINDING_MODULE", "pyttsx3.drivers._no_such_binding"),
        caplog.at_level(logging.WARNING),
    ):
        entry = add_entry(hass, DEAD_URL)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        assert "Local speech is not available" in caplog.text
        assert "install espeak-ng" in caplog.text
        assert state_of(hass, TTS_ENTITY).state == STATE_UNAVAILABLE
        entity = voice_entity(hass)
        # It offers nothing; asked to speak anyway, it says why it cannot.
        assert entity.supported_languages == []
        assert entity.default_language == hass.config.language
        assert entity.async_get_supported_voices("en") is None
        with pytest.raises(HomeAssistantError) as err:
            await entity.async_get_tts_audio("Hello", "en", {})
        assert err.value.translation_key == "speech_failed"
        assert await hass.config_entries.async_unload(entry.entry_id)
