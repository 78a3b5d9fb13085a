"""Resolving media ids: only audio Home Assistant may read, nothing else."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from unittest.mock import Mock

import pytest
from homeassistant.components.media_source import (
    MediaSource,
    MediaSourceItem,
    PlayMedia,
)
from homeassistant.core import HomeAssistant
from homeassistant.core_config import async_process_ha_core_config
from homeassistant.exceptions import ServiceValidationError
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    MockModule,
    mock_integration,
    mock_platform,
)

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


async def test_allowlisted_urls_pass_through(
    hass: HomeAssistant, media_dir: Path
) -> None:
    url = "https://example.com/sound.mp3"
    hass.config.allowlist_external_urls = {"https://example.com/"}
    assert await async_resolve_media_source(hass, url, ENTITY) == (url, None)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/sound.mp3",
        "http://127.0.0.1:8080/admin",
        "https://example.com.evil.test/sound.mp3",
        "https://user:pw@example.com/sound.mp3?token=abc",
    ],
)
async def test_other_urls_are_refused(
    hass: HomeAssistant, media_dir: Path, url: str
) -> None:
    hass.config.allowlist_external_urls = {"https://example.com/sound.mp3/x"}
    with pytest.raises(ServiceValidationError) as err:
        await async_resolve_media_source(hass, url, ENTITY)
    assert err.value.translation_key == "media_not_allowed"
    placeholders = err.value.translation_placeholders or {}
    assert "pw" not in placeholders["media_id"]
    assert "abc" not in placeholders["media_id"]


async def test_home_assistant_urls_need_no_allowlist(
    hass: HomeAssistant, media_dir: Path
) -> None:
    url = "http://homeassistant.local:8123/api/tts_proxy/abc.mp3"
    source, _ = await async_resolve_media_source(hass, url, ENTITY)
    assert source.startswith(url)


async def test_home_assistant_paths_are_signed(
    hass: HomeAssistant, media_dir: Path
) -> None:
    source, _ = await async_resolve_media_source(hass, "/api/camera/abc.mp3", ENTITY)
    assert source.startswith("http://homeassistant.local:8123/api/camera/abc.mp3")
    assert "authSig=" in source


class RadioSource(MediaSource):
    """Another integration's media source, resolving ids to fixed URLs."""

    name = "Radio"

    def __init__(self, urls: dict[str, PlayMedia]) -> None:
        super().__init__("radio")
        self._urls = urls

    async def async_resolve_media(self, item: MediaSourceItem) -> PlayMedia:
        return self._urls[item.identifier]


type Resolve = Callable[[str], Awaitable[tuple[str, str | None]]]


@pytest.fixture
async def radio(hass: HomeAssistant, media_dir: Path) -> Resolve:
    """A "radio" media source; resolves one of its items for the stream."""
    source = RadioSource(
        {
            "live": PlayMedia("https://radio.example/live.mp3", "audio/mpeg"),
            "elsewhere": PlayMedia("/media/elsewhere/news.mp3", "audio/mpeg"),
            "query": PlayMedia("/media/local/tone.wav?format=raw", "audio/x-wav"),
        }
    )

    async def async_get_media_source(hass: HomeAssistant) -> MediaSource:
        return source

    mock_integration(hass, MockModule("radio"))
    mock_platform(
        hass,
        "radio.media_source",
        Mock(async_get_media_source=async_get_media_source),
    )
    assert await async_setup_component(hass, "radio", {})
    await hass.async_block_till_done()

    async def resolve(item: str) -> tuple[str, str | None]:
        return await async_resolve_media_source(
            hass, f"media-source://radio/{item}", ENTITY
        )

    return resolve


async def test_other_media_sources_play_through_their_urls(radio: Resolve) -> None:
    source, mime = await radio("live")
    assert (source, mime) == ("https://radio.example/live.mp3", "audio/mpeg")


async def test_media_urls_that_are_not_a_local_file_are_fetched(
    radio: Resolve,
) -> None:
    # A media directory Home Assistant does not know of: its server decides.
    source, _ = await radio("elsewhere")
    assert source.startswith(
        "http://homeassistant.local:8123/media/elsewhere/news.mp3?authSig="
    )
    # A query is not part of a file name: the URL goes to the server as it is.
    source, _ = await radio("query")
    assert source == "http://homeassistant.local:8123/media/local/tone.wav?format=raw"


async def test_a_media_directory_outside_the_allowlist_is_fetched_signed(
    hass: HomeAssistant, media_dir: Path
) -> None:
    # Browsable, but not readable by integrations: Home Assistant serves it.
    hass.config.allowlist_external_dirs = set()
    source, mime = await async_resolve_media_source(
        hass, "media-source://media_source/local/tone.wav", ENTITY
    )
    assert source.startswith(
        "http://homeassistant.local:8123/media/local/tone.wav?authSig="
    )
    assert mime == "audio/x-wav"


async def test_home_assistant_paths_need_a_known_url(
    hass: HomeAssistant, media_dir: Path
) -> None:
    # Served over TLS, Home Assistant's bare IP address is no usable URL.
    hass.config.internal_url = None
    assert hass.config.api is not None
    hass.config.api.use_ssl = True
    with pytest.raises(ServiceValidationError) as err:
        await async_resolve_media_source(hass, "/api/tts_proxy/abc.mp3", ENTITY)
    assert err.value.translation_key == "decode_failed"
    assert err.value.translation_placeholders == {
        "media_id": "/api/tts_proxy/abc.mp3",
        "error": "Unable to determine Home Assistant URL to send to device. "
        "Configure internal and external URL in general settings.",
    }
