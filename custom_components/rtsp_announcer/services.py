"""The `rtsp_announcer.announce` action: an entity service of the streams.

Home Assistant resolves the targets (entities, devices, areas, floors, labels),
keeps the stream media players of this integration that are available and
calls each one; the response is keyed by entity id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import voluptuous as vol
from homeassistant.const import Platform
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import entity_platform
from homeassistant.helpers import service as service_helper

from .announce import AnnounceRequest, Priority
from .audio import options as opt
from .const import (
    ATTR_DISPLAY_SECONDS,
    ATTR_DISPLAY_TEXT,
    ATTR_DROPPABLE,
    ATTR_GAIN_DB,
    ATTR_LANGUAGE,
    ATTR_LEAD_IN,
    ATTR_MEDIA_ID,
    ATTR_MESSAGE,
    ATTR_OPTIONS,
    ATTR_PREANNOUNCE,
    ATTR_PREANNOUNCE_MEDIA_ID,
    ATTR_PRIORITY,
    ATTR_REPEAT,
    ATTR_REPEAT_GAP,
    ATTR_REPEAT_PREANNOUNCE,
    ATTR_SECONDS,
    ATTR_TEXT,
    ATTR_TIMEOUT,
    ATTR_TTS_ENTITY_ID,
    ATTR_VOLUME,
    ATTR_WAIT,
    DOMAIN,
    MAX_DISPLAY_SECONDS,
    SERVICE_ANNOUNCE,
    SERVICE_DISPLAY,
)

if TYPE_CHECKING:
    from .media_player import RtspStreamMediaPlayer

# Newer Home Assistant releases register an entity service of a platform from
# the integration's `async_setup`; older ones (2025.4) only from the platform.
PLATFORM_ENTITY_SERVICES = hasattr(
    service_helper, "async_register_platform_entity_service"
)


def media_id(value: Any) -> str | None:
    """Accept a media id as text or as the media selector's dict; empty is none."""
    if isinstance(value, dict):
        value = value.get("media_content_id")
    text = cv.string(value).strip() if value is not None else ""
    return text or None


def _within(kind: type[float], bounds: tuple[float, float]) -> vol.All:
    """A number of `kind` (int or float) from `bounds[0]` to `bounds[1]`."""
    low, high = bounds
    return vol.All(vol.Coerce(kind), vol.Range(min=low, max=high))


# The action's own fields; Home Assistant adds the target fields.
ANNOUNCE_FIELDS: dict[Any, Any] = {
    vol.Optional(ATTR_MESSAGE): cv.string,
    vol.Optional(ATTR_MEDIA_ID): media_id,
    vol.Optional(ATTR_TTS_ENTITY_ID): cv.entity_domain("tts"),
    vol.Optional(ATTR_LANGUAGE): cv.string,
    vol.Optional(ATTR_OPTIONS, default=dict): dict,
    # No default: the stream's options have it.
    vol.Optional(ATTR_PREANNOUNCE): cv.boolean,
    vol.Optional(ATTR_PREANNOUNCE_MEDIA_ID): media_id,
    vol.Optional(ATTR_VOLUME, default=1.0): vol.All(
        vol.Coerce(float), vol.Range(min=0.0, max=1.0)
    ),
    vol.Optional(ATTR_PRIORITY, default=Priority.NORMAL.value): vol.In(
        [priority.value for priority in Priority]
    ),
    vol.Optional(ATTR_WAIT, default=True): cv.boolean,
    vol.Optional(ATTR_TIMEOUT): _within(float, opt.SOURCE_TIMEOUT.range),
    vol.Optional(ATTR_LEAD_IN): _within(float, opt.LEAD_IN.range),
    vol.Optional(ATTR_GAIN_DB): _within(float, opt.GAIN_DB.range),
    vol.Optional(ATTR_REPEAT): _within(int, opt.REPEAT.range),
    vol.Optional(ATTR_REPEAT_GAP, default=opt.REPEAT_GAP.default): _within(
        float, opt.REPEAT_GAP.range
    ),
    vol.Optional(ATTR_REPEAT_PREANNOUNCE, default=False): cv.boolean,
    vol.Optional(ATTR_DROPPABLE, default=False): cv.boolean,
    vol.Optional(ATTR_DISPLAY_TEXT): cv.string,
    vol.Optional(ATTR_DISPLAY_SECONDS): vol.All(
        vol.Coerce(float), vol.Range(min=0.1, max=MAX_DISPLAY_SECONDS)
    ),
}
ANNOUNCE_SCHEMA = cv.make_entity_service_schema(ANNOUNCE_FIELDS)
DISPLAY_FIELDS: dict[Any, Any] = {
    # Empty clears the screen.
    vol.Required(ATTR_TEXT): vol.Any(None, cv.string),
    vol.Optional(ATTR_SECONDS): vol.All(
        vol.Coerce(float), vol.Range(min=0.1, max=MAX_DISPLAY_SECONDS)
    ),
}
DISPLAY_SCHEMA = cv.make_entity_service_schema(DISPLAY_FIELDS)


def request_from(data: Mapping[str, Any]) -> AnnounceRequest:
    """The announcement a call asks for, from its validated data."""
    return AnnounceRequest(
        message=data.get(ATTR_MESSAGE),
        media_id=data.get(ATTR_MEDIA_ID),
        tts_entity_id=data.get(ATTR_TTS_ENTITY_ID),
        language=data.get(ATTR_LANGUAGE),
        options=data[ATTR_OPTIONS],
        preannounce=data.get(ATTR_PREANNOUNCE),
        preannounce_media_id=data.get(ATTR_PREANNOUNCE_MEDIA_ID),
        volume=data[ATTR_VOLUME],
        priority=Priority(data[ATTR_PRIORITY]),
        wait=data[ATTR_WAIT],
        timeout=data.get(ATTR_TIMEOUT),
        lead_in=data.get(ATTR_LEAD_IN),
        gain_db=data.get(ATTR_GAIN_DB),
        repeat=data.get(ATTR_REPEAT),
        repeat_gap=data[ATTR_REPEAT_GAP],
        repeat_preannounce=data[ATTR_REPEAT_PREANNOUNCE],
        droppable=data[ATTR_DROPPABLE],
        display_text=data.get(ATTR_DISPLAY_TEXT),
        display_seconds=data.get(ATTR_DISPLAY_SECONDS),
    )


async def _async_announce(
    entity: RtspStreamMediaPlayer, call: ServiceCall
) -> ServiceResponse:
    """Run the call on one stream; the call itself ties its streams together."""
    return await entity.async_announce(request_from(call.data), call)


async def _async_display(entity: RtspStreamMediaPlayer, call: ServiceCall) -> None:
    await entity.async_display(call.data[ATTR_TEXT] or "", call.data.get(ATTR_SECONDS))


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's actions (from `async_setup`)."""
    if not PLATFORM_ENTITY_SERVICES:
        return
    service_helper.async_register_platform_entity_service(
        hass,
        DOMAIN,
        SERVICE_ANNOUNCE,
        entity_domain=Platform.MEDIA_PLAYER,
        func=_async_announce,
        schema=ANNOUNCE_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    service_helper.async_register_platform_entity_service(
        hass,
        DOMAIN,
        SERVICE_DISPLAY,
        entity_domain=Platform.MEDIA_PLAYER,
        func=_async_display,
        schema=DISPLAY_SCHEMA,
    )


@callback
def async_setup_platform_services() -> None:
    """Register the actions from the media player platform on older releases.

    Home Assistant registers a platform's entity service once, for all the
    entries of the platform: the second entry's call does nothing.
    """
    if PLATFORM_ENTITY_SERVICES:
        return
    platform = entity_platform.async_get_current_platform()
    platform.async_register_entity_service(
        SERVICE_ANNOUNCE,
        ANNOUNCE_SCHEMA,
        _async_announce,
        supports_response=SupportsResponse.OPTIONAL,
    )
    platform.async_register_entity_service(
        SERVICE_DISPLAY, DISPLAY_SCHEMA, _async_display
    )
