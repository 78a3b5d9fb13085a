"""Browsing media from the stream's media player: audio only, clear errors."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from .common import DEAD_URL, add_entry

ENTITY = "media_player.hall"


@pytest.fixture
async def media(hass: HomeAssistant, tmp_path: Path) -> Path:
    media = tmp_path / "media"
    (media / "doorbells").mkdir(parents=True)
    (media / "chime.mp3").write_bytes(b"ID3")
    (media / "doorbells" / "ding.wav").write_bytes(b"RIFF")
    (media / "holiday.jpg").write_bytes(b"\xff\xd8")
    (media / "clip.mp4").write_bytes(b"\x00")
    hass.config.media_dirs = {"local": str(media)}
    return media


@pytest.fixture
async def entry(hass: HomeAssistant, media: Path) -> AsyncGenerator[MockConfigEntry]:
    # Browsing needs no server: the stream may be down.
    entry = add_entry(hass, DEAD_URL)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    yield entry
    assert await hass.config_entries.async_unload(entry.entry_id)


async def browse(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator, media_content_id: str
) -> dict[str, Any]:
    client = await hass_ws_client(hass)
    await client.send_json_auto_id(
        {
            "type": "media_player/browse_media",
            "entity_id": ENTITY,
            "media_content_id": media_content_id,
            "media_content_type": "music",
        }
    )
    return dict(await client.receive_json())


@pytest.mark.usefixtures("entry")
async def test_browsing_shows_audio_and_folders_only(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator
) -> None:
    response = await browse(hass, hass_ws_client, "media-source://media_source/local/.")
    assert response["success"], response
    result = response["result"]
    children = {child["title"]: child for child in result["children"]}
    assert set(children) == {"chime.mp3", "doorbells"}
    assert children["chime.mp3"]["can_play"]
    assert children["doorbells"]["can_expand"]
    # The picture and the video are left out, and counted as such.
    assert result["not_shown"] == 2


@pytest.mark.usefixtures("entry")
async def test_browsing_a_missing_folder_says_why(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator
) -> None:
    response = await browse(
        hass, hass_ws_client, "media-source://media_source/local/nowhere"
    )
    assert not response["success"]
    error = response["error"]
    assert error["translation_domain"] == "rtsp_announcer"
    assert error["translation_key"] == "browse_failed"
    assert error["translation_placeholders"] == {"error": "Path does not exist."}
    assert error["message"] == "Could not browse the media: Path does not exist."
