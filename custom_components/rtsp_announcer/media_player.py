"""The stream as a media player: available while ffmpeg publishes."""

from __future__ import annotations

from typing import Any

from homeassistant.components import media_source
from homeassistant.components.media_player import (
    ATTR_MEDIA_ANNOUNCE,
    BrowseError,
    BrowseMedia,
    MediaPlayerDeviceClass,
    MediaPlayerEntity,
    MediaPlayerEntityFeature,
    MediaPlayerState,
    MediaType,
)
from homeassistant.core import HomeAssistant, ServiceResponse
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.restore_state import (
    ExtraStoredData,
    RestoredExtraData,
    RestoreEntity,
)

from .announce import AnnounceRequest, Priority, display_text
from .data import RtspAnnouncerConfigEntry
from .entity import RtspAnnouncerEntity
from .errors import validation_error
from .services import async_setup_platform_services

# The stream serialises everything through its own queue. No limit also lets
# Home Assistant call every stream of an `announce` call at once, so that they
# are queued together and a waiting call does not play them one after another.
PARALLEL_UPDATES = 0

# What is kept across restarts and reloads, beside the state: the state's own
# attributes are empty while the stream is unavailable (as it is when Home
# Assistant stops), the extra data is not.
STORED_VOLUME = "volume_level"
STORED_MUTED = "is_volume_muted"


async def async_setup_entry(
    hass: HomeAssistant,
    entry: RtspAnnouncerConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the stream's media player."""
    async_setup_platform_services()
    async_add_entities([RtspStreamMediaPlayer(entry)])


class RtspStreamMediaPlayer(RtspAnnouncerEntity, MediaPlayerEntity, RestoreEntity):
    """One RTSP stream: silence when idle, announcements when playing."""

    _attr_name = None
    _attr_translation_key = "stream"
    _attr_device_class = MediaPlayerDeviceClass.SPEAKER
    _attr_media_content_type = MediaType.MUSIC
    _attr_supported_features = (
        MediaPlayerEntityFeature.PLAY_MEDIA
        | MediaPlayerEntityFeature.MEDIA_ANNOUNCE
        | MediaPlayerEntityFeature.STOP
        | MediaPlayerEntityFeature.VOLUME_SET
        | MediaPlayerEntityFeature.VOLUME_MUTE
        | MediaPlayerEntityFeature.BROWSE_MEDIA
    )

    def __init__(self, entry: RtspAnnouncerConfigEntry) -> None:
        """Create the entity of the entry's stream."""
        super().__init__(entry, "stream")

    async def async_added_to_hass(self) -> None:
        """Take the volume and mute back from before the restart, then follow."""
        await self._restore_volume()
        await super().async_added_to_hass()

    async def _restore_volume(self) -> None:
        data = await self.async_get_last_extra_data()
        if data is None:
            return
        stored = data.as_dict()
        volume = stored.get(STORED_VOLUME)
        # Stored by an older or edited file: only what is plainly valid.
        if (
            isinstance(volume, int | float)
            and not isinstance(volume, bool)
            and 0.0 <= volume <= 1.0
        ):
            self._stream.set_volume(float(volume))
        muted = stored.get(STORED_MUTED)
        if isinstance(muted, bool):
            self._stream.set_muted(muted)

    @property
    def extra_restore_state_data(self) -> ExtraStoredData:
        """The volume and mute to restore after a restart."""
        return RestoredExtraData(
            {STORED_VOLUME: self._stream.volume, STORED_MUTED: self._stream.muted}
        )

    @property
    def available(self) -> bool:
        """Available only while ffmpeg is publishing."""
        return self._stream.available

    @property
    def state(self) -> MediaPlayerState:
        """Playing from the first sample of audio until the queue runs dry."""
        return (
            MediaPlayerState.PLAYING
            if self._stream.queue.active
            else MediaPlayerState.IDLE
        )

    @property
    def volume_level(self) -> float:
        """The stream's volume."""
        return self._stream.volume

    @property
    def is_volume_muted(self) -> bool:
        """Whether the stream is muted."""
        return self._stream.muted

    @property
    def media_title(self) -> str | None:
        """Title of what plays."""
        current = self._stream.queue.current
        return (
            None if current is None or not self._stream.queue.active else current.title
        )

    async def async_play_media(
        self, media_type: MediaType | str, media_id: str, **kwargs: Any
    ) -> None:
        """Play an audio file, media-source item, URL or TTS message.

        With `announce` it plays over what plays, which then plays again from
        its start, as on Home Assistant's other media players (the rules of a
        `high` announcement); without, it is queued. A TTS media-source id
        (from tts.speak) is spoken like the announce action.
        """
        announcer = self._entry.runtime_data.announcer
        announce = bool(kwargs.get(ATTR_MEDIA_ANNOUNCE))
        request = AnnounceRequest(
            media_id=media_id,
            preannounce=False,
            wait=False,
            priority=Priority.HIGH if announce else Priority.NORMAL,
            repeat=1,
        )
        announcer.check_room(request)
        plan = await announcer.async_plan(request)
        announcer.enqueue(plan)

    async def async_announce(
        self, request: AnnounceRequest, call: object
    ) -> ServiceResponse:
        """Announce on this stream: the `rtsp_announcer.announce` action.

        `call` is the action call, shared by every stream it reaches.
        """
        announcer = self._entry.runtime_data.announcer
        return await announcer.async_announce(request, call=call)

    async def async_display(self, text: str, seconds: float | None) -> None:
        """Show `text` on the stream's screen without speaking."""
        screen = self._stream.screen
        if screen is None:
            raise validation_error("screen_off", entity_id=self.entity_id)
        screen.show(display_text(text, "") if text else None, seconds=seconds)

    async def async_media_stop(self) -> None:
        """Stop what plays and drop the queue; silence keeps flowing."""
        self._stream.stop_playback()

    async def async_set_volume_level(self, volume: float) -> None:
        """Set the stream's volume (0..1; the gain on our PCM is its square)."""
        self._stream.set_volume(volume)

    async def async_mute_volume(self, mute: bool) -> None:  # noqa: FBT001
        """Mute the stream (silence is still published)."""
        self._stream.set_muted(mute)

    async def async_browse_media(
        self,
        media_content_type: MediaType | str | None = None,
        media_content_id: str | None = None,
    ) -> BrowseMedia:
        """Browse audio media only."""
        try:
            return await media_source.async_browse_media(
                self.hass,
                media_content_id,
                content_filter=lambda item: item.media_content_type.startswith(
                    "audio/"
                ),
            )
        except BrowseError as err:
            raise validation_error("browse_failed", error=str(err)) from err
