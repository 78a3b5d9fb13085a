"""RTSP Announcer: speak into RTSP streams from Home Assistant."""

from __future__ import annotations

import asyncio

from homeassistant.components.ffmpeg import get_ffmpeg_manager
from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import ConfigEntryError, ConfigEntryNotReady

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

PLATFORMS: list[Platform] = [Platform.MEDIA_PLAYER]


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
    entry.runtime_data = RtspAnnouncerData(stream=stream)

    async def _stop_stream(_event: Event) -> None:
        await stream.stop()

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
