"""Resolving media ids: only audio Home Assistant may read, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.core_config import async_process_ha_core_config
from homeassistant.exceptions import ServiceValidationError
from homeassistant.setup import async_setup_component

from custom_components.rtsp_announcer.media import async_resolve_media_source

ENTITY = "media_player.hall"


@pytest.fixture
async def media_dir(hass: HomeAssistant, tmp_path: Path) -> Path:
    media = tmp_path / "media"
    media.mkdir()
    (media / "tone.wav").write_bytes(b"RIFF....WAVE")
    (media / "picture.png").write_bytes(b"\x89PNG")
    await async_process_ha_core_config(
        hass, {"internal_url": "http://homeassistant.local:8123"}
    )
    hass.config.media_dirs = {"local": str(media)}
    hass.config.allowlist_external_dirs = {str(media)}
    assert await async_setup_component(hass, "media_source", {})
    return media


async def test_local_media_source_is_read_from_disk(
    hass: HomeAssistant, media_dir: Path
) -> None:
    source, mime = await async_resolve_media_source(
        hass, "media-source://media_source/local/tone.wav", ENTITY
    )
    assert source == str(media_dir / "tone.wav")
    assert mime == "audio/x-wav"


async def test_allowed_path(hass: HomeAssistant, media_dir: Path) -> None:
    path = str(media_dir / "tone.wav")
    assert await async_resolve_media_source(hass, path, ENTITY) == (path, None)


@pytest.mark.parametrize(
    "media_id",
    [
        "/etc/shadow",
        "/etc/passwd",
        "relative/file.wav",
        "file:///etc/shadow",
        "ftp://example.com/a.wav",
    ],
)
async def test_paths_outside_the_allowlist_are_refused(
    hass: HomeAssistant, media_dir: Path, media_id: str
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await async_resolve_media_source(hass, media_id, ENTITY)
    assert err.value.translation_key == "media_not_allowed"


async def test_dot_dot_tricks_are_refused(hass: HomeAssistant, media_dir: Path) -> None:
    with pytest.raises(ServiceValidationError):
        await async_resolve_media_source(
            hass, str(media_dir / ".." / ".." / "etc" / "shadow"), ENTITY
        )
    with pytest.raises(ServiceValidationError):
        await async_resolve_media_source(
            hass, "media-source://media_source/local/../../etc/shadow", ENTITY
        )


async def test_non_audio_media_source_is_refused(
    hass: HomeAssistant, media_dir: Path
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await async_resolve_media_source(
            hass, "media-source://media_source/local/picture.png", ENTITY
        )
    assert err.value.translation_key == "unsupported_media"


async def test_unknown_media_source(hass: HomeAssistant, media_dir: Path) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await async_resolve_media_source(
            hass, "media-source://nothing_here/abc", ENTITY
        )
    assert err.value.translation_key == "decode_failed"


async def test_urls_pass_through(hass: HomeAssistant, media_dir: Path) -> None:
    url = "https://example.com/sound.mp3"
    assert await async_resolve_media_source(hass, url, ENTITY) == (url, None)


async def test_home_assistant_paths_are_signed(
    hass: HomeAssistant, media_dir: Path
) -> None:
    source, _ = await async_resolve_media_source(hass, "/api/camera/abc.mp3", ENTITY)
    assert source.startswith("http://homeassistant.local:8123/api/camera/abc.mp3")
    assert "authSig=" in source
