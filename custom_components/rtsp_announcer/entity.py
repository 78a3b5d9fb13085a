"""The base entity: one device per stream."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity

from .audio import redact_url
from .const import CONF_NAME, CONF_URL, DOMAIN
from .data import RtspAnnouncerConfigEntry


class RtspAnnouncerEntity(Entity):
    """Common naming, device, availability and stream listening of the entities.

    An entity that speaks into the stream or shows it is unavailable while the
    stream does not publish (the server is unreachable or refuses it, ffmpeg
    restarts), and whenever its own base class says so.
    """

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, entry: RtspAnnouncerConfigEntry, key: str) -> None:
        """Attach the entity to the entry's stream and device."""
        self._entry = entry
        self._stream = entry.runtime_data.stream
        self._attr_unique_id = f"{entry.entry_id}_{key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, entry.entry_id)},
            name=entry.data.get(CONF_NAME) or entry.title,
            manufacturer="RTSP Announcer",
            model="RTSP stream",
            configuration_url=None,
            serial_number=redact_url(entry.data[CONF_URL]),
        )

    @property
    def available(self) -> bool:
        """Available only while the stream's ffmpeg publishes."""
        return self._stream.available and super().available

    async def async_added_to_hass(self) -> None:
        """Follow the stream's state."""
        await super().async_added_to_hass()
        self.async_on_remove(self._stream.add_listener(self.async_write_ha_state))
