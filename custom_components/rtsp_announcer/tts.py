"""The local espeak-ng voice as a Home Assistant text-to-speech entity."""

from __future__ import annotations

import io
import wave
from typing import Any

from homeassistant.components.tts import (
    TextToSpeechEntity,
    TtsAudioType,
    Voice,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .announce import SPEECH_OPTIONS, speech_error, voice_option
from .audio.exceptions import AnnouncerError, UnknownLanguageError
from .audio.models import BYTES_PER_SAMPLE
from .audio.speech import DEFAULT_LANGUAGE
from .audio.text import clean_text, normalize_text
from .const import DOMAIN
from .data import RtspAnnouncerConfigEntry
from .entity import RtspAnnouncerEntity

# Synthesis runs on the shared engine's own thread, one request at a time.
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: RtspAnnouncerConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the local voice of the stream's device."""
    async_add_entities([LocalVoiceEntity(entry)])


def to_wav(pcm: bytes, sample_rate: int) -> bytes:
    """Wrap s16le mono PCM in a WAV container."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(BYTES_PER_SAMPLE)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return buffer.getvalue()


class LocalVoiceEntity(RtspAnnouncerEntity, TextToSpeechEntity):
    """espeak-ng speaking locally: for any speaker, the TTS cache and Assist."""

    _attr_translation_key = "voice"
    _attr_supported_options: list[str] | None = list(SPEECH_OPTIONS)  # noqa: RUF012

    def __init__(self, entry: RtspAnnouncerConfigEntry) -> None:
        """Create the voice entity on the stream's device."""
        super().__init__(entry, "tts")
        self._speech = entry.runtime_data.speech

    @property
    def available(self) -> bool:
        """Available while libespeak-ng is loaded, whatever the stream does.

        The voice renders audio for any TTS consumer (other speakers, Assist)
        and needs neither ffmpeg nor the RTSP server: an outage of the stream
        does not make it unavailable.
        """
        return self._speech.engine.catalog is not None

    @property
    def supported_languages(self) -> list[str]:
        """Every language espeak-ng has a voice for, in Home Assistant's codes."""
        catalog = self._speech.engine.catalog
        return [] if catalog is None else catalog.supported_languages()

    @property
    def default_language(self) -> str:
        """Home Assistant's language if espeak-ng speaks it, else English."""
        catalog = self._speech.engine.catalog
        language = self.hass.config.language
        if catalog is not None:
            try:
                catalog.resolve(language)
            except UnknownLanguageError:
                return DEFAULT_LANGUAGE
        return language

    @callback
    def async_get_supported_voices(self, language: str) -> list[Voice] | None:
        """The espeak-ng voices that speak `language`, best first."""
        catalog = self._speech.engine.catalog
        if catalog is None:
            return None
        try:
            voices = catalog.candidates(language)
        except UnknownLanguageError:
            return None
        return [Voice(voice.identifier, voice.name) for voice in voices]

    async def async_get_tts_audio(
        self, message: str, language: str, options: dict[str, Any]
    ) -> TtsAudioType:
        """Render `message` as WAV on the engine's thread (never the executor)."""
        engine = self._speech.engine
        unknown = set(options) - set(SPEECH_OPTIONS)
        if unknown:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="invalid_option",
                translation_placeholders={"error": ", ".join(sorted(unknown))},
            )
        try:
            voice = await engine.resolve_voice(language, voice_option(options))
            pcm = await engine.synthesize(
                normalize_text(clean_text(message), voice.language),
                voice=voice.identifier,
                rate=options.get("rate"),
                pitch=options.get("pitch"),
                volume=options.get("volume"),
                gap=options.get("gap"),
            )
        except AnnouncerError as err:
            raise speech_error(err) from err
        return "wav", to_wav(pcm, engine.native_rate)
