"""Home Assistant has nothing to warn about: no deprecated API, on any release.

Home Assistant reports a custom integration's use of deprecated API in its log
("Detected that custom integration 'rtsp_announcer' …", "… is a deprecated …",
"… will stop working in Home Assistant …") and through Python warnings. The
integration is loaded, used through every way in and unloaded against a real
relay, and neither may mention it.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component

from custom_components.rtsp_announcer.const import DOMAIN

from .common import add_entry, announce, ffmpeg_children, wait_available
from .helpers.rtsp import RelayServer

STREAM = "media_player.hall"
PACKAGE = Path(__file__).parents[1] / "custom_components" / DOMAIN
# Home Assistant's ways of saying that an integration uses something on its way out.
DEPRECATION = re.compile(
    r"deprecat|will stop working|Detected (that )?(custom )?integration|"
    r"please (report|create a bug report)",
    re.IGNORECASE,
)
# Said of every custom integration, whatever it does.
UNTESTED_NOTICE = "has not been tested by Home Assistant"


def _complaints(records: list[logging.LogRecord]) -> list[str]:
    said = []
    for record in records:
        if record.levelno < logging.WARNING:
            continue
        message = record.getMessage()
        if UNTESTED_NOTICE in message:
            continue
        if DOMAIN in message or DOMAIN in record.name or DEPRECATION.search(message):
            said.append(f"{record.name}: {message}")
    return said


async def test_loading_and_using_the_integration_raises_no_deprecation(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    assert await async_setup_component(hass, "tts", {})
    assert await async_setup_component(hass, "notify", {})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with RelayServer() as relay:
            entry = add_entry(hass, relay.publish_url, rtsp_transport="udp")
            assert await hass.config_entries.async_setup(entry.entry_id)
            await hass.async_block_till_done()
            await wait_available(hass, STREAM)

            await announce(hass, STREAM, message="Number 42")
            await hass.services.async_call(
                "tts",
                "speak",
                {
                    "entity_id": "tts.hall_local_voice",
                    "media_player_entity_id": STREAM,
                    "message": "Counter 3",
                },
                blocking=True,
            )
            await hass.services.async_call(
                "notify",
                "send_message",
                {"entity_id": "notify.hall_speaker", "message": "Hello"},
                blocking=True,
            )
            await hass.services.async_call(
                "media_player", "volume_set", {"entity_id": STREAM, "volume_level": 0.5}
            )
            await hass.services.async_call(
                "media_player", "media_stop", {"entity_id": STREAM}, blocking=True
            )
            await hass.async_block_till_done()

            # The options flow (a change reloads the stream) and the reconfigure
            # flow (to the URL the stream already publishes to).
            flow = await hass.config_entries.options.async_init(entry.entry_id)
            schema = flow["data_schema"]
            assert schema is not None
            defaults = {
                str(key): key.default()
                for key in schema.schema
                if callable(getattr(key, "default", None))
            }
            result = await hass.config_entries.options.async_configure(
                flow["flow_id"], {**defaults, "lead_ms": defaults["lead_ms"] + 20}
            )
            assert result["type"] == "create_entry"
            await hass.async_block_till_done()
            await wait_available(hass, STREAM)
            flow = await entry.start_reconfigure_flow(hass)
            result = await hass.config_entries.flow.async_configure(
                flow["flow_id"], {"url": relay.publish_url}
            )
            assert result["reason"] == "reconfigure_successful"
            await hass.async_block_till_done()
            assert await hass.config_entries.async_reload(entry.entry_id)
            await hass.async_block_till_done()
            assert await hass.config_entries.async_unload(entry.entry_id)
            await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED
    assert ffmpeg_children() == []

    assert _complaints(caplog.records) == []
    ours = [
        f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})"
        for w in caught
        if issubclass(w.category, DeprecationWarning | PendingDeprecationWarning)
        and str(PACKAGE) in str(w.filename)
    ]
    assert ours == []
