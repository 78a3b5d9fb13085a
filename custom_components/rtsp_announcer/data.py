"""Runtime data of a config entry."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform

from .announce import Announcer
from .audio import AudioStream
from .screen import ScreenBackground
from .speech import SharedSpeech


@dataclass(slots=True)
class RtspAnnouncerData:
    """What one config entry owns while it is loaded."""

    stream: AudioStream
    announcer: Announcer
    speech: SharedSpeech
    # The platforms set up, which unloading unloads: the camera's with the screen.
    platforms: tuple[Platform, ...]
    background: ScreenBackground | None = None


type RtspAnnouncerConfigEntry = ConfigEntry[RtspAnnouncerData]
