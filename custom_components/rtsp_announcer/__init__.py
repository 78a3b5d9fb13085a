"""RTSP Announcer: speak into RTSP streams from Home Assistant."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from homeassistant.components.ffmpeg import get_ffmpeg_manager
from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.start import async_at_started
from homeassistant.helpers.typing import ConfigType

from .announce import Announcer
from .audio import (
    AudioStream,
    Codec,
    FailureKind,
    PcmTransport,
    PublisherState,
    RtspTransport,
    StreamSettings,
    Supervision,
    binary_runs,
    redact_url,
)
from .audio import options as opt
from .const import CONF_URL, DOMAIN, LOGGER, SCREEN_CAMERA_KEY
from .data import RtspAnnouncerConfigEntry, RtspAnnouncerData
from .errors import not_ready
from .repairs import async_check_voice, async_clear_voice_issue
from .screen import ScreenBackground, screen_style, video_settings
from .services import async_setup_services
from .speech import async_acquire_speech, async_release_speech

PLATFORMS: Final = (Platform.MEDIA_PLAYER, Platform.NOTIFY, Platform.TTS)
# With the call-number screen on, its camera too.
SCREEN_PLATFORMS: Final = (*PLATFORMS, Platform.CAMERA)
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)

# Timing of every stream's ffmpeg supervisor.
SUPERVISION: Final = Supervision()
# A refusal by the server this many attempts in a row is the user's to fix: a
# single one may be a server that is starting or reloading its configuration.
ISSUE_AFTER_FAILURES: Final = 3
# Refusals that need the user, by the translation key of their repair issue.
ISSUE_KEYS: Final = {
    FailureKind.UNAUTHORIZED: "unauthorized",
    FailureKind.FORBIDDEN: "forbidden",
    FailureKind.PATH_NOT_FOUND: "path_not_found",
}


def issue_id(entry: RtspAnnouncerConfigEntry, key: str) -> str:
    """The id of an entry's repair issue of one kind."""
    return f"{entry.entry_id}_{key}"


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions once for all entries."""
    async_setup_services(hass)
    return True


def stream_settings(url: str, options: Mapping[str, Any]) -> StreamSettings:
    """Build the settings of a stream publishing to `url` with these options."""
    return StreamSettings(
        url=url,
        codec=Codec(opt.CODEC.read(options)),
        pcm_transport=PcmTransport(opt.PCM_TRANSPORT.read(options)),
        sample_rate=int(opt.SAMPLE_RATE.read(options)),
        rtsp_transport=RtspTransport(opt.RTSP_TRANSPORT.read(options)),
        frame_ms=int(opt.FRAME_MS.read(options)),
        lead_ms=int(opt.LEAD_MS.read(options)),
        idle_block_ms=int(opt.IDLE_BLOCK_MS.read(options)),
        video=video_settings(options),
    )


def settings_from_entry(entry: RtspAnnouncerConfigEntry) -> StreamSettings:
    """Build the stream settings from the entry's data and options."""
    return stream_settings(entry.data[CONF_URL], entry.options)


async def async_setup_entry(
    hass: HomeAssistant, entry: RtspAnnouncerConfigEntry
) -> bool:
    """Start the entry's stream and its entities."""
    binary = get_ffmpeg_manager(hass).binary
    if not await binary_runs(binary):
        raise not_ready("ffmpeg_not_found")
    stream = AudioStream(
        settings_from_entry(entry),
        binary=binary,
        supervision=SUPERVISION,
        create_task=lambda coro, name: entry.async_create_background_task(
            hass, coro, name
        ),
        screen_style=screen_style(entry.options),
    )
    # A socket or FIFO that cannot be created falls back to ffmpeg's stdin inside.
    await stream.start()
    try:
        return await _async_setup_started(hass, entry, stream)
    except BaseException:
        # A failed setup is never unloaded: stop what it started here.
        await stream.stop()
        await async_release_speech(hass, entry.entry_id)
        raise


async def _async_setup_started(
    hass: HomeAssistant, entry: RtspAnnouncerConfigEntry, stream: AudioStream
) -> bool:
    """Everything after the stream started: the voice, the entities."""
    speech = await async_acquire_speech(hass, entry.entry_id)
    announcer = Announcer(hass, stream, speech, entry.entry_id, entry.options)
    stream.add_item_listener(announcer.item_changed)
    platforms = PLATFORMS if stream.screen is None else SCREEN_PLATFORMS
    entry.runtime_data = RtspAnnouncerData(
        stream=stream, announcer=announcer, speech=speech, platforms=platforms
    )
    if stream.screen is None:
        _remove_screen_camera(hass, entry)
    if stream.screen is not None:
        background = ScreenBackground(hass, stream.screen, entry.options)
        entry.runtime_data.background = background
        entry.async_on_unload(background.async_stop)
        await background.async_start()
    health = _StreamHealth(hass, entry, stream)
    entry.async_on_unload(stream.add_listener(health.update))
    entry.async_on_unload(health.clear)

    async def _stop_stream(_event: Event) -> None:
        if entry.runtime_data.background is not None:
            await entry.runtime_data.background.async_stop()
        await stream.stop()
        await async_release_speech(hass, entry.entry_id)

    # Not listen_once: its remover logs an error when called after the event,
    # and the entry may be unloaded after Home Assistant has stopped.
    entry.async_on_unload(hass.bus.async_listen(EVENT_HOMEASSISTANT_STOP, _stop_stream))
    # No update listener: the flows that change the entry reload it themselves,
    # once (the reconfigure and reauth steps, and the options flow).
    await hass.config_entries.async_forward_entry_setups(entry, platforms)

    @callback
    def _check_voice(hass: HomeAssistant) -> None:
        async_check_voice(hass, entry)

    # Other integrations' TTS entities may come later in the start-up.
    entry.async_on_unload(async_at_started(hass, _check_voice))
    entry.async_on_unload(lambda: async_clear_voice_issue(hass, entry.entry_id))
    return True


async def async_unload_entry(
    hass: HomeAssistant, entry: RtspAnnouncerConfigEntry
) -> bool:
    """Stop the stream; nothing it started outlives it."""
    unloaded = await hass.config_entries.async_unload_platforms(
        entry, entry.runtime_data.platforms
    )
    if unloaded:
        await entry.runtime_data.stream.stop()
        await async_release_speech(hass, entry.entry_id)
    return unloaded


def _remove_screen_camera(hass: HomeAssistant, entry: RtspAnnouncerConfigEntry) -> None:
    """Remove the camera of a screen that was turned off from the registry.

    It would otherwise stay listed as no longer provided, for good; turning the
    screen on again creates it anew.
    """
    registry = er.async_get(hass)
    unique_id = f"{entry.entry_id}_{SCREEN_CAMERA_KEY}"
    if entity_id := registry.async_get_entity_id(Platform.CAMERA, DOMAIN, unique_id):
        LOGGER.debug("The screen is off: removing %s", entity_id)
        registry.async_remove(entity_id)


class _StreamHealth:
    """Turns a publisher that the server keeps refusing into repair issues.

    A wrong password also starts the entry's reauthentication, once per setup:
    a user who dismissed it is not asked again on every retry.
    """

    def __init__(
        self,
        hass: HomeAssistant,
        entry: RtspAnnouncerConfigEntry,
        stream: AudioStream,
    ) -> None:
        self._hass = hass
        self._entry = entry
        self._stream = stream
        self._raised: set[str] = set()
        self._reauth_started = False

    @callback
    def update(self) -> None:
        """Raise or clear issues after a change of the stream."""
        publisher = self._stream.publisher
        if publisher is None or publisher.publishing:
            self.clear()
            return
        key = ISSUE_KEYS.get(publisher.failure)
        if (
            key is None
            or publisher.state is not PublisherState.BACKOFF
            or publisher.failure_streak < ISSUE_AFTER_FAILURES
        ):
            return
        entry = self._entry
        if (issue := issue_id(entry, key)) not in self._raised:
            self._raised.add(issue)
            ir.async_create_issue(
                self._hass,
                DOMAIN,
                issue,
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key=key,
                translation_placeholders={
                    "name": entry.title,
                    "url": redact_url(entry.data[CONF_URL]),
                },
            )
        if publisher.failure is FailureKind.UNAUTHORIZED and not self._reauth_started:
            self._reauth_started = True
            LOGGER.debug("Asking for new credentials for %s", self._stream.label)
            entry.async_start_reauth(self._hass)

    @callback
    def clear(self) -> None:
        """Remove the issues raised: the stream publishes, or is unloaded."""
        for issue in self._raised:
            ir.async_delete_issue(self._hass, DOMAIN, issue)
        self._raised.clear()
