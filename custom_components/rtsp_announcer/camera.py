"""The call-number screen as a camera, so that it can sit on a dashboard too."""

from __future__ import annotations

from homeassistant.components.camera import Camera, CameraEntityFeature
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from PIL import Image

from .audio.video import VideoTrack, encode_jpeg
from .const import CONF_URL, SCREEN_CAMERA_KEY
from .data import RtspAnnouncerConfigEntry
from .entity import RtspAnnouncerEntity
from .screen import reader_url

# Pictures come from the screen's own drawings; nothing here needs a limit.
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: RtspAnnouncerConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the screen's camera; the platform is set up only with the screen on."""
    if (screen := entry.runtime_data.stream.screen) is not None:
        async_add_entities([ScreenCamera(entry, screen)])


class ScreenCamera(RtspAnnouncerEntity, Camera):
    """The screen: its live stream from the RTSP server, its picture drawn here."""

    _attr_translation_key = "screen"
    _attr_supported_features = CameraEntityFeature.STREAM

    def __init__(self, entry: RtspAnnouncerConfigEntry, screen: VideoTrack) -> None:
        """Create the camera of the entry's screen."""
        Camera.__init__(self)
        super().__init__(entry, SCREEN_CAMERA_KEY)
        self._screen = screen
        self._source = reader_url(entry.data[CONF_URL], entry.options)
        # The latest JPEG and what it was made of: dashboards ask again every
        # few seconds for a picture that changes with each call only.
        self._jpeg: tuple[Image.Image, int | None, int | None, bytes] | None = None

    async def stream_source(self) -> str:
        """The stream as players read it from the RTSP server."""
        return self._source

    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes | None:
        """What the screen shows now as JPEG, encoded off the event loop.

        The picture is the one the screen drew for its latest frame: no
        reader of the stream and no ffmpeg are needed for it.
        """
        picture = await self._screen.picture()
        cached = self._jpeg
        if cached is not None and cached[:3] == (picture, width, height):
            return cached[3]
        jpeg = await self.hass.async_add_executor_job(
            encode_jpeg, picture, width, height
        )
        self._jpeg = (picture, width, height, jpeg)
        return jpeg
