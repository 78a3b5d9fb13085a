"""A notify entity per stream: `notify.send_message` speaks the message."""

from __future__ import annotations

from homeassistant.components.notify import NotifyEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .announce import AnnounceRequest
from .data import RtspAnnouncerConfigEntry
from .entity import RtspAnnouncerEntity

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: RtspAnnouncerConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the stream's notify entity."""
    async_add_entities([StreamNotifyEntity(entry)])


class StreamNotifyEntity(RtspAnnouncerEntity, NotifyEntity):
    """Notifications spoken on the stream, after the chime."""

    _attr_translation_key = "speaker"

    def __init__(self, entry: RtspAnnouncerConfigEntry) -> None:
        """Create the notify entity on the stream's device."""
        super().__init__(entry, "notify")
        self._announcer = entry.runtime_data.announcer

    async def async_send_message(self, message: str, title: str | None = None) -> None:
        """Queue the message (with the title first, if any) and return at once."""
        text = f"{title}. {message}" if title else message
        request = AnnounceRequest(message=text, wait=False)
        self._announcer.check_room(request)
        plan = await self._announcer.async_plan(request)
        self._announcer.enqueue(plan)
