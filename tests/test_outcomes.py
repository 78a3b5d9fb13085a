"""Remote media, redaction and the outcome of every announcement, on a live stream."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.rtsp_announcer.announce import Announcer
from custom_components.rtsp_announcer.diagnostics import (
    async_get_config_entry_diagnostics,
)

from .audio.test_decoder import wav_bytes
from .common import HALL as ENTITY
from .common import announce
from .helpers.http import HttpServer, Reply


@pytest.mark.usefixtures("live")
async def test_a_url_outside_the_allowlist_is_never_fetched(
    hass: HomeAssistant, server: HttpServer
) -> None:
    url = server.route("/tone.wav", Reply(body=wav_bytes(0.3)))
    hass.config.allowlist_external_urls = set()
    with pytest.raises(ServiceValidationError) as err:
        await announce(hass, media_id=url)
    assert err.value.translation_key == "media_not_allowed"
    await hass.async_block_till_done()
    assert server.requests == []


@pytest.mark.usefixtures("live")
async def test_an_allowlisted_url_plays(
    hass: HomeAssistant, server: HttpServer
) -> None:
    url = server.route("/tone.wav", Reply(body=wav_bytes(0.3)))
    hass.config.allowlist_external_urls = {server.url("/")}
    response = await announce(hass, media_id=url)
    assert response[ENTITY]["state"] == "finished"
    assert server.paths == ["/tone.wav"]


async def test_query_tokens_are_redacted_everywhere(
    hass: HomeAssistant,
    server: HttpServer,
    live: MockConfigEntry,
    events: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server.route("/broken.mp3", Reply(body=b"not audio at all" * 64))
    url = server.url("/broken.mp3") + "?token=SECRET&authSig=SECRET2"
    hass.config.allowlist_external_urls = {server.url("/")}
    with pytest.raises(HomeAssistantError) as err:
        await announce(hass, media_id=url)
    await hass.async_block_till_done()
    assert [event["type"] for event in events] == ["failed"], repr(err.value)
    diagnostics = await async_get_config_entry_diagnostics(hass, live)
    texts = [str(events), str(diagnostics), str(err.value), caplog.text]
    texts += [str(record.args) for record in caplog.records]
    for text in texts:
        assert "SECRET" not in text


async def test_an_announcement_cut_by_an_unload_is_cancelled(
    hass: HomeAssistant,
    server: HttpServer,
    live: MockConfigEntry,
    events: list[dict[str, Any]],
) -> None:
    # A body that stalls after its first bytes: the announcement is still going.
    body = wav_bytes(5.0, rate=16000, channels=1)
    url = server.route("/long.wav", Reply(body=body, send_first=len(body) // 3))
    hass.config.allowlist_external_urls = {server.url("/")}
    await announce(hass, media_id=url, wait=False)
    for _ in range(200):
        if any(event["type"] == "started" for event in events):
            break
        await hass.async_block_till_done()
        await asyncio.sleep(0.02)
    assert await hass.config_entries.async_unload(live.entry_id)
    await hass.async_block_till_done()
    types = [event["type"] for event in events]
    assert types[-1] == "cancelled"
    assert "finished" not in types
    assert "interrupted" not in types


async def test_a_producer_that_raises_fails_its_announcement_and_frees_the_queue(
    hass: HomeAssistant,
    live: MockConfigEntry,
    events: list[dict[str, Any]],
) -> None:
    async def broken(self: Announcer, *_args: Any, **_kwargs: Any) -> Any:
        async def part(_item: Any) -> bool:
            msg = "a part broke"
            raise RuntimeError(msg)

        return part

    with (
        patch.object(Announcer, "_message_part", broken),
        pytest.raises(HomeAssistantError),
    ):
        await announce(hass, message="first")
    await hass.async_block_till_done()
    assert [event["type"] for event in events] == ["failed"]
    assert "a part broke" in events[0]["error"]
    response = await announce(hass, message="second")
    assert response[ENTITY]["state"] == "finished"
    assert len(live.runtime_data.stream.queue) == 0
