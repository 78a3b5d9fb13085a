"""The `rtsp_announcer.announce` action."""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import entity_registry as er

try:  # Home Assistant 2025.10 and later
    from homeassistant.helpers.target import (
        TargetSelection,
        async_extract_referenced_entity_ids,
    )
except ImportError:  # pragma: no cover - older releases
    from homeassistant.helpers.service import (  # type: ignore[attr-defined,no-redef]
        async_extract_referenced_entity_ids,
    )

    TargetSelection = None  # type: ignore[assignment,misc]

from .announce import (
    Announcer,
    AnnounceRequest,
    Priority,
    async_wait_items,
    response_for,
)
from .audio.playback import PlaybackItem
from .const import (
    ATTR_LANGUAGE,
    ATTR_MEDIA_ID,
    ATTR_MESSAGE,
    ATTR_OPTIONS,
    ATTR_PREANNOUNCE,
    ATTR_PREANNOUNCE_MEDIA_ID,
    ATTR_PRIORITY,
    ATTR_TTS_ENTITY_ID,
    ATTR_VOLUME,
    ATTR_WAIT,
    DOMAIN,
    SERVICE_ANNOUNCE,
)


def media_id(value: Any) -> str | None:
    """Accept a media id as text or as the media selector's dict; empty is none."""
    if isinstance(value, dict):
        value = value.get("media_content_id")
    text = cv.string(value).strip() if value is not None else ""
    return text or None


ANNOUNCE_SCHEMA = vol.Schema(
    {
        **cv.TARGET_SERVICE_FIELDS,
        vol.Optional(ATTR_MESSAGE): cv.string,
        vol.Optional(ATTR_MEDIA_ID): media_id,
        vol.Optional(ATTR_TTS_ENTITY_ID): cv.entity_domain("tts"),
        vol.Optional(ATTR_LANGUAGE): cv.string,
        vol.Optional(ATTR_OPTIONS, default=dict): dict,
        vol.Optional(ATTR_PREANNOUNCE, default=True): cv.boolean,
        vol.Optional(ATTR_PREANNOUNCE_MEDIA_ID): media_id,
        vol.Optional(ATTR_VOLUME, default=1.0): vol.All(
            vol.Coerce(float), vol.Range(min=0.0, max=1.0)
        ),
        vol.Optional(ATTR_PRIORITY, default=Priority.NORMAL.value): vol.In(
            [priority.value for priority in Priority]
        ),
        vol.Optional(ATTR_WAIT, default=True): cv.boolean,
    }
)


def _request_from(data: dict[str, Any]) -> AnnounceRequest:
    return AnnounceRequest(
        message=data.get(ATTR_MESSAGE),
        media_id=data.get(ATTR_MEDIA_ID),
        tts_entity_id=data.get(ATTR_TTS_ENTITY_ID),
        language=data.get(ATTR_LANGUAGE),
        options=data[ATTR_OPTIONS],
        preannounce=data[ATTR_PREANNOUNCE],
        preannounce_media_id=data.get(ATTR_PREANNOUNCE_MEDIA_ID),
        volume=data[ATTR_VOLUME],
        priority=Priority(data[ATTR_PRIORITY]),
        wait=data[ATTR_WAIT],
    )


def _announcers_for(hass: HomeAssistant, call: ServiceCall) -> dict[str, Announcer]:
    """The targeted streams, by entity id; anything else is an error."""
    if TargetSelection is None:  # pragma: no cover - older releases
        selected = async_extract_referenced_entity_ids(hass, call)
    else:
        selected = async_extract_referenced_entity_ids(
            hass, TargetSelection(dict(call.data))
        )
    registry = er.async_get(hass)
    announcers: dict[str, Announcer] = {}
    for entity_id in sorted(selected.referenced | selected.indirectly_referenced):
        entry = registry.async_get(entity_id)
        is_stream = (
            entry is not None
            and entry.platform == DOMAIN
            and entry.domain == "media_player"
            and entry.config_entry_id is not None
        )
        if not is_stream:
            if entity_id in selected.referenced:
                raise ServiceValidationError(
                    translation_domain=DOMAIN,
                    translation_key="invalid_target",
                    translation_placeholders={"entity_id": entity_id},
                )
            continue
        assert entry is not None  # noqa: S101
        assert entry.config_entry_id is not None  # noqa: S101
        config_entry = hass.config_entries.async_get_entry(entry.config_entry_id)
        if config_entry is None or config_entry.state is not ConfigEntryState.LOADED:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="stream_not_loaded",
                translation_placeholders={"entity_id": entity_id},
            )
        announcers[entity_id] = config_entry.runtime_data.announcer
    if not announcers:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="no_target"
        )
    return announcers


async def _async_announce(call: ServiceCall) -> ServiceResponse:
    hass = call.hass
    called_at = hass.loop.time()
    request = _request_from(dict(call.data))
    announcers = _announcers_for(hass, call)
    # Everything is checked on every stream before anything is queued, so a
    # call that fails plays nowhere.
    plans = {}
    for entity_id, announcer in announcers.items():
        announcer.check_room(request)
        plans[entity_id] = await announcer.async_plan(request)
    items: dict[str, PlaybackItem] = {}
    try:
        for entity_id, plan in plans.items():
            items[entity_id] = announcers[entity_id].enqueue(
                plan, volume=request.volume, priority=request.priority
            )
    except HomeAssistantError:
        # Another call filled a queue meanwhile: take back what was queued.
        for entity_id, item in items.items():
            announcers[entity_id].stream.queue.remove(item)
        raise
    if request.wait:
        await async_wait_items(list(items.values()))
    if not call.return_response:
        return None
    return {
        entity_id: response_for(item, called_at) for entity_id, item in items.items()
    }


def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's actions."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_ANNOUNCE,
        _async_announce,
        schema=ANNOUNCE_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
