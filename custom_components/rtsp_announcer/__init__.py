"""RTSP Announcer: speak into RTSP streams from Home Assistant."""

from __future__ import annotations

import asyncio

from homeassistant.components.ffmpeg import get_ffmpeg_manager
from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import ConfigEntryError, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.typing import ConfigType

from .announce import Announcer
from .audio.exceptions import TransportError
from .audio.models import Codec, PcmTransport, RtspTransport, StreamSettings
from .audio.stream import AudioStream
from .const import (
    CONF_CODEC,
    CONF_FRAME_MS,
    CONF_LEAD_MS,
    CONF_PCM_TRANSPORT,
    CONF_RTSP_TRANSPORT,
    CONF_SAMPLE_RATE,
    CONF_URL,
    DEFAULT_CODEC,
    DEFAULT_FRAME_MS,
    DEFAULT_LEAD_MS,
    DEFAULT_PCM_TRANSPORT,
    DEFAULT_RTSP_TRANSPORT,
    DEFAULT_SAMPLE_RATE,
    DOMAIN,
)
from .data import RtspAnnouncerConfigEntry, RtspAnnouncerData
from .services import async_setup_services
from .speech import async_acquire_speech, async_release_speech

PLATFORMS: list[Platform] = [Platform.MEDIA_PLAYER, Platform.NOTIFY, Platform.TTS]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions once for all entries."""
    async_setup_services(hass)
    return True


def settings_from_entry(entry: RtspAnnouncerConfigEntry) -> StreamSettings:
    """Build the stream settings from the entry's data and options."""
    options = entry.options
    return StreamSettings(
        url=entry.data[CONF_URL],
        codec=Codec(options.get(CONF_CODEC, DEFAULT_CODEC)),
        pcm_transport=PcmTransport(
            options.get(CONF_PCM_TRANSPORT, DEFAULT_PCM_TRANSPORT)
        ),
        sample_rate=int(options.get(CONF_SAMPLE_RATE, DEFAULT_SAMPLE_RATE)),
        rtsp_transport=RtspTransport(
            options.get(CONF_RTSP_TRANSPORT, DEFAULT_RTSP_TRANSPORT)
        ),
        frame_ms=int(options.get(CONF_FRAME_MS, DEFAULT_FRAME_MS)),
        lead_ms=int(options.get(CONF_LEAD_MS, DEFAULT_LEAD_MS)),
    )


async def async_setup_entry(
    hass: HomeAssistant, entry: RtspAnnouncerConfigEntry
) -> bool:
    """Start the entry's stream and its entities."""
    binary = get_ffmpeg_manager(hass).binary
    if not await _binary_runs(binary):
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="ffmpeg_not_found",
        )
    stream = AudioStream(
        settings_from_entry(entry),
        binary=binary,
        create_task=lambda coro, name: entry.async_create_background_task(
            hass, coro, name
        ),
    )
    try:
        await stream.start()
    except TransportError as err:
        await stream.stop()
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="transport_failed",
            translation_placeholders={"error": str(err)},
        ) from err
    speech = await async_acquire_speech(hass, entry.entry_id)
    announcer = Announcer(hass, stream, speech, entry.entry_id)
    stream.add_item_listener(announcer.item_changed)
    entry.runtime_data = RtspAnnouncerData(
        stream=stream, announcer=announcer, speech=speech
    )

    async def _stop_stream(_event: Event) -> None:
        await stream.stop()
        await async_release_speech(hass, entry.entry_id)

    entry.async_on_unload(
        hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _stop_stream)
    )
    entry.async_on_unload(entry.add_update_listener(_async_options_updated))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(
    hass: HomeAssistant, entry: RtspAnnouncerConfigEntry
) -> bool:
    """Stop the stream; nothing it started outlives it."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        await entry.runtime_data.stream.stop()
        await async_release_speech(hass, entry.entry_id)
    return unloaded


async def _async_options_updated(
    hass: HomeAssistant, entry: RtspAnnouncerConfigEntry
) -> None:
    await hass.config_entries.async_reload(entry.entry_id)


async def _binary_runs(binary: str) -> bool:
    """Whether the ffmpeg binary can be started at all."""
    try:
        process = await asyncio.create_subprocess_exec(
            binary,
            "-version",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError:
        return False
    return await process.wait() == 0
