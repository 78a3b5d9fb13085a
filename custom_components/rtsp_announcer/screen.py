"""The call-number screen's options, as the audio core takes them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .audio.models import VideoSettings
from .audio.video import Rgb, ScreenStyle
from .const import (
    CONF_VIDEO,
    CONF_VIDEO_BACKGROUND,
    CONF_VIDEO_FPS,
    CONF_VIDEO_HISTORY,
    CONF_VIDEO_RESOLUTION,
    CONF_VIDEO_TEXT_COLOR,
    CONF_VIDEO_TEXT_SIZE,
    DEFAULT_VIDEO,
    DEFAULT_VIDEO_BACKGROUND,
    DEFAULT_VIDEO_FPS,
    DEFAULT_VIDEO_HISTORY,
    DEFAULT_VIDEO_RESOLUTION,
    DEFAULT_VIDEO_TEXT_COLOR,
    DEFAULT_VIDEO_TEXT_SIZE,
    MAX_VIDEO_FPS,
    MAX_VIDEO_HISTORY,
    MAX_VIDEO_TEXT_SIZE,
    MIN_VIDEO_FPS,
    MIN_VIDEO_TEXT_SIZE,
    VIDEO_RESOLUTIONS,
)


def _bounded(value: Any, default: int, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
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
    if not options.get(CONF_VIDEO, DEFAULT_VIDEO):
        return None
    resolution = options.get(CONF_VIDEO_RESOLUTION, DEFAULT_VIDEO_RESOLUTION)
    if resolution not in VIDEO_RESOLUTIONS:
        resolution = DEFAULT_VIDEO_RESOLUTION
    width, height = (int(part) for part in resolution.split("x"))
    fps = _bounded(
        options.get(CONF_VIDEO_FPS), DEFAULT_VIDEO_FPS, MIN_VIDEO_FPS, MAX_VIDEO_FPS
    )
    return VideoSettings(width=width, height=height, fps=fps)


def screen_style(options: Mapping[str, Any]) -> ScreenStyle:
    """How the screen looks, from the stream's options."""
    return ScreenStyle(
        background=_rgb(options.get(CONF_VIDEO_BACKGROUND), DEFAULT_VIDEO_BACKGROUND),
        text_color=_rgb(options.get(CONF_VIDEO_TEXT_COLOR), DEFAULT_VIDEO_TEXT_COLOR),
        text_size=_bounded(
            options.get(CONF_VIDEO_TEXT_SIZE),
            DEFAULT_VIDEO_TEXT_SIZE,
            MIN_VIDEO_TEXT_SIZE,
            MAX_VIDEO_TEXT_SIZE,
        ),
        history=_bounded(
            options.get(CONF_VIDEO_HISTORY), DEFAULT_VIDEO_HISTORY, 0, MAX_VIDEO_HISTORY
        ),
    )
