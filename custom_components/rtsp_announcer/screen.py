"""The call-number screen: its options as the audio core takes them, its background."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from homeassistant.core import (
    Event,
    EventStateChangedData,
    HomeAssistant,
    callback,
    split_entity_id,
)
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.event import (
    async_track_state_change_event,
    async_track_time_interval,
)

from .audio import options as opt
from .audio import strip_credentials
from .audio.models import VideoSettings
from .audio.video import Rgb, ScreenStyle, VideoTrack
from .const import LOGGER


def _bounded(options: Mapping[str, Any], option: opt.Bounded[int]) -> int:
    low, high = option.range
    value: Any = options.get(option.key)
    try:
        number = int(value)
    except (TypeError, ValueError):
        return option.default
    return min(max(number, low), high)


def _rgb(value: Any, default: Rgb) -> Rgb:
    """A colour as the colour selector stores it: [red, green, blue]."""
    if not isinstance(value, Sequence) or isinstance(value, str):
        return default
    try:
        red, green, blue = (min(max(int(part), 0), 255) for part in value)
    except (TypeError, ValueError):
        # Not three numbers.
        return default
    return (red, green, blue)


def video_settings(options: Mapping[str, Any]) -> VideoSettings | None:
    """The screen's video settings; None while the screen is off."""
    if not opt.VIDEO.read(options):
        return None
    resolution = opt.VIDEO_RESOLUTION.read(options)
    if resolution not in opt.VIDEO_RESOLUTION.choices:
        resolution = opt.VIDEO_RESOLUTION.default
    width, height = (int(part) for part in resolution.split("x"))
    fps = _bounded(options, opt.VIDEO_FPS)
    return VideoSettings(width=width, height=height, fps=fps)


def reader_url(url: str, options: Mapping[str, Any]) -> str:
    """Where players read the stream: the reader URL, else the publish URL `url`.

    The publish URL's credentials are for publishing: a reader is not given them.
    """
    reader: str | None = opt.VIDEO_READER_URL.read(options)
    return reader or strip_credentials(url)


def screen_style(options: Mapping[str, Any]) -> ScreenStyle:
    """How the screen looks, from the stream's options."""
    return ScreenStyle(
        background=_rgb(
            options.get(opt.VIDEO_BACKGROUND.key), opt.VIDEO_BACKGROUND.default
        ),
        text_color=_rgb(
            options.get(opt.VIDEO_TEXT_COLOR.key), opt.VIDEO_TEXT_COLOR.default
        ),
        text_size=_bounded(options, opt.VIDEO_TEXT_SIZE),
        history=_bounded(options, opt.VIDEO_HISTORY),
    )


CAMERA_DOMAIN: Final = "camera"
# A camera's picture changes without a state change: it is fetched again this
# often (seconds). An image entity says when its picture changed.
CAMERA_REFRESH: Final = 10.0
# Seconds one picture of an entity may take.
PICTURE_TIMEOUT: Final = 10


class ScreenBackground:
    """Keeps the screen's background: an image file, or an entity's picture.

    The entity's picture wins while it can be had; the file (or the colour)
    stands in when it cannot.
    """

    def __init__(
        self, hass: HomeAssistant, screen: VideoTrack, options: Mapping[str, Any]
    ) -> None:
        """Follow the background the options name; `async_start` begins."""
        self._hass = hass
        self._screen = screen
        self._path: str | None = options.get(opt.VIDEO_BACKGROUND_IMAGE.key)
        self._entity_id: str | None = options.get(opt.VIDEO_BACKGROUND_ENTITY.key)
        self._file: bytes | None = None
        self._removers: list[Callable[[], None]] = []
        self._loading: asyncio.Task[None] | None = None
        self._warned = False

    async def async_start(self) -> None:
        """Draw the background and follow the entity's changes."""
        if self._path:
            if self._hass.config.is_allowed_path(self._path):
                try:
                    self._file = await self._hass.async_add_executor_job(
                        Path(self._path).read_bytes
                    )
                except OSError as err:
                    LOGGER.warning(
                        "Screen background %s cannot be read: %s", self._path, err
                    )
            else:
                LOGGER.warning(
                    "Screen background %s is not in a folder Home Assistant may"
                    " read (allowlist_external_dirs)",
                    self._path,
                )
        await self._apply(self._file)
        entity_id = self._entity_id
        if not entity_id:
            return
        self._removers.append(
            async_track_state_change_event(self._hass, [entity_id], self._changed)
        )
        if split_entity_id(entity_id)[0] == CAMERA_DOMAIN:
            self._removers.append(
                async_track_time_interval(
                    self._hass,
                    self._refresh,
                    timedelta(seconds=CAMERA_REFRESH),
                    cancel_on_shutdown=True,
                )
            )
        await self._load_entity()

    async def async_stop(self) -> None:
        """Stop following the entity."""
        for remove in self._removers:
            remove()
        self._removers.clear()
        loading, self._loading = self._loading, None
        if loading is not None:
            loading.cancel()
            await asyncio.gather(loading, return_exceptions=True)

    @callback
    def _changed(self, _event: Event[EventStateChangedData]) -> None:
        self._schedule()

    @callback
    def _refresh(self, _now: datetime) -> None:
        self._schedule()

    @callback
    def _schedule(self) -> None:
        if self._loading is not None and not self._loading.done():
            return
        self._loading = self._hass.async_create_background_task(
            self._load_entity(), "rtsp_announcer screen background"
        )

    async def _load_entity(self) -> None:
        entity_id = self._entity_id
        if entity_id is None:
            return
        try:
            content = await self._entity_picture(entity_id)
        except HomeAssistantError as err:
            LOGGER.debug("No picture from %s: %s", entity_id, err)
            content = None
        await self._apply(content if content is not None else self._file)

    async def _entity_picture(self, entity_id: str) -> bytes | None:
        if self._hass.states.get(entity_id) is None:
            # Not there (yet): its state change, when it comes, loads it.
            return None
        # Imported here: a stream without such a background never loads them.
        if split_entity_id(entity_id)[0] == CAMERA_DOMAIN:
            from homeassistant.components import camera

            picture = await camera.async_get_image(
                self._hass, entity_id, timeout=PICTURE_TIMEOUT
            )
            return picture.content
        from homeassistant.components import image

        get_image = getattr(image, "async_get_image", None)
        if get_image is None:
            # Home Assistant 2025.4 offers no way to read an image entity.
            if not self._warned:
                self._warned = True
                LOGGER.warning(
                    "This Home Assistant release cannot hand out the picture of"
                    " %s; use a camera entity or an image file as the screen's"
                    " background",
                    entity_id,
                )
            return None
        picture = await get_image(self._hass, entity_id, timeout=PICTURE_TIMEOUT)
        content: bytes = picture.content
        return content

    async def _apply(self, content: bytes | None) -> None:
        try:
            await self._screen.set_background(content)
        except OSError as err:
            LOGGER.warning("Screen background is not a picture: %s", err)
