"""Other integrations' TTS entities for the tests: tone voices, set up as Home
Assistant would set up another integration's voices."""

from __future__ import annotations

from typing import Any

from homeassistant.components.tts import TextToSpeechEntity, TtsAudioType
from homeassistant.exceptions import HomeAssistantError

TONE = "tts.tone_voice"


class ToneVoice(TextToSpeechEntity):
    """A voice that 'speaks' recorded audio (a tone as MP3), whatever the text.

    It records every message it is asked for; with `broken` it fails instead.
    """

    _attr_default_language = "en"

    def __init__(self, name: str, audio: bytes) -> None:
        self._attr_name = name
        self._attr_supported_languages = ["en"]
        self._audio = audio
        self.messages: list[str] = []
        self.broken = False

    async def async_get_tts_audio(
        self, message: str, language: str, options: dict[str, Any]
    ) -> TtsAudioType:
        self.messages.append(message)
        if self.broken:
            msg = "the voice service is down"
            raise HomeAssistantError(msg)
        return "mp3", self._audio
