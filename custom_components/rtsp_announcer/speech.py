"""The one speech engine of a Home Assistant instance, shared by all streams."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from homeassistant.core import HomeAssistant
from homeassistant.util.hass_dict import HassKey

from .audio import (
    AnnouncerError,
    InvalidOptionError,
    PcmCache,
    SpeechEngine,
    SpeechEngineError,
    SpeechOptions,
    VoiceInfo,
)
from .const import DOMAIN, LOGGER
from .errors import speech_error, unknown_options

# The options the local voice takes, from an action call or a TTS request.
SPEECH_OPTIONS: Final = ("voice", "rate", "pitch", "volume", "gap")


@dataclass(slots=True)
class SharedSpeech:
    """The engine, the PCM cache and the entries that use them."""

    engine: SpeechEngine
    cache: PcmCache
    users: set[str] = field(default_factory=set)


DATA_SPEECH: HassKey[SharedSpeech] = HassKey(f"{DOMAIN}_speech")


async def async_acquire_speech(hass: HomeAssistant, entry_id: str) -> SharedSpeech:
    """Return the shared engine, starting it for the first entry."""
    shared = hass.data.get(DATA_SPEECH)
    if shared is None:
        shared = hass.data[DATA_SPEECH] = SharedSpeech(
            engine=SpeechEngine(), cache=PcmCache()
        )
    if not shared.engine.running:
        try:
            await shared.engine.async_start()
        except SpeechEngineError as err:
            # Media announcements and the stream work without speech.
            LOGGER.warning("Local speech is not available: %s", err)
    shared.users.add(entry_id)
    return shared


async def async_release_speech(hass: HomeAssistant, entry_id: str) -> None:
    """Forget an entry; the last one stops the engine and joins its thread."""
    shared = hass.data.get(DATA_SPEECH)
    if shared is None:
        return
    shared.users.discard(entry_id)
    if not shared.users:
        hass.data.pop(DATA_SPEECH, None)
        shared.cache.clear()
        await shared.engine.async_stop()


def voice_option(options: Mapping[str, Any]) -> str | None:
    """The `voice` option, which must be text when given."""
    voice = options.get("voice")
    if voice is None or isinstance(voice, str):
        return voice
    raise InvalidOptionError(f"voice must be text, got {voice!r}")


async def async_resolve_speech(
    engine: SpeechEngine, language: str, options: Mapping[str, Any]
) -> tuple[VoiceInfo, SpeechOptions]:
    """Check a request's options and pick its voice, or raise the translated error.

    The one check of the local voice's options, whichever way the request
    came in (an announcement or the TTS entity).
    """
    unknown = set(options) - set(SPEECH_OPTIONS)
    if unknown:
        raise unknown_options(unknown)
    try:
        speech = SpeechOptions.from_mapping(options)
        voice = await engine.resolve_voice(language, voice_option(options))
    except AnnouncerError as err:
        raise speech_error(err) from err
    return voice, speech
