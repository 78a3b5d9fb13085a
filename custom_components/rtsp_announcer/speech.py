"""The one speech engine of a Home Assistant instance, shared by all streams."""

from __future__ import annotations

from dataclasses import dataclass, field

from homeassistant.core import HomeAssistant
from homeassistant.util.hass_dict import HassKey

from .audio import PcmCache, SpeechEngine, SpeechEngineError
from .const import DOMAIN, LOGGER


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
