"""Runtime data of a config entry."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry

from .audio.stream import AudioStream


@dataclass(slots=True)
class RtspAnnouncerData:
    """What one config entry owns while it is loaded."""

    stream: AudioStream


type RtspAnnouncerConfigEntry = ConfigEntry[RtspAnnouncerData]
